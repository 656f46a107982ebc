"""The poller's start and end times of a real job: what a "time left" display reads.

A job of alice with ``-t 0:30:00``, submitted through sudo as a hub would: once it runs, the
poller's ``ends - started`` is its 30-minute limit, and both are wall-clock times (the hub and
squeue share the machine's time zone). An admin's ``scontrol update TimeLimit=`` moves ``ends``
at the next poll; lifting the limit (``UNLIMITED``) leaves no end; once the job has ended it
has none either, and still has its start.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone

import pytest
from support.spawning import cancel, slurm, submit_as

from jupyterhub_moss.slurm.commands import SlurmRunner
from jupyterhub_moss.slurm.jobs import JobStatusPoller
from jupyterhub_moss.slurm.models import JobStatus
from jupyterhub_moss.slurm.times import parse_slurm_time

pytestmark = pytest.mark.slurm

#: Slurm keeps times to the second; a little more for the clocks read around them.
SLACK = timedelta(seconds=3)


async def poll_until(
    poller: JobStatusPoller,
    job_id: str,
    done: Callable[[JobStatus], bool],
    what: str,
    timeout: float = 60,
) -> JobStatus:
    """Fresh polls (``max_age=0``) until ``done(status)``; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        status = await poller.status(job_id, max_age=0)
        if status is not None and done(status):
            return status
        assert time.monotonic() < deadline, f"job {job_id} never {what}: {status}"
        await asyncio.sleep(0.5)


def end_time_in_scontrol(env: Mapping[str, str], job_id: str) -> datetime | None:
    """``EndTime`` as ``scontrol show job`` prints it: a second opinion on squeue's %e."""
    out = slurm(env, "scontrol", "show", "job", "-o", job_id).stdout
    field = next(part for part in out.split() if part.startswith("EndTime="))
    return parse_slurm_time(field.partition("=")[2])


async def test_started_and_ends_follow_the_time_limit(slurm_cluster) -> None:
    env = slurm_cluster.env
    poller = JobStatusPoller(SlurmRunner(env={"SLURM_CONF": slurm_cluster.conf}), min_interval=0.1)
    job_id = ""
    try:
        submitted = datetime.now(timezone.utc)
        job_id = submit_as(
            env, "alice",
            "-p", "cpu", "-c", "1", "--mem=100M", "-t", "0:30:00", "--chdir=/tmp",
            "--output=/dev/null", "--job-name=moss-job-times", "--wrap=sleep 600",
        )  # fmt: skip
        first = await poller.status(job_id, max_age=0)
        if first is not None and first.waiting:  # no start and no end until it runs
            assert (first.started, first.ends) == (None, None)

        running = await poll_until(poller, job_id, lambda s: s.state == "RUNNING", "ran")
        seen_running = datetime.now(timezone.utc)
        assert running.started is not None and running.ends is not None
        # Wall-clock times: a time zone mix-up would be off by hours, not seconds.
        assert submitted - SLACK <= running.started <= seen_running + SLACK
        assert abs(running.ends - running.started - timedelta(minutes=30)) <= SLACK
        assert running.ends == end_time_in_scontrol(env, job_id)
        assert running.expected_start is None

        # An admin shortens the limit to 10 minutes: the next poll's end moves with it.
        slurm(env, "scontrol", "update", f"JobId={job_id}", "TimeLimit=10")
        shortened = await poll_until(
            poller, job_id, lambda s: s.ends != running.ends, "had its end moved"
        )
        assert shortened.state == "RUNNING"
        assert shortened.started == running.started
        assert shortened.ends is not None
        assert abs(shortened.ends - shortened.started - timedelta(minutes=10)) <= SLACK
        assert shortened.ends == end_time_in_scontrol(env, job_id)

        # No limit at all (only an admin can: every partition here has a MaxTime): no end.
        slurm(env, "scontrol", "update", f"JobId={job_id}", "TimeLimit=UNLIMITED")
        unlimited = await poll_until(poller, job_id, lambda s: s.ends is None, "lost its end")
        assert unlimited.state == "RUNNING" and unlimited.started == running.started

        slurm(env, "scancel", job_id)
        ended = await poll_until(poller, job_id, lambda s: s.finished, "ended")
        # squeue's %e of an ended job is when it ended, not a limit: no "time left".
        assert ended.ends is None
        if ended.ended is None:  # still squeue's answer (within MinJobAge), not sacct's
            assert ended.started == running.started
    finally:
        cancel(env, [job_id])
        await poller.close()
