"""The scheduling logic of the shared views: single flight, staleness, idling, backoff.

The refresh function is injected: these tests are about when the views read, not about Slurm
(tests/slurm/test_cluster_view.py does the same against the real cluster).
"""

from __future__ import annotations

import asyncio

import pytest

from jupyterhub_moss.slurm import services
from jupyterhub_moss.slurm.commands import SlurmCommandError, SlurmRunner, SlurmTimeout
from jupyterhub_moss.slurm.estimates import StartEstimator
from jupyterhub_moss.slurm.jobs import JobStatusPoller
from jupyterhub_moss.slurm.models import JOB_GONE, JobStatus, PartitionInfo, StartEstimate
from jupyterhub_moss.slurm.view import MIN_INTERVAL, ClusterUnavailable, ClusterView

pytestmark = pytest.mark.unit


def partition(name: str, cpus_idle: int) -> PartitionInfo:
    return PartitionInfo(name, "up", True, 1, 1, cpus_idle, 8, 8, 8000, 3600)


class Source:
    """A refresh function that counts its calls and fails on demand."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls = 0
        self.delay = delay
        self.fail: Exception | None = None

    async def __call__(self):
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return {"cpu": partition("cpu", self.calls)}, (), {}


def failure() -> SlurmCommandError:
    return SlurmCommandError(["sinfo"], 1, "sinfo: error: Unable to contact slurm controller")


async def test_nothing_is_read_until_someone_asks():
    source = Source()
    view = ClusterView(refresh=source)
    await asyncio.sleep(0.05)
    assert source.calls == 0
    assert view.current() is None


async def test_concurrent_first_readers_share_one_refresh():
    source = Source(delay=0.05)
    view = ClusterView(refresh=source, interval=60)
    snapshots = await asyncio.gather(*(view.snapshot() for _ in range(50)))
    assert source.calls == 1
    assert all(s is snapshots[0] for s in snapshots)
    assert snapshots[0].partitions["cpu"].cpus_idle == 1
    assert snapshots[0].error is None and not snapshots[0].is_stale
    await view.close()


async def test_readers_get_the_snapshot_at_once_while_fresh():
    source = Source(delay=0.2)
    view = ClusterView(refresh=source, interval=60)
    await view.snapshot()
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(100):
        await view.snapshot()
    assert loop.time() - started < 0.05
    assert source.calls == 1
    await view.close()


async def test_no_snapshot_ever_is_an_error_and_is_not_retried_at_once():
    source = Source()
    source.fail = failure()
    view = ClusterView(refresh=source, interval=60, min_interval=0.2)
    with pytest.raises(ClusterUnavailable, match=r"Slurm is not answering: .*Unable to contact"):
        await view.snapshot()
    with pytest.raises(ClusterUnavailable):
        await view.snapshot()
    assert source.calls == 1  # the second reader did not start another attempt
    await asyncio.sleep(0.25)
    source.fail = None
    snapshot = await view.snapshot()
    assert snapshot.partitions["cpu"].cpus_idle == 2
    await view.close()


async def test_failure_keeps_the_last_snapshot_with_its_age_and_the_error():
    source = Source()
    view = ClusterView(refresh=source, interval=60)
    good = await view.snapshot()
    source.fail = SlurmTimeout(["sinfo"], 2.0)
    await view.refresh()
    stale = await view.snapshot()
    assert stale.partitions == good.partitions
    assert stale.taken_at == good.taken_at
    assert stale.is_stale
    assert "no answer within 2 s" in stale.error
    assert stale.age_seconds() >= 0
    source.fail = None
    fresh = await view.refresh()
    assert fresh is not None and not fresh.is_stale
    assert fresh.taken_at > good.taken_at
    await view.close()


async def test_background_refresh_while_asked_then_idle_then_wakes():
    source = Source()
    view = ClusterView(refresh=source, interval=0.1, idle_after=0.3, min_interval=0.01)
    for _ in range(10):  # readers for 0.5 s
        await view.snapshot()
        await asyncio.sleep(0.05)
    busy_calls = source.calls
    assert 4 <= busy_calls <= 7  # about one per interval, not one per reader
    await asyncio.sleep(0.8)  # nobody asks: at most the refreshes within idle_after
    idle_calls = source.calls
    await asyncio.sleep(0.5)
    assert source.calls == idle_calls  # idle: no more polling
    assert idle_calls - busy_calls <= 4
    # a reader after the idle period gets the old snapshot at once and wakes the refresh
    old = view.current()
    assert (await view.snapshot()) is old
    await asyncio.sleep(0.05)
    assert source.calls == idle_calls + 1
    assert view.current() is not old
    await view.close()


async def test_max_age_waits_for_a_refresh():
    source = Source()
    view = ClusterView(refresh=source, interval=60)
    first = await view.snapshot()
    await asyncio.sleep(0.02)
    second = await view.snapshot(max_age=0.01)
    assert second.taken_at > first.taken_at
    await view.close()


async def test_a_cancelled_reader_does_not_cancel_the_shared_refresh():
    source = Source(delay=0.1)
    view = ClusterView(refresh=source, interval=60)
    impatient = asyncio.ensure_future(view.snapshot())
    patient = asyncio.ensure_future(view.snapshot())
    await asyncio.sleep(0.02)
    impatient.cancel()
    snapshot = await patient
    assert snapshot.partitions["cpu"].cpus_idle == 1
    assert source.calls == 1
    await view.close()


async def test_backoff_after_failures():
    source = Source()
    view = ClusterView(refresh=source, interval=0.1, idle_after=10, min_interval=0.01)
    await view.snapshot()
    source.fail = failure()
    for _ in range(12):  # 1.2 s of readers while Slurm fails
        await view.snapshot()
        await asyncio.sleep(0.1)
    # without backoff there would be ~12 attempts; with it, waits of 0.1, 0.2, 0.4, 0.4...
    assert source.calls - 1 <= 6
    assert view.current().is_stale
    await view.close()


def test_interval_is_clamped():
    view = ClusterView(refresh=Source(), interval=0.5)
    assert view.interval == MIN_INTERVAL
    assert view.idle_after >= view.interval


async def test_one_shared_view_per_configuration():
    runner = SlurmRunner(bin_dir="/opt/slurm/bin")
    view = services.cluster_view
    assert view(runner, 30) is view(SlurmRunner("/opt/slurm/bin"), 30)
    assert view(runner, 30) is not view(SlurmRunner(), 30)
    await services.close_all()


# ---------------------------------------------------------------------------------------------
# Job status


class Squeue:
    """A job query that answers from a dict and counts its calls."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.jobs: dict[str, JobStatus] = {}
        self.fail: Exception | None = None

    async def __call__(self, job_ids):
        self.calls.append(sorted(job_ids))
        await asyncio.sleep(0.01)
        if self.fail is not None:
            raise self.fail
        return {j: s for j, s in self.jobs.items() if j in job_ids}


