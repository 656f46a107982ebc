"""The lifecycle's start, poll, stop and progress, against Slurm's real answers replayed.

Every answer is one the local cluster gave (``tests/fixtures/slurm/lifecycle_*``, captured by
``capture_lifecycle.py`` there): job 1 pended for Resources, ran, then failed because its
Jupyter did not exist; job 2 was a server its user cancelled; job 3 completed. ``sacct``'s
answers about a job squeue forgot are the accounting's real ones (``accounting_*``), except
the records of these three jobs, which are written in the format sacct printed for others.
Each test says what the spawner ran (command, arguments, and as whom) as well as what it made
of the answers. The real cluster's version of these is ``tests/slurm/test_lifecycle*.py`` and
``tests/slurm/test_job_history.py``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import shlex
import socket
from dataclasses import replace

import pytest
from support.replay_slurm import (
    FIXTURES,
    ME,
    AnsweringServer,
    ReplaySlurm,
    ReplaySpawner,
    Reply,
    spawn_request,
)
from tornado import web

from jupyterhub_moss.job_reports import SpawnFailed
from jupyterhub_moss.slurm.job_history import sacct_args

pytestmark = pytest.mark.unit

SBATCH = Reply.captured("sbatch")
FAILED_JOB = SBATCH.stdout.strip()  # pends, runs, fails
SERVER_JOB = Reply.captured("squeue_cancelled").stdout.split("|")[0]  # cancelled by its user
DONE_JOB = Reply.captured("squeue_completed").stdout.split("|")[0]  # completed
AS_USER = f"sudo -E -u {ME}"
OUTPUT_LINES = (FIXTURES / "lifecycle_job_output.txt").read_text()  # the failed job's own
# sacct about a job it has no record of, and on a cluster without accounting (exit 1)
SACCT_NO_RECORD = Reply(stdout=(FIXTURES / "accounting_sacct_unknown.txt").read_text())
SACCT_OFF = Reply(stderr=(FIXTURES / "accounting_off_sacct.err").read_text(), returncode=1)


def sacct_record(job_id: str, state: str, exit_code: str) -> Reply:
    """sacct's record of one of the jobs above (``-n -P -X``, the package's fields)."""
    return Reply(stdout=f"{job_id}|{state}|{exit_code}|None|physics|normal|gpu|localhost\n")


def squeue(job_id: str) -> str:
    """The poller's squeue, as the captures ran it: as the hub (no user prefix)."""
    return f"squeue -h -t all -j {job_id} -o {shlex.quote('%i|%T|%B|%N|%S|%e|%r')}"


def sacct(job_id: str) -> str:
    """The poller's sacct about a job squeue forgot, as the hub."""
    return shlex.join(["sacct", *sacct_args([job_id])])


def run(coroutine):
    """A fresh loop in a thread: the browser tier keeps one running in the main thread."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=30)


def spawner_for(
    tmp_path, replies: dict[str, list[Reply]], traits: dict | None = None, **options: str
) -> ReplaySpawner:
    """A spawner whose Slurm answers ``replies``, spawning a request of ``options``."""
    request = spawn_request(**options)
    return ReplaySpawner(ReplaySlurm(replies), request, home=str(tmp_path), **(traits or {}))


def running(job_id: str = FAILED_JOB, node: str = "localhost") -> dict:
    """The state a hub saved for a server whose job runs."""
    return {"job_id": job_id, "job_node": node, "job_partition": "gpu"}


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def start_following(
    spawner: ReplaySpawner, port_on: str = "Running on node", answering: bool = True
):
    """Start, read the progress stream as the spawn-pending page does, and report the port of
    a real server on loopback (or, not ``answering``, a port nothing listens on) when an event
    starts with ``port_on``. Returns start()'s result (or error) and the messages."""
    async with AnsweringServer() as server:
        started = asyncio.ensure_future(spawner.start())
        await asyncio.sleep(0)  # start() has set up its progress
        messages = []
        async for event in spawner.progress():
            messages.append(event["message"])
            if event["message"].startswith(port_on):
                assert spawner.report_port(server.port if answering else closed_port())
        try:
            result = await started
        except web.HTTPError as error:  # SpawnFailed, or the spawner's refusal of the options
            return error, messages
    # start() returned only once the server had answered
    assert result == ("localhost", server.port) and server.requests >= 1
    return result, messages


