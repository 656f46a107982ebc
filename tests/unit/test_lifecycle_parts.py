"""The pure parts of the lifecycle: words for the user, job ids, the output tail, port reports."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from datetime import datetime, timedelta, timezone

import pytest
from tornado import web

from jupyterhub_moss.handlers.port_report import parse_job_report
from jupyterhub_moss.job_progress import JobProgress
from jupyterhub_moss.job_reports import (
    job_failure_message,
    parse_job_id,
    pending_message,
    slurm_error_text,
    tail_output_file,
)
from jupyterhub_moss.slurm.commands import SlurmCommandError
from jupyterhub_moss.slurm.models import JobStatus

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 26, 13, 0, tzinfo=timezone.utc).astimezone()


def pending(reason: str, start: datetime | None = None) -> JobStatus:
    return JobStatus("1234", "PENDING", reason, "", start)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("None", "Waiting in the queue"),
        ("Resources", "Waiting for resources (Resources)"),
        ("Priority", "Waiting behind jobs with a higher priority (Priority)"),
        (
            "QOSMaxJobsPerUserLimit",
            "Waiting: a limit of your account or QOS is reached (QOSMaxJobsPerUserLimit)",
        ),
        ("SomethingNew", "Waiting in the queue (SomethingNew)"),
    ],
)
def test_pending_reasons_in_words(reason, expected):
    assert pending_message(pending(reason), NOW) == expected


def test_the_expected_start_is_a_clock_time_today_and_a_day_later_on():
    today = NOW.replace(hour=14, minute=5)
    assert pending_message(pending("Resources", today), NOW) == (
        "Waiting for resources (Resources); expected start 14:05"
    )
    later = pending_message(pending("Resources", today + timedelta(days=2)), NOW)
    assert later.endswith(
        f"expected start {(today + timedelta(days=2)).strftime('%a %d %b')} 14:05"
    )


@pytest.mark.parametrize(
    ("output", "job_id"),
    [("1234\n", "1234"), ("1234;moss\n", "1234"), ("warning: x\n77\n", "77")],
)
def test_job_ids_from_sbatch_parsable(output, job_id):
    assert parse_job_id(output) == job_id


@pytest.mark.parametrize("output", ["", "Submitted batch job 12", "12; rm -rf /"])
def test_no_job_id_is_an_error(output):
    with pytest.raises(ValueError):
        parse_job_id(output)


def test_slurm_error_text_keeps_slurms_words_without_the_prefix():
    error = SlurmCommandError(
        ["sbatch", "--parsable"],
        1,
        "sbatch: error: Batch job submission failed: Invalid account or account/partition "
        "combination specified\n",
    )
    assert slurm_error_text(error) == (
        "Batch job submission failed: Invalid account or account/partition combination specified"
    )


def test_failure_message_with_and_without_output():
    with_output = job_failure_message(
        "12", "FAILED", "NonZeroExitCode", "2:0", "/home/a/slurm-12.out", ["boom"]
    )
    assert with_output == (
        "Slurm job 12 ended before Jupyter started: FAILED with exit code 2 (its commands "
        "ended with an error; NonZeroExitCode). Last lines of /home/a/slurm-12.out:\nboom"
    )
    without = job_failure_message("12", "CANCELLED", "None", "0:15", "/dev/null")
    assert without.startswith(
        "Slurm job 12 ended before Jupyter started: CANCELLED (cancelled by its owner or an "
        "administrator; signal 15)"
    )
    assert "output was not saved" in without


def test_the_output_tail_is_the_last_lines_without_control_characters(tmp_path):
    path = tmp_path / "slurm-1.out"
    path.write_bytes(b"".join(b"line %d\n" % n for n in range(30)) + b"\x1b[31mred\x1b[0m\n")
    lines = tail_output_file(str(path), os.getuid(), 3)
    assert lines == ["line 28", "line 29", "[31mred[0m"]


def test_the_output_tail_refuses_links_and_other_owners_files(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("root only\n")
    link = tmp_path / "slurm-2.out"
    link.symlink_to(secret)
    assert tail_output_file(str(link), os.getuid()) == []
    assert tail_output_file(str(secret), os.getuid() + 1) == []
    assert tail_output_file(str(tmp_path / "missing"), os.getuid()) == []
    assert tail_output_file("/dev/null", os.getuid()) == []
    assert tail_output_file("relative/path", os.getuid()) == []


def run_in_own_loop(coroutine_function) -> None:
    """Run on a fresh event loop in a thread: the browser tier's Playwright (sync API) keeps
    a loop running in the main thread for the rest of a session that includes it."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coroutine_function()).result(timeout=30)


def test_progress_is_replayed_from_the_start_for_every_reader():
    run_in_own_loop(_replay_progress)


async def _replay_progress() -> None:
    progress = JobProgress()
    progress.add("Submitted job 1 to partition cpu", 10)

    async def read() -> list[str]:
        return [event["message"] async for event in progress.follow()]

    early = asyncio.ensure_future(read())
    await asyncio.sleep(0)
    progress.add("Running on node c1, waiting for Jupyter to start", 50)
    progress.finish()
    late = await read()
    assert (
        await early
        == late
        == [
            "Submitted job 1 to partition cpu",
            "Running on node c1, waiting for Jupyter to start",
        ]
    )


@pytest.mark.parametrize("port", [1, 8888, 65535])
def test_a_lone_integer_port_is_accepted(port):
    assert parse_job_report(b'{"port": %d}' % port) == port


def test_a_lone_started_true_is_the_report_that_the_job_started():
    assert parse_job_report(b'{"started": true}') is None


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"null",
        b"[]",
        b'{"port": 1, "cmd": "x"}',
        b'{"port": true}',
        b'{"port": 0}',
        b'{"port": 70000}',
        b'{"port": "80"}',
        b"{nope",
        b'{"Port": 80}',
        b'{"started": false}',
        b'{"started": 1}',
        b'{"started": "true"}',
        b'{"started": true, "port": 8888}',
        b'{"started": true, "node": "evil.example"}',
    ],
)
def test_anything_else_is_a_400(body):
    with pytest.raises(web.HTTPError) as raised:
        parse_job_report(body)
    assert raised.value.status_code == 400
