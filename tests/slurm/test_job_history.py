"""A job squeue has forgotten is reported with its final state from the accounting (sacct).

slurmctld forgets a job ``MinJobAge`` (60 s on dev/cluster) after it ends. A hub that looks
later, after a restart say, used to know only that the job was "gone". With slurmdbd, the job
poller asks sacct once, and the spawner's log and failure message say how the job ended.
Runs only on a cluster with accounting (``dev/cluster start``, not ``--no-accounting``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence

import pytest
from support.infra import missing
from support.replay_slurm import ME, ReplaySpawner, spawn_request
from support.spawning import cancel, slurm, submit_as

from jupyterhub_moss.slurm.commands import SlurmRunner
from jupyterhub_moss.slurm.jobs import JobStatusPoller

pytestmark = [pytest.mark.slurm, pytest.mark.accounting]

JOB = ["-p", "debug", "-t", "1", "--chdir=/tmp", "--output=/dev/null"]
#: MinJobAge (60 s) plus slurmctld's purge cycle, plus a job that may wait behind others
FORGET_TIMEOUT = 240


class CountingRunner(SlurmRunner):
    """The real runner, counting the commands it runs."""

    def __init__(self, env: Mapping[str, str]) -> None:
        super().__init__(env={"SLURM_CONF": env["SLURM_CONF"]})
        self.commands_run: list[str] = []

    async def run(self, name: str, args: Sequence[str], **kwargs):  # type: ignore[override]
        self.commands_run.append(name)
        return await super().run(name, args, **kwargs)


@pytest.fixture
def accounting_cluster(slurm_cluster):
    if slurm_cluster.env.get("MOSS_CLUSTER_ACCOUNTING") != "slurmdbd":
        missing("the local cluster keeps no accounting (started with --no-accounting)")
    return slurm_cluster


def forgotten(env: Mapping[str, str], job_id: str) -> bool:
    """Whether slurmctld has forgotten the job (squeue: "Invalid job id specified")."""
    done = slurm(env, "squeue", "-h", "-t", "all", "-j", job_id, check=False)
    if done.returncode != 0:
        assert "Invalid job id" in done.stderr, done.stderr
        return True
    assert job_id in done.stdout, done.stdout
    return False


async def wait_until_forgotten(env: Mapping[str, str], job_id: str) -> None:
    deadline = time.monotonic() + FORGET_TIMEOUT
    while not forgotten(env, job_id):
        assert time.monotonic() < deadline, f"squeue still lists job {job_id}"
        await asyncio.sleep(5)


async def test_a_job_squeue_forgot_ends_with_its_state_and_exit_code_from_sacct(
    accounting_cluster, tmp_path, caplog
):
    env = accounting_cluster.env
    job_id = submit_as(env, "alice", *JOB, "--job-name=moss-history-test", "--wrap=exit 3")
    try:
        await wait_until_forgotten(env, job_id)
    finally:
        cancel(env, [job_id])  # only if the wait failed: the job has ended otherwise

    # The hub-wide poller: squeue twice (gone only after a second look), then one sacct.
    runner = CountingRunner(env)
    poller = JobStatusPoller(runner, interval=30, min_interval=0.5)
    assert await poller.status(job_id) is None  # missing once: not known yet
    status = await poller.status(job_id, max_age=0)
    assert status is not None and status.finished
    assert (status.state, status.ended.exit_code, status.ended.signal) == ("FAILED", 3, 0)
    assert status.ended.partition == "debug"
    assert runner.commands_run == ["squeue", "squeue", "sacct"]
    assert (await poller.status(job_id, max_age=0)).state == "FAILED"
    assert runner.commands_run == ["squeue", "squeue", "sacct"]  # never asked again
    await poller.close()

    # A hub that restarts with alice's server in its database: poll() says how it ended.
    spawner = ReplaySpawner(CountingRunner(env), spawn_request(), home=str(tmp_path))
    spawner.load_state({"job_id": job_id, "job_node": "localhost", "job_partition": "debug"})
    with caplog.at_level(logging.INFO):
        assert await spawner.poll() is None  # missing once
        assert await spawner.poll() == 1
    logged = f"Job {job_id} of {ME} has ended: FAILED with exit code 3 (its commands ended with"
    assert logged in caplog.text
    assert spawner.slurm.commands_run.count("sacct") == 1

    # The message a spawn waiting on this job would fail with, from the same record.
    failure = await spawner._job_failure(status)
    assert str(failure).startswith(
        f"Slurm job {job_id} ended before Jupyter started: FAILED with exit code 3 "
        "(its commands ended with an error)."
    )
    assert "scontrol" not in spawner.slurm.commands_run  # it no longer knows the job either
    await spawner.poller.close()