# -- start ------------------------------------------------------------------------------------


def test_a_job_that_pends_then_runs_gives_its_node_and_the_reported_port(tmp_path):
    replies = {
        "sbatch": [SBATCH],
        "squeue": [Reply.captured("squeue_pending"), Reply.captured("squeue_running")],
    }
    spawner = spawner_for(tmp_path, replies, ngpus="1")

    result, messages = run(start_following(spawner))

    assert result[0] == "localhost"
    assert messages[0] == f"Submitted job {FAILED_JOB} to partition gpu"
    assert messages[1].startswith("Waiting for resources (Resources); expected start ")
    assert messages[2:] == [
        "Running on node localhost, waiting for Jupyter to start",
        f"Jupyter listens on localhost:{result[1]}, waiting for it to answer",
    ]
    assert spawner.slurm.ran() == [f"{AS_USER} sbatch --parsable", squeue(FAILED_JOB)]
    submitted = spawner.slurm.calls[0]
    assert submitted.env_extra["JUPYTERHUB_API_TOKEN"] == "the-servers-token"
    assert submitted.input == spawner.build_batch_script(spawner.request, submitted.env_extra)
    assert "#SBATCH --gres=gpu:1" in submitted.input.splitlines()
    assert all(call.prefix is None for call in spawner.slurm.calls_of("squeue"))
    assert spawner.requests_given == 1  # the options were read once, from the request
    assert spawner.get_state() == {
        "job_id": FAILED_JOB,
        "job_status": "RUNNING",
        "job_node": "localhost",
        "job_partition": "gpu",
    }


def test_a_port_reported_before_any_look_saw_the_job_run_is_checked_at_once(tmp_path):
    replies = {
        "sbatch": [SBATCH],
        "squeue": [Reply.captured("squeue_pending"), Reply.captured("squeue_running")],
    }
    spawner = spawner_for(tmp_path, replies, traits={"startup_poll_interval": 60})

    result, messages = run(start_following(spawner, port_on="Submitted job"))

    # A look a minute later would time the test out: the report made the spawner look now.
    assert result[0] == "localhost"
    assert "Running on node localhost, waiting for Jupyter to start" in messages
    assert spawner.slurm.ran() == [f"{AS_USER} sbatch --parsable", squeue(FAILED_JOB)]


def test_a_job_gone_from_squeue_while_pending_fails_with_its_final_state_and_output(tmp_path):
    (tmp_path / f"slurm-{FAILED_JOB}.out").write_text(OUTPUT_LINES)
    replies = {
        "sbatch": [SBATCH],
        "squeue": [Reply.captured("squeue_pending"), Reply.captured("squeue_unknown_job")],
        "sacct": [sacct_record(FAILED_JOB, "FAILED", "2:0")],
    }
    spawner = spawner_for(tmp_path, replies, output="true")

    error, messages = run(start_following(spawner))

    assert isinstance(error, SpawnFailed) and error.status_code == 502
    assert str(error) == (
        f"Slurm job {FAILED_JOB} ended before Jupyter started: FAILED with exit code 2 (its "
        "commands ended with an error). "
        f"Last lines of {tmp_path}/slurm-{FAILED_JOB}.out:\n" + OUTPUT_LINES.strip()
    )
    assert [m.split(" (")[0] for m in messages] == [
        f"Submitted job {FAILED_JOB} to partition gpu",
        "Waiting for resources",
    ]
    # the accounting told how it ended: no scontrol, which no longer knows the job either
    assert spawner.slurm.ran() == [
        f"{AS_USER} sbatch --parsable",
        squeue(FAILED_JOB),
        sacct(FAILED_JOB),
    ]
    # gone means missing from two answers in a row, never from one
    assert len(spawner.slurm.calls_of("squeue")) >= 3
    assert len(spawner.slurm.calls_of("sacct")) == 1
    assert spawner.job_status == "FAILED"


