"""A busy cpu partition next to idle ones on the same nodes, for the "Start sooner on…" tests.

As a site keeps CPUs for its GPU jobs: ``MaxCPUsPerNode=2`` on cpu, and a job of root's holding
those 2 CPUs on each of cpu's nodes for 2 h. A one-CPU request then waits about 2 h on cpu and
starts at once on gpu and debug (dev/cluster's, in either layout). Both are undone at the end.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from .hardening import cancel_jobs_named, unique_job_name

#: What the blocking jobs hold, and how long.
BLOCKER_CPUS, BLOCKER_TIME = 2, "2:00:00"


def run(env: Mapping[str, str], *argv: str, user: str = "") -> subprocess.CompletedProcess:
    """A Slurm command, as root or (``user``) through sudo as the hub runs it."""
    prefix = ["sudo", "-n", "-E", "-u", user] if user else []
    return subprocess.run(
        [*prefix, *argv], env=dict(env), capture_output=True, text=True, timeout=60
    )


def _wait_running(env: Mapping[str, str], job_name: str, count: int) -> None:
    deadline = time.monotonic() + 60
    states: list[str] = []
    while time.monotonic() < deadline:
        states = run(env, "squeue", "-h", "-n", job_name, "-o", "%T").stdout.split()
        if states.count("RUNNING") == count:
            return
        time.sleep(0.5)
    raise AssertionError(f"the blocking jobs never all ran: {states}")


@contextmanager
def busy_cpu_partition(env: Mapping[str, str]) -> Iterator[None]:
    shown = run(env, "scontrol", "-o", "show", "partition", "cpu").stdout
    match = re.search(r"\bMaxCPUsPerNode=(\S+)", shown)
    assert match, shown
    nodes = int(run(env, "sinfo", "-h", "-p", "cpu", "-o", "%D").stdout.split()[0])
    job_name = unique_job_name("moss-start-sooner")
    update = ["scontrol", "update", "PartitionName=cpu"]
    try:
        changed = run(env, *update, f"MaxCPUsPerNode={BLOCKER_CPUS}")
        assert changed.returncode == 0, changed.stderr
        for _ in range(nodes):
            done = run(
                env, "sbatch", "--chdir=/tmp", "--output=/dev/null", "-p", "cpu",
                "-c", str(BLOCKER_CPUS), "-t", BLOCKER_TIME, f"--job-name={job_name}",
                "--wrap=sleep 7200",
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
        _wait_running(env, job_name, nodes)
        yield
    finally:
        cancel_jobs_named(env, job_name, timeout=60)
        run(env, *update, f"MaxCPUsPerNode={match.group(1)}")
