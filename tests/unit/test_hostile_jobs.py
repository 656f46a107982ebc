"""What a hostile user or job can send the hub, refused before it matters.

- usernames that ``sudo -u`` would read as a uid (``#0``) or an option (``-x``);
- a job's output file: only the path the hub's own script named, opened without following links
  or blocking, read at most 64 KiB from its end;
- batchspawner's port-report handler, which sets any attribute a job posts: out of the hub's
  table, and refused by the spawner should it be reached anyway;
- text that reaches the log: one line, controls escaped, bounded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import pwd
import re
import stat
import time
import types

import pytest
from batchspawner.api import BatchSpawnerAPIHandler
from jupyterhub import apihandlers
from jupyterhub.app import JupyterHub
from tornado import web

from jupyterhub_moss import handlers
from jupyterhub_moss.batch_script import (
    ScriptSettings,
    build_script_context,
    default_template,
    render_batch_script,
)
from jupyterhub_moss.config import load_partitions
from jupyterhub_moss.handlers.port_report import PortReportHandler
from jupyterhub_moss.job_reports import SpawnFailed, job_output_path, tail_output_file
from jupyterhub_moss.limits import merge_partition_limits
from jupyterhub_moss.log_safe import log_safe
from jupyterhub_moss.options import OptionsPolicy, parse_user_options
from jupyterhub_moss.slurm.commands import (
    SlurmRunner,
    UnsafeUsername,
    check_username,
    expand_prefix,
)
from jupyterhub_moss.slurm.estimates import StartEstimator
from jupyterhub_moss.slurm.models import JobStatus
from jupyterhub_moss.spawner import MOSlurmSpawner

pytestmark = pytest.mark.unit

PARTITIONS = {
    "cpu": {
        "max_nprocs": 4,
        "max_runtime": 3600,
        "gpu": "",
        "jupyter_environments": {"default": {"path": "/opt/env/bin/"}},
    }
}
LIMITS = merge_partition_limits(load_partitions(PARTITIONS), None)
POLICY = OptionsPolicy(default_partition="cpu")
ME = pwd.getpwuid(os.getuid()).pw_name


def run(coroutine):
    """A fresh loop in a thread: the browser tier keeps one running in the main thread."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=30)


def recorder(tmp_path) -> tuple[str, os.PathLike]:
    """A stand-in for any Slurm command that records that it ran."""
    record = tmp_path / "ran"
    script = tmp_path / "slurm-command"
    script.write_text(f'#!/bin/sh\necho "$0 $*" >> {record}\necho 4242\n')
    script.chmod(0o755)
    return str(script), record


def spawner_for(username: str, tmp_path, **traits) -> tuple[MOSlurmSpawner, os.PathLike]:
    command, record = recorder(tmp_path)
    commands = {name: command for name in ("sbatch", "squeue", "scancel", "scontrol", "sinfo")}
    spawner = MOSlurmSpawner(
        partitions=PARTITIONS,
        user=types.SimpleNamespace(name=username),
        slurm_commands=commands,
        exec_prefix="sudo -E -u {username}",
        **traits,
    )
    spawner.orm_spawner = types.SimpleNamespace(name="", user_options={}, server=None)
    return spawner, record


# -- usernames ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["alice", "bob.smith", "a.b@example.org", "user_1", "jean-luc", "émile", "x" * 256]
)
def test_ordinary_usernames_are_accepted(name):
    assert check_username(name) == name
    assert expand_prefix("sudo -E -u {username}", username=name) == ["sudo", "-E", "-u", name]


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("#0", "starts with '#'"),  # sudo -u '#0' is root
        ("#1000", "starts with '#'"),
        ("-x", "starts with '-'"),  # an option of sudo
        ("--help", "starts with '-'"),
        ("+netgroup", "starts with '+'"),
        ("%wheel", "starts with '%'"),
        ("~root", "starts with '~'"),
        ("", "empty"),
        (".", "path segment"),
        ("..", "path segment"),
        ("a b", "contains ' '"),
        ("a\tb", "contains '\\t'"),
        ("a\nroot", "contains '\\n'"),
        ("a/b", "contains '/'"),
        ("a\\b", "contains '\\'"),
        ("a:b", "contains ':'"),
        ("a\x00b", "contains '\\x00'"),
        ("a\x1b[31m", "contains '\\x1b'"),
        ("a\x85", "contains '\\x85'"),
        ("x" * 257, "longer than 256"),
    ],
)
def test_usernames_sudo_would_misread_are_refused_saying_why(name, why):
    with pytest.raises(UnsafeUsername) as refused:
        check_username(name)
    assert why in str(refused.value)
    assert "\n" not in str(refused.value)
    with pytest.raises(UnsafeUsername):
        expand_prefix("sudo -E -u {username}", username=name)


