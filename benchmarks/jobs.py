"""The benchmark's own Slurm jobs: listing and cancelling them, never anyone else's.

Every spawn of the benchmark runs as :data:`~.hubs.BENCH_USER`, an account only the benchmark
uses, and the floor's bare jobs carry that user too; so "the benchmark's jobs" is exactly
``squeue -u mossbench``.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping

from .hubs import BENCH_USER


def bench_jobs(env: Mapping[str, str]) -> list[tuple[str, str]]:
    """(job id, state) of every job of the benchmark's user still known to Slurm."""
    out = subprocess.run(
        ["squeue", "-h", "-u", BENCH_USER, "-o", "%i %T"],
        env=dict(env),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return [tuple(line.split(None, 1)) for line in out.splitlines() if line.strip()]  # type: ignore[misc]


def cancel_bench_jobs(env: Mapping[str, str], timeout: float = 60) -> list[str]:
    """Cancel the benchmark user's jobs and wait until Slurm has let go of them.

    Returns the ids that were still there at the start (empty when nothing had leaked).
    """
    jobs = [job_id for job_id, _ in bench_jobs(env)]
    if not jobs:
        return []
    subprocess.run(
        ["scancel", "-u", BENCH_USER], env=dict(env), capture_output=True, check=False, timeout=30
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(state not in ("COMPLETED", "CANCELLED") for _, state in bench_jobs(env)):
            break
        time.sleep(0.5)
    return jobs


def idle_cpus(env: Mapping[str, str], partition: str) -> int:
    """Idle CPUs of a partition now (sinfo's A/I/O/T), to size a scenario to the cluster."""
    out = subprocess.run(
        ["sinfo", "-h", "-p", partition, "-o", "%C"],
        env=dict(env),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    total = 0
    for line in out.split():
        parts = line.split("/")
        if len(parts) == 4:
            total += int(parts[1])
    return total
