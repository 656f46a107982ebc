"""Running Slurm's command-line tools without blocking the hub.

Every Slurm command the package runs goes through :class:`SlurmRunner`: an argument list (never a
shell), an environment built on purpose, a timeout, and errors that say which command failed and
what it printed. Slurm tools sometimes exit 0 after printing ``error:`` lines, so stderr is checked
as well as the exit status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shlex
import shutil
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, overload

from ..log_safe import log_safe
from ..waiting import wait_at_most

log = logging.getLogger(__name__)

#: Used when neither ``env`` nor the hub's own environment gives a ``PATH``. JupyterHub 6 passes
#: no ``PATH`` to spawners, so the runner never relies on one being handed to it.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: Variables copied from the hub's environment. Only these: the commands may run as a user
#: (``sudo -E``), and the hub's environment holds secrets (proxy token, cookie secret...).
PASSED_VARIABLES = ("SLURM_CONF", "SLURM_CLUSTERS", "LANG", "LC_ALL", "TZ")

# "sinfo: error: ...", "slurm_load_jobs error: ...", "sbatch: fatal: ..."
_SLURM_ERROR_LINE = re.compile(r"^.*\b(?:error|fatal):", re.MULTILINE)

_SHOWN_COMMAND = 60

# After SIGTERM, how long a timed-out command gets before SIGKILL. SIGTERM first because sudo
# forwards it to the command it runs (which may be in another process group), while a SIGKILL
# to sudo would orphan that command.
_TERMINATE_GRACE = 1.0


class SlurmCommandError(Exception):
    """A Slurm command failed: non-zero exit, an error on stderr, or could not be started."""

    def __init__(
        self,
        argv: Sequence[str],
        returncode: int | None,
        stderr: str,
        message: str | None = None,
    ) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        # Shortened: this text reaches logs and the page's "Slurm did not answer" line; the
        # full command stays in .argv.
        command = shlex.join(self.argv)
        if len(command) > _SHOWN_COMMAND:
            command = command[: _SHOWN_COMMAND - 1] + "…"
        if self.message:
            return f"{command}: {self.message}"
        detail = _first_lines(self.stderr) or "no error message"
        if self.returncode:
            return f"{command} exited with status {self.returncode}: {detail}"
        return f"{command} reported an error: {detail}"


class SlurmTimeout(SlurmCommandError):
    """A Slurm command did not finish within the runner's timeout (it has been stopped)."""

    def __init__(self, argv: Sequence[str], timeout: float, stderr: str = "") -> None:
        self.timeout = timeout
        super().__init__(argv, None, stderr, f"no answer within {timeout:g} s")


def _first_lines(text: str, limit: int = 3) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " / ".join(lines[:limit])


def has_slurm_error(stderr: str) -> bool:
    """True if ``stderr`` holds a line Slurm prints for an error (``error:`` or ``fatal:``)."""
    return bool(_SLURM_ERROR_LINE.search(stderr))


class UnsafeUsername(ValueError):
    """A username that must not reach a command line (``sudo -u NAME``, ``squeue -u NAME``)."""

    def __init__(self, username: str, why: str) -> None:
        self.username = username
        self.why = why
        super().__init__(
            f"The username '{log_safe(username, 60)}' cannot be used with Slurm: {why}"
        )


# Whitespace, '/', '\\', ':' and every control character (C0, DEL, C1, Unicode separators).
_USERNAME_FORBIDDEN = re.compile(r"[\s/\\:\x00-\x1f\x7f-\x9f\u2028\u2029]")
MAX_USERNAME_LENGTH = 256


def check_username(username: str) -> str:
    """``username`` if it is safe as one argument of ``sudo -u``/``squeue -u``; else raise
    :class:`UnsafeUsername` saying why.

    sudo reads ``-u '#0'`` as uid 0 (root) and ``-u -x`` as an option; '/' or '..' in a name
    could also reach a path (``~user``). Authenticators differ in what they allow, so this is
    checked here, before any command runs as a user.
    """
    if not isinstance(username, str) or not username:
        raise UnsafeUsername(str(username or ""), "it is empty")
    if len(username) > MAX_USERNAME_LENGTH:
        raise UnsafeUsername(username, f"it is longer than {MAX_USERNAME_LENGTH} characters")
    if username[0] in "-#+~%":
        raise UnsafeUsername(
            username, f"it starts with {username[0]!r} (an option, a uid or a group to sudo)"
        )
    if username in (".", ".."):
        raise UnsafeUsername(username, "it is a path segment")
    bad = _USERNAME_FORBIDDEN.search(username)
    if bad:
        raise UnsafeUsername(
            username,
            f"it contains '{log_safe(bad.group())}' (whitespace, '/', '\\', ':' "
            "and control characters are not allowed)",
        )
    return username


def expand_prefix(template: str | Sequence[str], **values: str) -> list[str]:
    """Turn a prefix template such as ``"sudo -E -u {username}"`` into an argument list.

    The template is split first and each word formatted afterwards, so a value containing spaces
    or quotes stays one argument and can never add options of its own. A ``username`` is checked
    with :func:`check_username` first (raises :class:`UnsafeUsername`).
    """
    if "username" in values:
        check_username(values["username"])
    words = shlex.split(template) if isinstance(template, str) else list(template)
    return [word.format(**values) for word in words]