@pytest.mark.parametrize("sacct_answer", [SACCT_NO_RECORD, SACCT_OFF], ids=["no-record", "off"])
def test_a_job_gone_without_an_accounting_record_fails_with_what_scontrol_says(
    tmp_path, sacct_answer
):
    replies = {
        "sbatch": [SBATCH],
        "squeue": [Reply.captured("squeue_pending"), Reply.captured("squeue_unknown_job")],
        "sacct": [sacct_answer],
        "scontrol": [Reply.captured("scontrol_failed")],
    }
    spawner = spawner_for(tmp_path, replies)

    error, _ = run(start_following(spawner))

    assert str(error).startswith(
        f"Slurm job {FAILED_JOB} ended before Jupyter started: FAILED with exit code 2 (its "
        "commands ended with an error; NonZeroExitCode)."
    )
    assert spawner.slurm.ran() == [
        f"{AS_USER} sbatch --parsable",
        squeue(FAILED_JOB),
        sacct(FAILED_JOB),
        f"scontrol show job -o {FAILED_JOB}",
    ]


def test_a_job_nobody_remembers_fails_saying_so(tmp_path):
    replies = {
        "sbatch": [SBATCH],
        "squeue": [Reply.captured("squeue_pending"), Reply.captured("squeue_unknown_job")],
        "sacct": [SACCT_OFF],
        "scontrol": [Reply.captured("squeue_unknown_job")],  # the same "Invalid job id"
    }
    spawner = spawner_for(tmp_path, replies)

    error, _ = run(start_following(spawner))

    assert str(error).startswith(
        f"Slurm job {FAILED_JOB} ended before Jupyter started: GONE (Slurm no longer knows the "
        "job and has no record of how it ended)."
    )


def test_a_job_that_fails_after_it_started_running_fails_the_spawn_saying_why(tmp_path):
    replies = {
        "sbatch": [SBATCH],
        "squeue": [
            Reply.captured("squeue_pending"),
            Reply.captured("squeue_running"),
            Reply.captured("squeue_failed"),
        ],
        "scontrol": [Reply.captured("scontrol_failed")],
    }
    spawner = spawner_for(tmp_path, replies)  # output not saved: /dev/null

    error, messages = run(start_following(spawner, port_on="never"))

    assert isinstance(error, SpawnFailed) and error.status_code == 502
    assert str(error) == (
        f"Slurm job {FAILED_JOB} ended before Jupyter started: FAILED with exit code 2 (its "
        "commands ended with an error; NonZeroExitCode). The job's output was not saved; tick "
        "the output option to keep a log."
    )
    assert messages[-1] == "Running on node localhost, waiting for Jupyter to start"
    assert spawner.slurm.ran() == [
        f"{AS_USER} sbatch --parsable",
        squeue(FAILED_JOB),
        f"scontrol show job -o {FAILED_JOB}",
    ]


def test_a_job_that_fails_while_its_server_is_awaited_fails_the_spawn_at_the_next_look(tmp_path):
    """The port came, the server never answers, the job ends: not a wait for http_timeout."""
    replies = {
        "sbatch": [SBATCH],
        "squeue": [Reply.captured("squeue_running"), Reply.captured("squeue_failed")],
        "scontrol": [Reply.captured("scontrol_failed")],
    }
    spawner = spawner_for(tmp_path, replies, traits={"http_timeout": 600})

    error, messages = run(start_following(spawner, answering=False))

    assert isinstance(error, SpawnFailed) and error.status_code == 502
    # it did start: its server listened (the port came) but never answered
    assert (
        f"Slurm job {FAILED_JOB} ended after Jupyter started listening and before it answered: "
        "FAILED" in str(error)
    )
    assert messages[-1].startswith("Jupyter listens on localhost:")
    assert messages[-1].endswith(", waiting for it to answer")


