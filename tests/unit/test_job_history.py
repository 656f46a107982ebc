"""How a job ended once squeue has forgotten it: sacct's records, and the poller asking for them.

The parser reads the records the local cluster's accounting gave (``accounting_sacct_*``) and
hand-made variants. The poller's tests inject squeue and a runner that answers sacct, and say
how often sacct runs: once per batch of jobs that left squeue, never again for the same job,
and not at all for a while after it failed or said the cluster has no accounting.
``tests/slurm/test_job_history.py`` does it on the real cluster.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from support.replay_slurm import FIXTURES

from jupyterhub_moss.job_reports import ENDED_STATES, ended_job_summary, final_exit_code
from jupyterhub_moss.slurm.accounting import accounting_is_off
from jupyterhub_moss.slurm.commands import SlurmCommandError, SlurmTimeout
from jupyterhub_moss.slurm.job_history import (
    ACCOUNTING_OFF_RECHECK,
    PAUSE_AFTER_FAILURE,
    SACCT_TIMEOUT,
    EndedJob,
    EndedJobLookup,
    parse_sacct,
    sacct_args,
)
from jupyterhub_moss.slurm.jobs import JobStatusPoller, gone_status
from jupyterhub_moss.slurm.models import JOB_GONE, JobStatus

pytestmark = pytest.mark.unit

ENDED = (FIXTURES / "accounting_sacct_ended.txt").read_text()
UNKNOWN = (FIXTURES / "accounting_sacct_unknown.txt").read_text()
OFF = (FIXTURES / "accounting_off_sacct.err").read_text()
NO_SLURMDBD = (FIXTURES / "accounting_sacct_no_slurmdbd.err").read_text()


def record(job_id: str, state: str, exit_code: str = "0:0", reason: str = "None") -> str:
    return f"{job_id}|{state}|{exit_code}|{reason}|physics|normal|debug|c[1-2]\n"


# -- the records ------------------------------------------------------------------------------


def test_the_captured_records_give_state_and_exit_code_of_each_job():
    jobs = parse_sacct(ENDED)
    assert {job_id: (j.state, j.exit_code, j.signal) for job_id, j in jobs.items()} == {
        "2765": ("COMPLETED", 0, 0),
        "2766": ("FAILED", 3, 0),
        "2767": ("CANCELLED", 0, 0),  # "CANCELLED by 0": who cancelled is dropped
        "2768": ("TIMEOUT", 0, 0),
    }
    failed = jobs["2766"]
    assert (failed.reason, failed.account, failed.qos, failed.partition, failed.nodes) == (
        "None",
        "physics",
        "normal",
        "debug",
        "localhost",
    )
    assert failed.describe() == "FAILED with exit code 3"


def test_a_job_the_accounting_never_saw_is_absent():
    assert UNKNOWN.strip() == ""
    assert parse_sacct(UNKNOWN) == {}


@pytest.mark.parametrize(
    ("line", "job_id", "state", "exit_code", "signal"),
    [
        (record("12_3", "COMPLETED"), "12_3", "COMPLETED", 0, 0),  # an array task
        (record("40", "CANCELLED by 1001", "0:15"), "40", "CANCELLED", 0, 15),
        (record("41", "FAILED", "0:9"), "41", "FAILED", 0, 9),  # killed by a signal
        (record("42", "OUT_OF_MEMORY", "0:125"), "42", "OUT_OF_MEMORY", 0, 125),
        (record("43", "NODE_FAIL", "1:0", "NodeDown"), "43", "NODE_FAIL", 1, 0),
        (record("44", "FAILED", "x:y"), "44", "FAILED", None, None),  # unreadable exit code
        (record("45", ""), "45", "UNKNOWN", 0, 0),
    ],
)
def test_hand_made_records(line, job_id, state, exit_code, signal):
    job = parse_sacct(line)[job_id]
    assert (job.state, job.exit_code, job.signal) == (state, exit_code, signal)


def test_an_unreadable_line_is_skipped_and_logged(caplog):
    text = "50|COMPLETED|0:0\n\n" + record("51", "TIMEOUT")
    with caplog.at_level(logging.WARNING, logger="jupyterhub_moss.slurm.job_history"):
        jobs = parse_sacct(text)
    assert list(jobs) == ["51"]
    assert "skipping sacct line" in caplog.text


def test_sacct_is_asked_about_job_ids_only():
    assert sacct_args(["7", "12_3", "-a", "1,2", ""]) == [
        "-n",
        "-P",
        "-X",
        "--jobs=7,12_3",
        "--format=JobID,State,ExitCode,Reason,Account,QOS,Partition,NodeList",
    ]
    with pytest.raises(ValueError):
        sacct_args(["--allusers"])


def test_no_accounting_is_told_apart_from_slurmdbd_being_down():
    assert accounting_is_off(OFF)
    assert not accounting_is_off(NO_SLURMDBD)


# -- the words --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "reason", "exit_code", "words"),
    [
        ("TIMEOUT", "None", "0:0", "TIMEOUT (time limit reached)"),
        ("FAILED", "None", "3:0", "FAILED with exit code 3 (its commands ended with an error)"),
        (
            "FAILED",
            "NonZeroExitCode",
            "2:0",
            "FAILED with exit code 2 (its commands ended with an error; NonZeroExitCode)",
        ),
        ("CANCELLED", "None", "0:15", f"CANCELLED ({ENDED_STATES['CANCELLED']}; signal 15)"),
        ("NODE_FAIL", "NodeDown", "", "NODE_FAIL (its node failed; NodeDown)"),
        ("SPECIAL_EXIT", "None", "(null)", "SPECIAL_EXIT"),  # no words: Slurm's own
        (JOB_GONE, "not known to Slurm", "", f"GONE ({ENDED_STATES[JOB_GONE]})"),
    ],
)
def test_how_a_job_ended_in_words(state, reason, exit_code, words):
    assert ended_job_summary(state, reason, exit_code) == words


def test_the_common_final_states_have_words():
    common = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL"}
    common |= {"PREEMPTED", "BOOT_FAIL", "DEADLINE", JOB_GONE}
    assert common <= set(ENDED_STATES)


# -- the status of a job squeue forgot ----------------------------------------------------------


def test_a_final_record_becomes_the_jobs_status():
    ended = parse_sacct(record("61", "TIMEOUT", "0:15"))["61"]
    status = gone_status("61", ended)
    assert (status.state, status.reason, status.node, status.ended) == (
        "TIMEOUT",
        "None",
        "c1",
        ended,
    )
    assert status.finished and final_exit_code(status) == "0:15"


@pytest.mark.parametrize("state", ["RUNNING", "PENDING", "REQUEUED"])
def test_a_record_that_has_not_ended_leaves_the_job_gone(state):
    status = gone_status("62", parse_sacct(record("62", state))["62"])
    assert (status.state, status.ended) == (JOB_GONE, None)
    assert status.finished and final_exit_code(status) == ""


# -- the poller -------------------------------------------------------------------------------


class Squeue:
    """squeue for the poller: answers about the jobs in ``jobs``, counts its calls."""

    def __init__(self, **states: str) -> None:
        self.jobs = {
            job_id: JobStatus(job_id, state, "None", "", None) for job_id, state in states.items()
        }
        self.calls = 0

    async def __call__(self, job_ids):
        self.calls += 1
        await asyncio.sleep(0)
        return {j: s for j, s in self.jobs.items() if j in job_ids}


class Sacct:
    """A runner that answers only sacct: ``out``, or raises ``error``; records each call."""

    def __init__(self, out: str = "", error: Exception | None = None) -> None:
        self.out, self.error = out, error
        self.calls: list[tuple[str, list[str], float | None]] = []

    async def run(self, name, args, *, timeout=None):
        self.calls.append((name, list(args), timeout))
        await asyncio.sleep(0)
        if self.error is not None:
            raise self.error
        return self.out

    def asked_about(self) -> list[str]:
        return [args[3].removeprefix("--jobs=") for _, args, _ in self.calls]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def failure(stderr: str) -> SlurmCommandError:
    return SlurmCommandError(["sacct"], 1, stderr)


def poller_for(squeue: Squeue, sacct: Sacct, clock: Clock | None = None) -> JobStatusPoller:
    lookup = EndedJobLookup(sacct, clock=clock or Clock())  # type: ignore[arg-type]
    return JobStatusPoller(query=squeue, ended_query=lookup, interval=60, min_interval=0.01)


async def end(poller: JobStatusPoller, squeue: Squeue, *job_ids: str) -> list[JobStatus]:
    """Take the jobs out of squeue and look until the poller has declared them ended."""
    for job_id in job_ids:
        squeue.jobs.pop(job_id)
    await poller.status(job_ids[0], max_age=0)  # missing once: not ended yet
    await poller.status(job_ids[0], max_age=0)
    return [poller.latest(job_id) for job_id in job_ids]


async def test_a_job_gone_from_squeue_gets_its_final_state_from_one_sacct():
    squeue, sacct = Squeue(**{"2768": "RUNNING"}), Sacct(ENDED)
    poller = poller_for(squeue, sacct)
    await poller.status("2768")
    squeue.jobs.pop("2768")
    missing_once = await poller.status("2768", max_age=0)
    assert missing_once.state == "RUNNING" and sacct.calls == []  # not before the second miss
    status = await poller.status("2768", max_age=0)
    assert status.state == "TIMEOUT" and status.finished
    assert status.ended == parse_sacct(ENDED)["2768"]
    assert sacct.calls == [("sacct", sacct_args(["2768"]), SACCT_TIMEOUT)]
    # ended: neither squeue nor sacct is asked about it again
    squeue_calls = squeue.calls
    assert (await poller.status("2768", max_age=0)).state == "TIMEOUT"
    assert squeue.calls == squeue_calls and len(sacct.calls) == 1
    await poller.close()


async def test_jobs_that_leave_squeue_together_cost_one_sacct():
    squeue = Squeue(**{"2765": "RUNNING", "2766": "RUNNING", "2767": "PENDING", "7": "RUNNING"})
    sacct = Sacct(ENDED)
    poller = poller_for(squeue, sacct)
    await asyncio.gather(*(poller.status(job_id) for job_id in squeue.jobs))
    statuses = await end(poller, squeue, "2765", "2766", "2767")
    assert [(s.state, s.ended.exit_code) for s in statuses] == [
        ("COMPLETED", 0),
        ("FAILED", 3),
        ("CANCELLED", 0),
    ]
    assert sacct.asked_about() == ["2765,2766,2767"]
    assert poller.latest("7").state == "RUNNING"
    await poller.close()


async def test_a_job_the_accounting_does_not_know_is_gone():
    squeue, sacct = Squeue(**{"9": "RUNNING"}), Sacct(UNKNOWN)
    poller = poller_for(squeue, sacct)
    await poller.status("9")
    [status] = await end(poller, squeue, "9")
    assert (status.state, status.reason, status.ended) == (JOB_GONE, "not known to Slurm", None)
    assert len(sacct.calls) == 1
    await poller.close()


@pytest.mark.parametrize(
    "error",
    [failure(NO_SLURMDBD), SlurmTimeout(["sacct"], SACCT_TIMEOUT), RuntimeError("a bug")],
    ids=["slurmdbd-down", "timeout", "bug"],
)
async def test_sacct_failing_leaves_the_job_gone_as_before_logged_once(caplog, error):
    clock = Clock()
    squeue, sacct = Squeue(**{"1": "RUNNING", "2": "RUNNING", "3": "RUNNING"}), Sacct(error=error)
    poller = poller_for(squeue, sacct, clock)
    await asyncio.gather(poller.status("1"), poller.status("2"), poller.status("3"))
    with caplog.at_level(logging.DEBUG, logger="jupyterhub_moss.slurm.job_history"):
        [first] = await end(poller, squeue, "1")
        clock.now += PAUSE_AFTER_FAILURE - 1
        [paused] = await end(poller, squeue, "2")  # within the pause: sacct is not asked
        clock.now += 2
        [again] = await end(poller, squeue, "3")  # after it: asked, fails again
    assert [s.state for s in (first, paused, again)] == [JOB_GONE] * 3
    assert sacct.asked_about() == ["1", "3"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "sacct failed" in warnings[0].getMessage()
    assert poller.last_error is None  # squeue answered: job states are not "unknown"
    await poller.close()


async def test_without_accounting_sacct_is_not_asked_again_for_an_hour(caplog):
    clock = Clock()
    squeue = Squeue(**{"1": "RUNNING", "2": "RUNNING", "3": "RUNNING"})
    sacct = Sacct(error=failure(OFF))
    lookup = EndedJobLookup(sacct, clock=clock)  # type: ignore[arg-type]
    poller = JobStatusPoller(query=squeue, ended_query=lookup, interval=60, min_interval=0.01)
    await asyncio.gather(poller.status("1"), poller.status("2"), poller.status("3"))
    with caplog.at_level(logging.DEBUG, logger="jupyterhub_moss.slurm.job_history"):
        [first] = await end(poller, squeue, "1")
        clock.now += ACCOUNTING_OFF_RECHECK - 1
        [second] = await end(poller, squeue, "2")
        assert sacct.asked_about() == ["1"]
        clock.now += 2
        sacct.error, sacct.out = None, record("3", "COMPLETED")  # the site turned it on
        [third] = await end(poller, squeue, "3")
    assert (first.state, second.state, third.state) == (JOB_GONE, JOB_GONE, "COMPLETED")
    assert sacct.asked_about() == ["1", "3"]
    assert not lookup.accounting_off
    messages = [r.getMessage() for r in caplog.records]
    assert sum("no accounting database" in m for m in messages) == 1
    assert sum("answers again" in m for m in messages) == 1
    await poller.close()


async def test_a_broken_injected_lookup_leaves_the_job_gone():
    async def broken(job_ids):
        raise RuntimeError("bug")

    squeue = Squeue(**{"1": "RUNNING"})
    poller = JobStatusPoller(query=squeue, ended_query=broken, interval=60, min_interval=0.01)
    await poller.status("1")
    [status] = await end(poller, squeue, "1")
    assert status.state == JOB_GONE
    await poller.close()


async def test_a_poller_without_a_runner_asks_no_accounting():
    squeue = Squeue(**{"1": "RUNNING"})
    poller = JobStatusPoller(query=squeue, interval=60, min_interval=0.01)
    await poller.status("1")
    [status] = await end(poller, squeue, "1")
    assert status == JobStatus("1", JOB_GONE, "not known to Slurm", "", None)
    await poller.close()


async def test_a_lookup_with_no_job_id_sacct_can_take_runs_nothing():
    sacct = Sacct(ENDED)
    assert await EndedJobLookup(sacct)(["not-a-job"]) == {}  # type: ignore[arg-type]
    assert sacct.calls == []


async def test_sacct_never_waits_longer_than_the_admins_slurm_timeout():
    quick = Sacct(ENDED)
    quick.timeout = 2.0  # type: ignore[attr-defined]
    await EndedJobLookup(quick)(["2765"])  # type: ignore[arg-type]
    assert quick.calls[0][2] == 2.0


def test_ended_job_records_compare_by_value():
    assert parse_sacct(record("5", "FAILED", "3:0"))["5"] == EndedJob(
        "5", "FAILED", 3, 0, "None", "physics", "normal", "debug", "c[1-2]"
    )
