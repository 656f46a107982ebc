"""How long and how hard each scenario runs: the full run (the issue's figures) or ``--quick``."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Settings:
    # 1. spawn page
    sequential_requests: int = 100
    concurrent_clients: int = 20
    concurrent_seconds: float = 20.0
    # 2./3. live refresh: viewers polling at the (shortened) page interval
    viewers: int = 50
    viewer_seconds: float = 60.0
    few_viewers: int = 10  # a smaller audience first, to show how the controller's cost grows
    few_viewer_seconds: float = 30.0
    refresh_seconds: int = 5  # the page interval; ours' cluster view refreshes as often
    # 4. status polling
    running_servers: int = 10
    pending_spawns: int = 5
    polling_seconds: float = 120.0
    # 5. spawn to ready
    spawn_tries: int = 10
    # 6. failure detection
    failure_tries: int = 5
    failure_start_timeout: int = 120  # start_timeout of both hubs in scenario 6
    # 7. node released → /lab
    released_tries: int = 5
    # How long the spawn's job pends before its node is released: past ours'
    # pending_backoff_after (30 s by default), after which a pending job is looked at less often.
    released_pending_seconds: float = 35.0
    # shared
    ready_timeout: float = 180.0  # give up on a spawn that is not ready by then
    sdiag_reset: bool = False
    quick: bool = False


FULL = Settings()

QUICK = replace(
    FULL,
    sequential_requests=10,
    concurrent_clients=5,
    concurrent_seconds=3.0,
    viewers=10,
    viewer_seconds=10.0,
    few_viewers=2,
    few_viewer_seconds=10.0,
    running_servers=2,
    pending_spawns=1,
    polling_seconds=15.0,
    spawn_tries=1,
    failure_tries=1,
    released_tries=1,
    released_pending_seconds=0.0,
    failure_start_timeout=30,
    ready_timeout=120.0,
    quick=True,
)