def test_sbatch_refusing_the_job_is_a_400_in_slurms_words_and_nothing_else_runs(tmp_path):
    spawner = spawner_for(tmp_path, {"sbatch": [Reply.captured("sbatch_refused")]})

    error, messages = run(start_following(spawner))

    assert isinstance(error, SpawnFailed) and error.status_code == 400
    assert str(error) == (
        "Slurm refused the job: Memory specification can not be satisfied "
        "Batch job submission failed: Requested node configuration is not available"
    )
    assert messages == []
    assert spawner.slurm.ran() == [f"{AS_USER} sbatch --parsable"]
    assert spawner.job_id == ""


def test_a_spawn_cancelled_while_its_job_pends_cancels_the_job_as_the_user(tmp_path):
    replies = {
        "sbatch": [SBATCH],
        "squeue": [Reply.captured("squeue_pending")],
        "scancel": [Reply.captured("scancel")],
    }
    spawner = spawner_for(tmp_path, replies)

    async def cancel_while_pending() -> list[str]:
        started = asyncio.ensure_future(spawner.start())
        await asyncio.sleep(0)
        messages = []
        async for event in spawner.progress():
            messages.append(event["message"])
            if event["message"].startswith("Waiting for resources"):
                started.cancel()  # what JupyterHub does when the user cancels, or at timeout
        with pytest.raises(asyncio.CancelledError):
            await started
        return messages

    run(cancel_while_pending())
    assert spawner.slurm.ran() == [
        f"{AS_USER} sbatch --parsable",
        squeue(FAILED_JOB),
        f"{AS_USER} scancel {FAILED_JOB}",
    ]


@pytest.mark.parametrize("steps", range(8))
def test_a_cancel_landing_just_after_the_job_reports_still_ends_the_start(tmp_path, steps):
    """JupyterHub fails the user's stop (a 500) if the start it cancelled still runs a second
    later. A cancel that landed in the steps where the report woke the start was lost before
    (``asyncio.wait_for``, see :mod:`jupyterhub_moss.waiting`); each step is tried."""
    replies = {
        "sbatch": [SBATCH],
        "squeue": [Reply.captured("squeue_pending")],
        "scancel": [Reply.captured("scancel")],
    }
    spawner = spawner_for(tmp_path, replies)

    async def report_then_cancel() -> None:
        started = asyncio.ensure_future(spawner.start())
        await asyncio.sleep(0)
        async for event in spawner.progress():
            if event["message"].startswith("Waiting for resources"):
                break
        assert spawner.report_port(closed_port())
        for _ in range(steps):
            await asyncio.sleep(0)
        started.cancel()
        # JupyterHub waits one second; a lost cancel would leave the start waiting for good
        done, _ = await asyncio.wait({started}, timeout=1)
        assert done and started.cancelled(), f"the start lost the cancel {steps} steps in"

    run(report_then_cancel())
    assert spawner.slurm.ran()[-1] == f"{AS_USER} scancel {FAILED_JOB}"


def test_a_cancelled_start_does_not_wait_for_a_slow_scancel(tmp_path):
    """JupyterHub stops a server one second after cancelling its start, and that stop fails
    (a 500) while the start still runs: a scancel stuck on a busy controller goes on alone."""
    replies = {
        "sbatch": [SBATCH],
        "squeue": [Reply.captured("squeue_pending")],
        "scancel": [replace(Reply.captured("scancel"), delay=60.0)],
    }
    spawner = spawner_for(tmp_path, replies)

    async def cancel_while_pending() -> None:
        started = asyncio.ensure_future(spawner.start())
        await asyncio.sleep(0)  # start() sets up its progress
        async for event in spawner.progress():
            if event["message"].startswith("Waiting for resources"):
                started.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(started, 30)  # not the 60 s the scancel takes

    run(cancel_while_pending())
    assert spawner.slurm.ran()[-1] == f"{AS_USER} scancel {FAILED_JOB}"  # it was started


