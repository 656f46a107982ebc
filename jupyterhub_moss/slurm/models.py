"""Plain data that the Slurm layer hands to the rest of the package.

Everything here is immutable and built only by the parsers in :mod:`jupyterhub_moss.slurm.parsing`;
nothing in it runs a command. Times are timezone-aware UTC datetimes; durations are seconds, with
``None`` meaning "no limit" (Slurm's ``infinite``/``UNLIMITED``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class PartitionInfo:
    """One partition as Slurm reports it, all of its node groups folded together.

    For a partition whose nodes differ, the per-node figures are those of the *largest* node:
    a single-node job can use the largest node, so that is the most the form may offer.
    """

    name: str
    state: str  # "up", "down", "drain" or "inactive", as sinfo's %a prints it
    is_default: bool
    nodes_idle: int
    nodes_total: int
    cpus_idle: int
    cpus_total: int
    cpus_per_node: int  # largest node
    memory_per_node_mb: int  # largest node
    max_runtime: int | None  # seconds; None = no limit
    gpus_per_node: dict[str, int] = field(default_factory=dict)  # type -> count, largest node
    gpus_total: int = 0
    gpus_used: int | None = None  # None when Slurm did not say
    node_states: tuple[str, ...] = ()  # e.g. ("idle", "mixed", "drained")

    @property
    def max_gpus_per_node(self) -> int:
        return max(self.gpus_per_node.values(), default=0)

    @property
    def available(self) -> bool:
        return self.state == "up"


@dataclass(frozen=True)
class Reservation:
    name: str
    state: str  # ACTIVE / INACTIVE
    start: datetime | None
    end: datetime | None
    users: tuple[str, ...]  # as listed; a leading "-" means "excluded"
    accounts: tuple[str, ...]
    partition: str | None
    nodes: str
    flags: tuple[str, ...]


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    state: str  # Slurm's long state name: PENDING, RUNNING, COMPLETED, FAILED, ...
    reason: str  # "None" when Slurm has nothing to say
    node: str  # first allocated node (or batch host); "" while pending
    expected_start: datetime | None  # only while pending and when Slurm knows


@dataclass(frozen=True)
class StartEstimate:
    start: datetime
    cpus: int
    nodes: str
