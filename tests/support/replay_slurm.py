"""A Slurm that answers from real captured output, for unit tests of the lifecycle.

:class:`ReplaySlurm` stands where :class:`~jupyterhub_moss.slurm.commands.SlurmRunner` stands
(same ``run()`` signature) and runs nothing: each command answers from its own list of
:class:`Reply`, in order, and records the call. The replies are the real answers of the local
cluster, captured by ``tests/fixtures/slurm/capture_lifecycle.py`` (``lifecycle_*`` files, see
that folder's README): :meth:`Reply.captured` gives stdout, stderr and exit status as they came,
and ``run()`` reads them as the real runner does (a non-zero exit, or ``error:`` on stderr, is a
:class:`~jupyterhub_moss.slurm.commands.SlurmCommandError`).

:class:`ReplaySpawner` is MOSlurmSpawner with the lifecycle's two ways to Slurm,
``slurm_runner()`` and ``job_poller()``, pointed at a ReplaySlurm, the spawn's request given
(``spawn_request()``), and looks at jobs every few milliseconds instead of every second.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import shlex
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyterhub.objects import Hub

from jupyterhub_moss.config import load_partitions
from jupyterhub_moss.context import SpawnRequest
from jupyterhub_moss.limits import merge_partition_limits
from jupyterhub_moss.options import OptionsPolicy, parse_user_options
from jupyterhub_moss.slurm.commands import SlurmCommandError, SlurmTimeout, has_slurm_error
from jupyterhub_moss.slurm.jobs import JobStatusPoller
from jupyterhub_moss.spawner import MOSlurmSpawner

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "slurm"
_STATUS_LINE = re.compile(r"^(lifecycle_\w+): exit (\d+): ")


def _captured_exit_statuses() -> dict[str, int]:
    text = (FIXTURES / "lifecycle_exit_status.txt").read_text()
    matches = (_STATUS_LINE.match(line) for line in text.splitlines())
    return {m.group(1): int(m.group(2)) for m in matches if m}


@dataclass(frozen=True)
class Reply:
    """One answer of a Slurm command: what it printed and its exit status, or a timeout."""

    stdout: str = ""
    stderr: str = ""
    returncode: int = 0
    #: Set: the command gave no answer within this many seconds (the runner's SlurmTimeout).
    timeout: float | None = None
    #: Seconds the command takes before it answers (a busy controller).
    delay: float = 0.0

    @classmethod
    def captured(cls, name: str) -> Reply:
        """The answer saved as ``lifecycle_NAME.out``/``.err`` with its exit status."""
        stem = f"lifecycle_{name}"
        err = FIXTURES / f"{stem}.err"
        return cls(
            stdout=(FIXTURES / f"{stem}.out").read_text(),
            stderr=err.read_text() if err.exists() else "",
            returncode=_captured_exit_statuses()[stem],
        )

    @classmethod
    def timed_out(cls, seconds: float = 20.0) -> Reply:
        return cls(timeout=seconds)


@dataclass(frozen=True)
class Call:
    """One command the code under test ran."""

    command: str
    args: tuple[str, ...]
    #: None: the runner's own query prefix (how queries run); else the prefix given.
    prefix: tuple[str, ...] | None
    input: str | None
    env_extra: Mapping[str, str] | None

    @property
    def line(self) -> str:
        """``sudo -E -u alice sbatch --parsable``: the prefix, the command, its arguments."""
        return shlex.join([*(self.prefix or ()), self.command, *self.args])


class ReplaySlurm:
    """Answers each command from its list of replies, in order; the last reply of a list is
    given again to any later call (a job stays in its last state however often it is asked,
    whatever the poller's background look adds). A command without replies fails the test."""

    def __init__(self, replies: Mapping[str, Sequence[Reply]]) -> None:
        self._replies = {name: list(answers) for name, answers in replies.items()}
        self.calls: list[Call] = []

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
        call = Call(
            name,
            tuple(args),
            None if prefix is None else tuple(prefix),
            input,
            None if env_extra is None else dict(env_extra),
        )
        self.calls.append(call)
        answers = self._replies.get(name)
        if not answers:
            raise AssertionError(f"no reply for {call.line!r}")
        reply = answers.pop(0) if len(answers) > 1 else answers[0]
        argv = [*(prefix or ()), name, *args]
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.timeout is not None:
            raise SlurmTimeout(argv, reply.timeout)
        if reply.returncode != 0:
            raise SlurmCommandError(argv, reply.returncode, reply.stderr)
        if accept_stderr:
            return reply.stdout, reply.stderr
        if has_slurm_error(reply.stderr):
            raise SlurmCommandError(argv, reply.returncode, reply.stderr)
        return reply.stdout

    def cache_key(self) -> tuple:
        return ("replay", id(self))

    def ran(self) -> list[str]:
        """The command lines that ran, in order; a command run again with the same arguments
        right after itself counts once: how many looks a wait takes depends on timing, what
        is asked, as whom and in which order does not."""
        lines: list[str] = []
        for call in self.calls:
            if not lines or lines[-1] != call.line:
                lines.append(call.line)
        return lines

    def calls_of(self, command: str) -> list[Call]:
        return [call for call in self.calls if call.command == command]


# -- a spawner that reaches Slurm only through a ReplaySlurm ----------------------------------

ME = pwd.getpwuid(os.getuid()).pw_name
PARTITIONS = {
    "gpu": {
        "gpu": "gpu:{}",
        "max_ngpus": 2,
        "max_nprocs": 8,
        "max_runtime": 3600,
        "jupyter_environments": {"default": {"path": "/opt/env/bin/"}},
    }
}
LIMITS = merge_partition_limits(load_partitions(PARTITIONS), None)


def spawn_request(**values: str) -> SpawnRequest:
    """A request validated as the spawner validates one (the partition is ``gpu``)."""
    options = parse_user_options(
        {"partition": "gpu", **values}, LIMITS, OptionsPolicy(default_partition="gpu")
    )
    return SpawnRequest(options, LIMITS[options.partition])


class ReplaySpawner(MOSlurmSpawner):
    """MOSlurmSpawner whose Slurm is a :class:`ReplaySlurm` (its user is whoever runs the
    tests, so the hub's reading of the job's output file works as it does in production)."""

    # Production never looks more than once a second; here the poller's own floor (0.1 s)
    # is what paces a test.
    MIN_POLL_SECONDS = 0.01

    def __init__(self, slurm: ReplaySlurm, request: SpawnRequest, home: str, **traits: Any) -> None:
        traits.setdefault("startup_poll_interval", 0.01)
        traits.setdefault("poll_interval", 0)
        traits.setdefault("stop_confirm_timeout", 5)
        super().__init__(
            partitions=PARTITIONS,
            user=types.SimpleNamespace(name=ME, url=f"/user/{ME}/", spawners={}),
            hub=Hub(),
            exec_prefix="sudo -E -u {username}",
            req_homedir=home,
            api_token="the-servers-token",
            **traits,
        )
        self.slurm = slurm
        self.request = request
        self.requests_given = 0
        # One poller per spawner: tests do not share the hub-wide one. A background look
        # every hour at most, so only the lifecycle's own looks run during a test.
        self.poller = JobStatusPoller(slurm, interval=3600, min_interval=0.1)

    def slurm_runner(self) -> ReplaySlurm:  # type: ignore[override]
        return self.slurm

    def job_poller(self) -> JobStatusPoller:
        return self.poller

    async def spawn_request(self) -> SpawnRequest:
        self.requests_given += 1
        return self.request


class AnsweringServer:
    """A real HTTP server on loopback, standing for the job's Jupyter: ``start()`` returns only
    once the server it was told about answers. Use ``async with``; ``port`` is its port."""

    ANSWER = (
        b"HTTP/1.1 302 Found\r\nLocation: lab\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )

    def __init__(self) -> None:
        self.port = 0
        self.requests = 0
        self._server: asyncio.base_events.Server | None = None

    async def __aenter__(self) -> AnsweringServer:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            writer.write(self.ANSWER)
            await writer.drain()
        finally:
            writer.close()