def job(job_id: str, state: str) -> JobStatus:
    return JobStatus(job_id, state, "None", "", None)


async def test_one_query_answers_every_job():
    squeue = Squeue()
    squeue.jobs = {str(i): job(str(i), "PENDING") for i in range(20)}
    poller = JobStatusPoller(query=squeue, interval=60, min_interval=0.05)
    statuses = await asyncio.gather(*(poller.status(str(i)) for i in range(20)))
    assert [s.state for s in statuses] == ["PENDING"] * 20
    assert len(squeue.calls) == 1
    assert squeue.calls[0] == sorted(str(i) for i in range(20))
    await poller.close()


async def test_a_job_tracked_during_a_query_gets_its_own_answer():
    squeue = Squeue()
    squeue.jobs = {"1": job("1", "RUNNING"), "2": job("2", "PENDING")}
    poller = JobStatusPoller(query=squeue, interval=60, min_interval=0.01)
    first = asyncio.ensure_future(poller.status("1"))
    await asyncio.sleep(0.005)  # the query for job 1 is running
    second = await poller.status("2")
    assert second is not None and second.state == "PENDING"
    assert (await first).state == "RUNNING"
    await poller.close()


async def test_errors_mean_unknown_never_gone():
    squeue = Squeue()
    squeue.jobs = {"7": job("7", "RUNNING")}
    poller = JobStatusPoller(query=squeue, interval=60, min_interval=0.01)
    assert (await poller.status("7")).state == "RUNNING"
    squeue.fail = SlurmTimeout(["squeue"], 5)
    for _ in range(3):
        status = await poller.status("7", max_age=0)
        assert status.state == "RUNNING"  # the last known state, not "dead"
    assert poller.last_error and "no answer" in poller.last_error
    # a job never seen while Slurm fails is unknown
    assert await poller.status("8") is None
    await poller.close()