@pytest.mark.parametrize("name", ["#0", "-x", "a b", ""])
def test_a_spawn_for_such_a_user_is_a_400_before_any_command_runs(tmp_path, name):
    spawner, record = spawner_for(name, tmp_path)
    with pytest.raises(SpawnFailed) as refused:
        run(spawner.start())
    assert refused.value.status_code == 400
    assert "cannot be used with Slurm" in str(refused.value)
    assert not record.exists()
    with pytest.raises(UnsafeUsername):
        spawner.user_prefix()


def test_a_start_estimate_for_such_a_user_runs_nothing_and_logs_one_line(tmp_path, caplog):
    command, record = recorder(tmp_path)
    estimator = StartEstimator(SlurmRunner(commands={"sbatch": command}), "sudo -u {username}")
    with caplog.at_level(logging.INFO, logger="jupyterhub_moss.slurm.estimates"):
        assert run(estimator.estimate("#0\nINFO forged line", ["-p", "cpu"], "#!/bin/sh\n")) is None
    assert not record.exists()
    logged = [r.getMessage() for r in caplog.records if "No start estimate" in r.getMessage()]
    assert logged and all("\n" not in line for line in logged)
    assert "#0\\nINFO forged line" in logged[0]


def test_an_ordinary_user_does_reach_the_commands(tmp_path):
    """The control: the same set-up with a plain name runs sbatch, through the prefix."""
    command, record = recorder(tmp_path)
    runner = SlurmRunner(commands={"sbatch": command})
    out = run(runner.run("sbatch", ["--parsable"], prefix=expand_prefix("env", username="al")))
    assert out.strip() == "4242" and record.exists()


# -- the job's output file ---------------------------------------------------------------------


@pytest.mark.parametrize("home", ["/home/alice", "/home/alice/", "/"])
def test_the_output_path_is_the_one_the_batch_script_names(home):
    saved = parse_user_options({"output": "true"}, LIMITS, POLICY)
    script = render_batch_script(
        default_template(),
        build_script_context(saved, LIMITS["cpu"], ScriptSettings(home_dir=home)),
    )
    named = re.search(r"^#SBATCH --output=(\S+)$", script, re.MULTILINE).group(1)
    assert named.replace("%j", "1234") == job_output_path(home, "1234")
    unsaved = parse_user_options({}, LIMITS, POLICY)
    script = render_batch_script(
        default_template(),
        build_script_context(unsaved, LIMITS["cpu"], ScriptSettings(home_dir=home)),
    )
    assert "#SBATCH --output=/dev/null" in script
    assert job_output_path(home, "1234", saved=False) == "/dev/null"


def test_a_fifo_or_a_device_is_not_read_and_does_not_block(tmp_path):
    fifo = tmp_path / "slurm-3.out"
    os.mkfifo(fifo)
    started = time.monotonic()
    assert tail_output_file(str(fifo), os.getuid()) == []
    assert tail_output_file("/dev/zero", os.stat("/dev/zero").st_uid) == []
    assert tail_output_file("/dev/tty", os.getuid()) == []
    assert time.monotonic() - started < 2
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_huge_output_file_is_read_only_at_its_end(tmp_path):
    big = tmp_path / "slurm-4.out"
    with open(big, "wb") as handle:
        handle.truncate(20 * 1024**3)  # 20 GiB, sparse: reading it all would take minutes
        handle.seek(0, os.SEEK_END)
        handle.write(b"\nthe last line\n")
    started = time.monotonic()
    assert tail_output_file(str(big), os.getuid(), 1) == ["the last line"]
    assert time.monotonic() - started < 2


def test_the_failure_message_reads_the_scripts_path_not_the_one_slurm_reports(tmp_path, caplog):
    """A pending job's owner can ``scontrol update StdOut=...``: the hub ignores it."""
    ours = tmp_path / "slurm-77.out"
    ours.write_text("ours: the real output\n\x1b[2Jcleared\n")
    theirs = tmp_path / "elsewhere"
    theirs.write_text("SECRET from elsewhere\n")
    spawner, _ = spawner_for(ME, tmp_path)
    spawner._job_output_path = str(ours)

    async def details(job_id):
        return {"JobId": job_id, "JobState": "FAILED", "StdOut": str(theirs)}

    spawner._job_details = details
    with caplog.at_level(logging.WARNING):
        failure = run(spawner._job_failure(JobStatus("77", "FAILED", "NonZeroExitCode", "", None)))
    message = str(failure)
    assert "ours: the real output" in message and str(ours) in message
    assert "SECRET" not in message and str(theirs) not in message
    logged = [r.getMessage() for r in caplog.records if "Spawn of" in r.getMessage()]
    assert logged and "\n" not in logged[0] and "\x1b" not in logged[0]
    spawner._job_output_path = ""  # nothing known: nothing is read
    assert "SECRET" not in str(run(spawner._job_failure(JobStatus("77", "FAILED", "", "", None))))


# -- batchspawner's port-report handler ---------------------------------------------------------


