"""The registry of the hub's shared Slurm services: one per configuration, all closed at once.

Where work must be in flight, the Slurm commands are stand-in scripts that note their process id
and then sleep: closing must stop them, not wait for them.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from jupyterhub_moss.slurm import services
from jupyterhub_moss.slurm.commands import SlurmRunner
from jupyterhub_moss.slurm.estimates import StartEstimator
from jupyterhub_moss.slurm.jobs import JobStatusPoller
from jupyterhub_moss.slurm.view import MIN_INTERVAL, ClusterView

pytestmark = pytest.mark.unit

PREFIX = "sudo -n -E -u {username}"


@pytest.fixture(autouse=True)
async def empty_registry():
    await services.close_all()
    yield
    await services.close_all()


def runner(bin_dir: str = "/opt/slurm/bin") -> SlurmRunner:
    return SlurmRunner(bin_dir=bin_dir)


def slow_slurm(folder: Path) -> SlurmRunner:
    """Slurm commands that write their pid to ``<name>.<pid>`` and then sleep for a minute."""
    for name in ("sinfo", "scontrol", "squeue", "sbatch"):
        script = folder / name
        script.write_text(f'#!/bin/sh\ntouch "{folder}/{name}.$$"\nexec sleep 60\n')
        script.chmod(0o755)
    return SlurmRunner(bin_dir=str(folder))


def started(folder: Path) -> dict[str, int]:
    """The stand-in commands that have started: name -> pid."""
    return {p.name.split(".")[0]: int(p.name.split(".")[1]) for p in folder.glob("*.*")}


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# -- one service per configuration ------------------------------------------------------------


def test_the_same_configuration_gets_the_same_services():
    assert services.cluster_view(runner(), 30) is services.cluster_view(runner(), 30.0)
    assert services.job_poller(runner(), 5) is services.job_poller(runner(), 5.0)
    assert services.start_estimator(runner(), PREFIX) is services.start_estimator(runner(), PREFIX)


def test_intervals_a_view_clamps_alike_share_the_view():
    assert services.cluster_view(runner(), 1) is services.cluster_view(runner(), MIN_INTERVAL)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (lambda: services.cluster_view(runner(), 30), lambda: services.cluster_view(runner(), 60)),
        (
            lambda: services.cluster_view(runner(), 30),
            lambda: services.cluster_view(runner("/usr/bin"), 30),
        ),
        (lambda: services.job_poller(runner(), 5), lambda: services.job_poller(runner(), 10)),
        (
            lambda: services.job_poller(runner(), 5),
            lambda: services.job_poller(runner("/usr/bin"), 5),
        ),
        (
            lambda: services.start_estimator(runner(), PREFIX),
            lambda: services.start_estimator(runner(), ""),
        ),
        (
            lambda: services.start_estimator(runner(), PREFIX),
            lambda: services.start_estimator(runner("/usr/bin"), PREFIX),
        ),
    ],
    ids=[
        "view-interval",
        "view-runner",
        "poller-interval",
        "poller-runner",
        "estimator-prefix",
        "estimator-runner",
    ],
)
def test_another_configuration_gets_another_service(first, second):
    assert first() is not second()


def test_services_are_built_as_their_callers_built_them():
    view = services.cluster_view(runner(), 1)
    assert isinstance(view, ClusterView) and view.interval == MIN_INTERVAL
    poller = services.job_poller(runner(), 7)
    assert isinstance(poller, JobStatusPoller)
    assert (poller.interval, poller.min_interval) == (7.0, 1.0)
    estimator = services.start_estimator(runner(), PREFIX)
    assert isinstance(estimator, StartEstimator) and estimator.user_prefix == PREFIX


# -- closing --------------------------------------------------------------------------------------


async def test_close_all_with_nothing_created_closes_nothing():
    assert await services.close_all() == 0


async def test_close_all_stops_the_work_in_flight_and_empties_the_registry(tmp_path):
    slurm = slow_slurm(tmp_path)
    view = services.cluster_view(slurm, 30)
    poller = services.job_poller(slurm, 30)
    estimator = services.start_estimator(slurm, "")
    readers = [
        asyncio.ensure_future(view.snapshot()),
        asyncio.ensure_future(poller.status("4242")),
        asyncio.ensure_future(estimator.estimate("alice", ["-p", "cpu"], "#!/bin/sh\n")),
    ]
    for _ in range(100):
        if len(started(tmp_path)) == 4:
            break
        await asyncio.sleep(0.05)
    commands = started(tmp_path)
    assert sorted(commands) == ["sbatch", "scontrol", "sinfo", "squeue"]

    assert await asyncio.wait_for(services.close_all(), timeout=5) == 3

    done, _ = await asyncio.wait(readers, timeout=1)
    assert len(done) == 3 and all(reader.cancelled() for reader in readers)
    assert not [name for name, pid in commands.items() if is_running(pid)]
    # forgotten: the same configuration now gets new services
    assert services.cluster_view(slurm, 30) is not view
    assert services.job_poller(slurm, 30) is not poller
    assert services.start_estimator(slurm, "") is not estimator


async def test_one_service_failing_to_close_does_not_keep_the_others(monkeypatch):
    view = services.cluster_view(runner(), 30)
    poller = services.job_poller(runner(), 30)
    closed = []

    async def broken() -> None:
        raise RuntimeError("cannot close")

    async def recorded() -> None:
        closed.append("poller")

    monkeypatch.setattr(view, "close", broken)
    monkeypatch.setattr(poller, "close", recorded)
    assert await services.close_all() == 1
    assert closed == ["poller"]
    assert services.cluster_view(runner(), 30) is not view
