"""Servers the browser tests start: where a submission lands, its Slurm job, and the stop
that makes sure the job is gone."""

from __future__ import annotations

import re
import subprocess
import time

from .hub import HubProcess

#: Where a submitted spawn form goes: the spawn-pending page, or the server itself.
PENDING_OR_RUNNING = re.compile(r"/hub/spawn-pending/(alice|bob)|/user/(alice|bob)/")


def job_of(hub: HubProcess, user: str, timeout: float = 15) -> str | None:
    """The Slurm job id of ``user``'s default server, from its saved state."""
    api = hub.api()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server = api.get(f"users/{user}").json().get("servers", {}).get("")
        state = (server or {}).get("state") or {}
        job = next((str(v) for k, v in state.items() if "job" in k and str(v).isdigit()), None)
        if job:
            return job
        time.sleep(0.5)
    return None


def stop_server(hub: HubProcess, user: str, env: dict[str, str]) -> None:
    """Stop the server through the REST API; cancel its job if Slurm still has it."""
    job = job_of(hub, user)
    api = hub.api()
    api.delete(f"users/{user}/server")
    deadline = time.monotonic() + 60
    while api.get(f"users/{user}").json().get("servers") and time.monotonic() < deadline:
        time.sleep(0.5)
    if job:
        queued = subprocess.run(
            ["squeue", "-h", "-j", job, "-o", "%T"], env=env, capture_output=True, text=True
        ).stdout.strip()
        if queued:
            subprocess.run(["scancel", job], env=env, check=False)