def test_batchspawners_handler_is_out_of_the_hubs_api_table_even_if_added_again():
    """(The hub tier checks that hubs using another spawner keep it.)"""
    table = apihandlers.default_handlers
    handlers.register()  # what a hub spawning with our class runs before building its table
    assert not [route for route in table if route[1] is BatchSpawnerAPIHandler]
    table.append((r"/api/batchspawner", BatchSpawnerAPIHandler))
    table.append((r"/api/batch.*", BatchSpawnerAPIHandler))
    handlers.register()
    assert not [route for route in table if route[1] is BatchSpawnerAPIHandler]


@pytest.mark.parametrize(
    ("table", "ours"),
    [
        ([("/hub/api/batchspawner", PortReportHandler)], True),
        ([("/hub/spawn", object), ("/hub/api/batchspawner", PortReportHandler)], True),
        ([("/hub/api/batchspawner", BatchSpawnerAPIHandler)], False),
        (
            [
                ("/hub/api/batch(.*)", BatchSpawnerAPIHandler),
                ("/hub/api/batchspawner", PortReportHandler),
            ],
            False,
        ),
        ([("/hub/api/(.*)", object)], False),
        ([], False),
    ],
)
def test_which_handler_a_hub_table_sends_the_port_report_to(table, ours):
    assert handlers.port_report_is_ours(table, "/hub/") is ours


def test_the_spawner_refuses_every_attribute_batchspawners_handler_would_set(tmp_path, caplog):
    spawner, _ = spawner_for(ME, tmp_path)
    spawner.api_token = "the-servers-token"
    before = (spawner.exec_prefix, list(spawner.cmd), spawner.port)
    request = types.SimpleNamespace(
        current_user=types.SimpleNamespace(spawners={"": spawner}),
        get_auth_token=lambda: "the-servers-token",
        get_json_body=lambda: {"exec_prefix": "touch /tmp/pwned", "cmd": ["sh"], "port": 1},
        finish=lambda *a: None,
        set_status=lambda *a: None,
    )
    with caplog.at_level(logging.ERROR), pytest.raises(web.HTTPError) as refused:
        BatchSpawnerAPIHandler.post.__wrapped__(request)  # the real code, past its auth check
    assert refused.value.status_code == 403
    assert (spawner.exec_prefix, list(spawner.cmd), spawner.port) == before
    assert any("Refused batchspawner's port report" in r.getMessage() for r in caplog.records)


def test_a_spawn_is_refused_before_any_command_when_the_table_is_not_ours(tmp_path, monkeypatch):
    app = types.SimpleNamespace(
        handlers=[("/hub/api/batchspawner", BatchSpawnerAPIHandler)], hub_prefix="/hub/"
    )
    monkeypatch.setattr(JupyterHub, "initialized", classmethod(lambda cls: True))
    monkeypatch.setattr(JupyterHub, "instance", classmethod(lambda cls, *a, **k: app))
    spawner, record = spawner_for(ME, tmp_path)
    with pytest.raises(SpawnFailed) as refused:
        run(spawner.start())
    assert refused.value.status_code == 503
    assert "misconfigured" in str(refused.value)
    assert not record.exists()
    app.handlers = [("/hub/api/batchspawner", PortReportHandler)]
    spawner.check_port_report_route()  # ours: no error


# -- log lines ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "logged"),
    [
        ("alice", "alice"),
        ("a\nINFO forged", "a\\nINFO forged"),
        ("a\r\nb", "a\\r\\nb"),
        ("\x1b[2Jred", "\\x1b[2Jred"),
        ("tab\there", "tab\\there"),
        ("nul\x00", "nul\\x00"),
        ("c1\x85\x9b", "c1\\x85\\x9b"),
        ("sep\u2028\u2029", "sep\\u2028\\u2029"),
        ("bidi\u202eevil", "bidi\\u202eevil"),
        ("émile 🙂", "émile 🙂"),
    ],
)
def test_log_safe_keeps_one_line_and_escapes_controls(text, logged):
    assert log_safe(text) == logged


def test_log_safe_bounds_length_and_takes_any_value():
    assert log_safe("x" * 1000) == "x" * 300 + "…(+700 chars)"
    assert log_safe("y" * 20, limit=5) == "yyyyy…(+15 chars)"
    assert log_safe(ValueError("bad\nthing")) == "bad\\nthing"
    assert log_safe(None) == "None"


def test_a_malformed_squeue_line_is_logged_on_one_line(caplog):
    from jupyterhub_moss.slurm.job_status import parse_squeue

    with caplog.at_level(logging.WARNING, logger="jupyterhub_moss.slurm.job_status"):
        parse_squeue("not a job\x1b[31m\x9b" + "z" * 1000 + "\n")
    (record,) = [r for r in caplog.records if "skipping squeue line" in r.getMessage()]
    line = record.getMessage()
    assert "\x1b" not in line and "\x9b" not in line and len(line) < 400