@dataclass
class SlurmRunner:
    """Runs Slurm commands as asyncio subprocesses.

    ``bin_dir``: folder holding sbatch/sinfo/...; ``None`` looks them up on the ``PATH`` of the
    environment. ``commands`` maps a command name to what to run instead (``{"sinfo":
    "/opt/slurm/bin/sinfo"}``). ``env`` is added on top of the few variables taken from the hub
    (:data:`PASSED_VARIABLES`) plus a default ``PATH``. ``query_prefix`` is put in front of
    read-only queries (``sinfo``, ``squeue``, ``scontrol show``); empty means the hub's own
    account.
    """

    bin_dir: str | None = None
    commands: dict[str, str] = field(default_factory=dict)
    timeout: float = 20.0
    env: dict[str, str] | None = None
    query_prefix: list[str] = field(default_factory=list)

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment the commands run with."""
        result = {name: os.environ[name] for name in PASSED_VARIABLES if name in os.environ}
        result["PATH"] = os.environ.get("PATH") or DEFAULT_PATH
        result.update(self.env or {})
        result.update(extra or {})
        if not result.get("PATH"):
            result["PATH"] = DEFAULT_PATH
        return result

    def executable(self, name: str, env: Mapping[str, str] | None = None) -> str:
        """Path of the program run for Slurm command ``name``."""
        program = self.commands.get(name, name)
        if os.sep in program:
            return program
        if self.bin_dir and name not in self.commands:
            return os.path.join(self.bin_dir, program)
        path = (env or self.environment()).get("PATH", DEFAULT_PATH)
        # Resolve here rather than leaving it to a prefix such as sudo, whose secure_path
        # may not include Slurm's folder.
        return shutil.which(program, path=path) or program

    def cache_key(self) -> tuple:
        """A hashable summary of the configuration, to share one cluster view per config."""
        return (
            self.bin_dir,
            tuple(sorted(self.commands.items())),
            self.timeout,
            tuple(sorted((self.env or {}).items())),
            tuple(self.query_prefix),
        )

    @overload
    async def run(
        self,
        name: str,
        args: Sequence[str],
        *,
        prefix: Sequence[str] | None = ...,
        input: str | None = ...,
        env_extra: Mapping[str, str] | None = ...,
        timeout: float | None = ...,
        accept_stderr: Literal[False] = ...,
    ) -> str: ...

    @overload
    async def run(
        self,
        name: str,
        args: Sequence[str],
        *,
        prefix: Sequence[str] | None = ...,
        input: str | None = ...,
        env_extra: Mapping[str, str] | None = ...,
        timeout: float | None = ...,
        accept_stderr: Literal[True],
    ) -> tuple[str, str]: ...

    async def run(
        self,
        name: str,
        args: Sequence[str],
        *,
        prefix: Sequence[str] | None = None,
        input: str | None = None,
        env_extra: Mapping[str, str] | None = None,
        timeout: float | None = None,
        accept_stderr: bool = False,
    ) -> str | tuple[str, str]:
        """Run Slurm command ``name`` with ``args`` and return its stdout.

        ``prefix`` defaults to :attr:`query_prefix`; pass ``[]`` to run as the hub's account or a
        user prefix from :func:`expand_prefix`. With ``accept_stderr=True`` the result is
        ``(stdout, stderr)`` and error lines on stderr are not an error (``sbatch --test-only``
        answers on stderr); a non-zero exit still is.

        Raises :class:`SlurmTimeout` or :class:`SlurmCommandError`.
        """
        env = self.environment(env_extra)
        argv = [
            *(self.query_prefix if prefix is None else prefix),
            self.executable(name, env),
            *args,
        ]
        limit = self.timeout if timeout is None else timeout
        returncode, stdout, stderr = await _execute(argv, env, input, limit)
        if returncode != 0:
            raise SlurmCommandError(argv, returncode, stderr)
        if accept_stderr:
            return stdout, stderr
        if has_slurm_error(stderr):
            raise SlurmCommandError(argv, returncode, stderr)
        if stderr.strip():
            log.debug("%s printed on stderr: %s", argv[0], log_safe(_first_lines(stderr)))
        return stdout


async def _execute(
    argv: list[str], env: dict[str, str], input: str | None, timeout: float
) -> tuple[int, str, str]:
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,  # a terminal's Ctrl-C on the hub must not reach it
        )
    except OSError as error:
        raise SlurmCommandError(argv, None, "", f"cannot be started: {error}") from error
    data = input.encode() if input is not None else None
    try:
        out, err = await wait_at_most(process.communicate(data), timeout)
    except asyncio.TimeoutError:
        await _stop(process)
        raise SlurmTimeout(argv, timeout) from None
    except asyncio.CancelledError:
        await asyncio.shield(_stop(process))
        raise
    assert process.returncode is not None
    return process.returncode, _decode(out), _decode(err)


async def _stop(process: asyncio.subprocess.Process) -> None:
    """Stop our own child and whatever it started: SIGTERM, SIGKILL if it lingers, then reap.

    The child leads its own process group (``start_new_session``), so signalling the group also
    reaches, say, the real ``sinfo`` under a wrapper script, and nothing else.
    """
    if process.returncode is not None:
        return
    _signal_group(process.pid, signal.SIGTERM)
    try:
        await wait_at_most(process.wait(), _TERMINATE_GRACE)
    except asyncio.TimeoutError:
        _signal_group(process.pid, signal.SIGKILL)
        await process.wait()
    # No signal after the leader is reaped: its number could already belong to someone else.


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _decode(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", errors="replace")