def test_options_the_spawner_refuses_stop_the_spawn_before_any_command_runs(tmp_path):
    spawner = spawner_for(tmp_path, {})

    async def refuse() -> None:
        spawner.requests_given += 1
        raise web.HTTPError(400, "nprocs: at most 8 on gpu")

    spawner.spawn_request = refuse
    error, messages = run(start_following(spawner))

    assert isinstance(error, web.HTTPError) and error.status_code == 400
    assert spawner.requests_given == 1 and messages == [] and spawner.slurm.calls == []


def test_the_lifecycle_alone_has_no_request_to_give():
    from jupyterhub_moss.lifecycle import SlurmJobLifecycle

    with pytest.raises(NotImplementedError, match="spawn_request"):
        run(SlurmJobLifecycle().spawn_request())


# -- poll -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failing",
    [Reply.timed_out(20), Reply.captured("squeue_no_controller")],
    ids=["timeout", "no-controller"],
)
def test_squeue_failing_while_the_server_runs_is_unknown_never_stopped(tmp_path, failing):
    replies = {"squeue": [Reply.captured("squeue_running"), failing]}
    spawner = spawner_for(tmp_path, replies)
    spawner.load_state(running())

    async def three_polls() -> list[int | None]:
        results = []
        for _ in range(3):
            results.append(await spawner.poll())
            await asyncio.sleep(0.02)  # JupyterHub's poll_interval, in the replay's time
        return results

    assert run(three_polls()) == [None, None, None]
    assert spawner.job_id == FAILED_JOB and spawner.job_node == "localhost"
    assert spawner.slurm.ran() == [squeue(FAILED_JOB)]  # and never scancel
    assert len(spawner.slurm.calls_of("squeue")) == 3


@pytest.mark.parametrize(
    ("answer", "job_id", "status"),
    [
        ("squeue_completed", DONE_JOB, 0),
        ("squeue_failed", FAILED_JOB, 1),
        ("squeue_cancelled", SERVER_JOB, 1),
    ],
)
def test_a_poll_after_the_job_ended_gives_its_status_and_clears_the_state(
    tmp_path, answer, job_id, status
):
    spawner = spawner_for(tmp_path, {"squeue": [Reply.captured(answer)]})
    spawner.load_state(running(job_id))

    assert run(spawner.poll()) == status
    # nothing of the job is left, but how it ended (for the session lists)
    state = spawner.get_state()
    assert list(state) == ["moss_last_end"]
    assert state["moss_last_end"]["job_id"] == job_id
    assert spawner.slurm.ran() == [squeue(job_id)]
    assert spawner.poller.latest(job_id) is None  # no longer tracked


@pytest.mark.parametrize(
    "unknown",
    # squeue's answer for one unknown id, and for several (the poller asks about every job
    # the hub tracks at once)
    [Reply.captured("squeue_unknown_job"), Reply.captured("squeue_unknown_jobs")],
    ids=["one-id", "several-ids"],
)
def test_a_job_slurm_no_longer_knows_has_ended_at_the_second_look_not_the_first(tmp_path, unknown):
    spawner = spawner_for(tmp_path, {"squeue": [unknown], "sacct": [SACCT_NO_RECORD]})
    spawner.load_state(running())

    async def two_polls() -> list[int | None]:
        return [await spawner.poll(), await spawner.poll()]

    assert run(two_polls()) == [None, 1]
    assert spawner.job_id == ""
    assert spawner.slurm.ran() == [squeue(FAILED_JOB), sacct(FAILED_JOB)]


@pytest.mark.parametrize(
    ("state", "exit_code", "status", "logged"),
    [
        ("COMPLETED", "0:0", 0, "COMPLETED (its commands ended without an error)"),
        ("TIMEOUT", "0:15", 1, "TIMEOUT (time limit reached; signal 15)"),
        ("OUT_OF_MEMORY", "0:125", 1, "OUT_OF_MEMORY (out of memory: it used more memory"),
        ("FAILED", "3:0", 1, "FAILED with exit code 3 (its commands ended with an error)"),
    ],
)
def test_a_server_that_left_squeue_ends_with_the_accountings_state_in_the_log(
    tmp_path, caplog, state, exit_code, status, logged
):
    replies = {
        "squeue": [Reply.captured("squeue_unknown_job")],
        "sacct": [sacct_record(SERVER_JOB, state, exit_code)],
    }
    spawner = spawner_for(tmp_path, replies)
    spawner.load_state(running(SERVER_JOB))

    async def polls() -> list[int | None]:
        return [await spawner.poll(), await spawner.poll()]

    with caplog.at_level("INFO"):
        assert run(polls()) == [None, status]
    assert f"Job {SERVER_JOB} of {ME} has ended: {logged}" in caplog.text
    assert spawner.slurm.ran() == [squeue(SERVER_JOB), sacct(SERVER_JOB)]


