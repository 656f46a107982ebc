"""SlurmRunner's process handling, with ordinary programs (sleep, printf...), not fake Slurm.

The same behaviour against the real sinfo is in tests/slurm/test_cluster_view.py.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from jupyterhub_moss.slurm.commands import (
    DEFAULT_PATH,
    SlurmCommandError,
    SlurmRunner,
    SlurmTimeout,
    expand_prefix,
    has_slurm_error,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("template", "values", "argv"),
    [
        ("sudo -E -u {username}", {"username": "alice"}, ["sudo", "-E", "-u", "alice"]),
        ("", {"username": "alice"}, []),
        # the value stays one word, whatever it holds
        ("as-user {name}", {"name": "a b; rm"}, ["as-user", "a b; rm"]),
        ("sudo -u {username}", {"username": "{other}"}, ["sudo", "-u", "{other}"]),
        ("'/opt/my tools/as-user' --user={username}", {"username": "bob"},
         ["/opt/my tools/as-user", "--user=bob"]),
        (["sudo", "-u", "{username}"], {"username": "carol"}, ["sudo", "-u", "carol"]),
    ],
)  # fmt: skip
def test_expand_prefix(template, values, argv):
    assert expand_prefix(template, **values) == argv


@pytest.mark.parametrize(
    ("stderr", "is_error"),
    [
        ("sinfo: error: Unable to contact slurm controller (connect failure)", True),
        ("slurm_load_jobs error: Invalid job id specified", True),
        ("sbatch: fatal: Could not establish a configuration source", True),
        ("sbatch: warning: can't honor --ntasks-per-node", False),
        ("", False),
        ("sbatch: Job 3 to start at 2026-11-26T10:00:00 using 1 processors on nodes c1", False),
    ],
)
def test_has_slurm_error(stderr, is_error):
    assert has_slurm_error(stderr) is is_error


def test_environment_is_built_not_inherited(monkeypatch):
    monkeypatch.setenv("SLURM_CONF", "/etc/moss/slurm.conf")
    monkeypatch.setenv("CONFIGPROXY_AUTH_TOKEN", "secret")
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", "secret")
    monkeypatch.delenv("PATH", raising=False)
    env = SlurmRunner(env={"LANG": "C.UTF-8"}).environment({"EXTRA": "1"})
    assert env["SLURM_CONF"] == "/etc/moss/slurm.conf"
    assert env["PATH"] == DEFAULT_PATH  # JupyterHub 6 passes no PATH
    assert env["LANG"] == "C.UTF-8" and env["EXTRA"] == "1"
    assert "CONFIGPROXY_AUTH_TOKEN" not in env and "JUPYTERHUB_CRYPT_KEY" not in env


def test_executable_lookup(tmp_path):
    assert SlurmRunner(bin_dir="/opt/slurm/bin").executable("sinfo") == "/opt/slurm/bin/sinfo"
    runner = SlurmRunner(bin_dir="/opt/slurm/bin", commands={"sinfo": "/usr/local/bin/sinfo2"})
    assert runner.executable("sinfo") == "/usr/local/bin/sinfo2"
    assert runner.executable("squeue") == "/opt/slurm/bin/squeue"
    program = tmp_path / "sdiag"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    assert SlurmRunner(env={"PATH": str(tmp_path)}).executable("sdiag") == str(program)


async def test_stdout_is_returned():
    runner = SlurmRunner(commands={"printf": "/usr/bin/printf"})
    assert await runner.run("printf", ["%s|%s", "a b", "c"]) == "a b|c"


async def test_input_goes_to_stdin():
    runner = SlurmRunner(commands={"cat": "/bin/cat"})
    assert await runner.run("cat", [], input="#!/bin/sh\ntrue\n") == "#!/bin/sh\ntrue\n"


async def test_non_zero_exit_is_an_error_with_context():
    runner = SlurmRunner(commands={"ls": "/bin/ls"})
    with pytest.raises(SlurmCommandError) as caught:
        await runner.run("ls", ["/does/not/exist"])
    error = caught.value
    assert error.argv == ["/bin/ls", "/does/not/exist"]
    assert error.returncode == 2
    assert "No such file" in error.stderr
    assert "exited with status 2" in str(error) and "/does/not/exist" in str(error)


async def test_error_line_on_stderr_with_exit_zero_is_an_error():
    runner = SlurmRunner(commands={"sh": "/bin/sh"})
    script = "echo partial; echo 'sinfo: error: Unable to contact slurm controller' >&2"
    with pytest.raises(SlurmCommandError, match="reported an error: sinfo: error: Unable"):
        await runner.run("sh", ["-c", script])
    # ... unless the caller reads stderr itself, as for sbatch --test-only
    out, err = await runner.run("sh", ["-c", script], accept_stderr=True)
    assert out == "partial\n" and "error:" in err


async def test_missing_program_is_a_command_error():
    runner = SlurmRunner(bin_dir="/nonexistent")
    with pytest.raises(SlurmCommandError, match="cannot be started"):
        await runner.run("sinfo", [])


async def test_prefix_goes_first():
    runner = SlurmRunner(commands={"echo": "/bin/echo"}, query_prefix=["/usr/bin/env"])
    assert await runner.run("echo", ["hi"]) == "hi\n"  # via env
    with pytest.raises(SlurmCommandError) as caught:
        await runner.run("echo", ["hi"], prefix=["/bin/false"])
    assert caught.value.argv == ["/bin/false", "/bin/echo", "hi"]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


async def test_timeout_stops_the_process_and_does_not_block_the_loop(tmp_path):
    pid_file = tmp_path / "pid"
    runner = SlurmRunner(commands={"sh": "/bin/sh"}, timeout=0.3)
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    ticking = asyncio.ensure_future(ticker())
    started = time.monotonic()
    with pytest.raises(SlurmTimeout, match=r"no answer within 0\.3 s"):
        await runner.run("sh", ["-c", f"echo $$ > {pid_file}; exec sleep 30"])
    elapsed = time.monotonic() - started
    ticking.cancel()
    assert elapsed < 2
    assert ticks >= 10  # the event loop kept running while the command hung
    assert not _alive(int(pid_file.read_text()))


async def test_a_cancelled_caller_stops_the_process(tmp_path):
    pid_file = tmp_path / "pid"
    runner = SlurmRunner(commands={"sh": "/bin/sh"}, timeout=30)
    task = asyncio.ensure_future(runner.run("sh", ["-c", f"echo $$ > {pid_file}; exec sleep 30"]))
    while not pid_file.exists() or not pid_file.read_text().strip():
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not _alive(int(pid_file.read_text()))


def test_error_str_is_readable():
    error = SlurmCommandError(["sinfo", "-h"], 1, "sinfo: error: a\nsinfo: error: b\n")
    assert str(error) == "sinfo -h exited with status 1: sinfo: error: a / sinfo: error: b"
