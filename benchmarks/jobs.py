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


def _run_with_retries(args: list[str], env: Mapping[str, str], attempts: int = 5) -> str:
    """A read-only Slurm query; the shared controller may be restarting, so try a few times."""
    for attempt in range(attempts):
        result = subprocess.run(
            args, env=dict(env), capture_output=True, text=True, check=False, timeout=30
        )
        if result.returncode == 0:
            return result.stdout
        if attempt < attempts - 1:
            time.sleep(2)
    raise RuntimeError(f"{args[0]} failed: {result.stderr.strip()}")


def bench_jobs(env: Mapping[str, str]) -> list[tuple[str, str]]:
    """(job id, state) of every job of the benchmark's user still known to Slurm."""
    out = _run_with_retries(["squeue", "-h", "-u", BENCH_USER, "-o", "%i %T"], env)
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


def cpu_counts(env: Mapping[str, str], partition: str) -> tuple[int, int]:
    """(idle, total) CPUs of a partition now (sinfo's A/I/O/T), to size a scenario."""
    out = _run_with_retries(["sinfo", "-h", "-p", partition, "-o", "%C"], env)
    idle = total = 0
    for line in out.split():
        parts = line.split("/")
        if len(parts) == 4:
            idle += int(parts[1])
            total += int(parts[3])
    return idle, total


def other_jobs(env: Mapping[str, str]) -> int:
    """Jobs of anyone but the benchmark's user: a sign that the cluster is not quiet."""
    out = _run_with_retries(["squeue", "-h", "-o", "%u"], env)
    return sum(1 for user in out.split() if user != BENCH_USER)


def node_names(env: Mapping[str, str]) -> str:
    """The cluster's nodes, to notice a layout change (a restart) in the middle of a run."""
    return " ".join(sorted(set(_run_with_retries(["sinfo", "-h", "-N", "-o", "%N"], env).split())))


def wait_for_idle_cpus(env: Mapping[str, str], wanted: int, timeout: float) -> bool:
    """Wait (bounded) until the cpu partition has ``wanted`` idle CPUs, so that a timed spawn
    measures starting a job rather than queueing behind someone else's."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cpu_counts(env, "cpu")[0] >= wanted:
            return True
        time.sleep(1)
    return False