async def test_a_missing_job_is_gone_only_after_a_second_look():
    squeue = Squeue()
    squeue.jobs = {"5": job("5", "RUNNING")}
    poller = JobStatusPoller(query=squeue, interval=60, min_interval=0.01)
    await poller.status("5")
    del squeue.jobs["5"]
    assert (await poller.status("5", max_age=0)).state == "RUNNING"  # missing once
    gone = await poller.status("5", max_age=0)
    assert gone.state == JOB_GONE and gone.finished
    await poller.close()


async def test_finished_jobs_are_not_asked_again():
    squeue = Squeue()
    squeue.jobs = {"1": job("1", "COMPLETED"), "2": job("2", "RUNNING")}
    poller = JobStatusPoller(query=squeue, interval=60, min_interval=0.01)
    await asyncio.gather(poller.status("1"), poller.status("2"))
    await poller.status("2", max_age=0)
    assert squeue.calls[-1] == ["2"]
    poller.forget("2")
    assert poller.latest("2") is None and poller.latest("1") is not None
    await poller.close()


async def test_queries_are_spaced_by_min_interval():
    squeue = Squeue()
    squeue.jobs = {"1": job("1", "PENDING")}
    poller = JobStatusPoller(query=squeue, interval=60, min_interval=0.1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(4):
        await poller.status("1", max_age=0)
    assert len(squeue.calls) == 4
    assert loop.time() - started >= 0.3
    await poller.close()


async def test_background_polling_stops_when_nothing_is_active():
    squeue = Squeue()
    squeue.jobs = {"1": job("1", "PENDING")}
    poller = JobStatusPoller(query=squeue, interval=1.0, min_interval=0.01, jitter=0)
    poller.interval = 0.05  # below the public floor, to keep the test short
    await poller.status("1")
    await asyncio.sleep(0.22)
    assert 3 <= len(squeue.calls) <= 6
    squeue.jobs["1"] = job("1", "COMPLETED")
    await asyncio.sleep(0.12)
    calls = len(squeue.calls)
    await asyncio.sleep(0.2)
    assert len(squeue.calls) == calls
    await poller.close()


# ---------------------------------------------------------------------------------------------
# Start estimates


class EstimateQuery:
    def __init__(self, start) -> None:
        self.calls = 0
        self.start = start
        self.fail: Exception | None = None

    async def __call__(self, username, args, script):
        self.calls += 1
        await asyncio.sleep(0.01)
        if self.fail is not None:
            raise self.fail
        return StartEstimate(self.start, 1, "c1", "cpu")


@pytest.fixture
def start_time():
    from datetime import datetime, timezone

    return datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)


async def test_estimates_are_cached_per_user_and_request(start_time):
    clock = [100.0]
    test_only = EstimateQuery(start_time)
    estimator = StartEstimator(query=test_only, clock=lambda: clock[0], min_spacing=0)
    results = await asyncio.gather(
        *(estimator.estimate("alice", ["-p", "cpu"], "#!/bin/sh\n") for _ in range(5))
    )
    assert all(r == StartEstimate(start_time, 1, "c1", "cpu") for r in results)
    assert test_only.calls == 1
    await estimator.estimate("bob", ["-p", "cpu"], "#!/bin/sh\n")
    await estimator.estimate("alice", ["-p", "gpu"], "#!/bin/sh\n")
    assert test_only.calls == 3
    clock[0] += 31
    await estimator.estimate("alice", ["-p", "cpu"], "#!/bin/sh\n")
    assert test_only.calls == 4


async def test_estimates_are_rate_limited_per_user(start_time):
    clock = [100.0]
    test_only = EstimateQuery(start_time)
    estimator = StartEstimator(query=test_only, clock=lambda: clock[0], min_spacing=5)
    assert await estimator.estimate("alice", ["-c", "1"], "") is not None
    clock[0] += 1
    assert await estimator.estimate("alice", ["-c", "2"], "") is None  # too soon, nothing cached
    assert await estimator.estimate("alice", ["-c", "1"], "") is not None  # cached
    assert await estimator.estimate("bob", ["-c", "2"], "") is not None  # another user
    assert test_only.calls == 2
    clock[0] += 5
    assert await estimator.estimate("alice", ["-c", "2"], "") is not None
    assert test_only.calls == 3


async def test_a_failed_estimate_is_none(start_time):
    test_only = EstimateQuery(start_time)
    test_only.fail = SlurmCommandError(["sbatch"], 1, "allocation failure: Requested node ...")
    estimator = StartEstimator(query=test_only, min_spacing=0)
    assert await estimator.estimate("alice", ["--gres=gpu:9"], "") is None