def test_a_poll_of_a_spawn_a_dead_hub_left_unfinished_cancels_its_job(tmp_path):
    spawner = spawner_for(tmp_path, {"scancel": [Reply.captured("scancel")]})
    spawner.load_state({"job_id": FAILED_JOB, "moss_starting": True})

    assert run(spawner.poll()) == 1
    assert spawner.slurm.ran() == [f"{AS_USER} scancel {FAILED_JOB}"]
    assert spawner.job_id == ""


# -- stop -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ended",
    [Reply.captured("squeue_cancelled"), Reply.captured("squeue_unknown_job")],
    ids=["listed-cancelled", "no-longer-listed"],
)
def test_stop_cancels_as_the_user_and_waits_until_slurm_says_the_job_ended(tmp_path, ended):
    server_running = Reply.captured("squeue_server_running")
    replies = {
        "scancel": [Reply.captured("scancel")],
        "squeue": [server_running, server_running, ended],
        "sacct": [sacct_record(SERVER_JOB, "CANCELLED by 1001", "0:0")],
    }
    spawner = spawner_for(tmp_path, replies)
    spawner.load_state(running(SERVER_JOB))

    run(spawner.stop())

    listed = ended.stdout.strip() != ""
    assert spawner.slurm.ran() == [
        f"{AS_USER} scancel {SERVER_JOB}",
        squeue(SERVER_JOB),
        *([] if listed else [sacct(SERVER_JOB)]),
    ]
    assert len(spawner.slurm.calls_of("squeue")) >= 3  # it waited for the end
    assert spawner.poller.latest(SERVER_JOB) is None


def test_stop_now_cancels_and_does_not_wait(tmp_path):
    spawner = spawner_for(tmp_path, {"scancel": [Reply.captured("scancel")]})
    spawner.load_state(running(SERVER_JOB))

    run(spawner.stop(now=True))

    assert spawner.slurm.ran() == [f"{AS_USER} scancel {SERVER_JOB}"]


@pytest.mark.parametrize("scancel", ["scancel_unknown_job", "scancel_unknown_job_verbose"])
def test_stopping_a_job_slurm_no_longer_knows_is_no_error(tmp_path, scancel):
    replies = {
        "scancel": [Reply.captured(scancel)],
        "squeue": [Reply.captured("squeue_unknown_job")],
        "sacct": [SACCT_NO_RECORD],
    }
    spawner = spawner_for(tmp_path, replies)
    spawner.load_state(running())

    run(spawner.stop())

    assert spawner.slurm.ran() == [
        f"{AS_USER} scancel {FAILED_JOB}",
        squeue(FAILED_JOB),
        sacct(FAILED_JOB),
    ]


# -- the seam itself --------------------------------------------------------------------------


def test_the_replay_runner_takes_the_real_runners_arguments():
    import inspect

    from jupyterhub_moss.slurm.commands import SlurmRunner

    real = inspect.signature(SlurmRunner.run).parameters
    replay = inspect.signature(ReplaySlurm.run).parameters
    assert [(p.name, p.kind, p.default) for p in replay.values()] == [
        (p.name, p.kind, p.default) for p in real.values()
    ]


def test_production_looks_at_a_job_at_most_once_a_second():
    from jupyterhub_moss.spawner import MOSlurmSpawner

    assert MOSlurmSpawner.MIN_POLL_SECONDS == 1.0
    assert MOSlurmSpawner(startup_poll_interval=0.01)._startup_interval() == 1.0
