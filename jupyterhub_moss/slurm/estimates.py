"""Estimated start times from ``sbatch --test-only``, run as the user, cached and rate-limited.

An estimate is a nicety: any failure (Slurm refusing the request, a timeout, sudo not allowed)
gives ``None``, never an error page. ``sbatch --test-only`` costs slurmctld a scheduling
attempt, so the same request from the same user is answered from a cache for ``cache_seconds``
and a user runs at most one every ``min_spacing`` seconds; concurrent identical requests share
one run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ..log_safe import log_safe
from .commands import SlurmCommandError, SlurmRunner, expand_prefix
from .job_status import parse_test_only
from .models import StartEstimate

log = logging.getLogger(__name__)

_Key = tuple[str, tuple[str, ...]]
EstimateQuery = Callable[[str, list[str], str], Awaitable[StartEstimate]]


@dataclass
class _Cached:
    estimate: StartEstimate | None
    at: float


class StartEstimator:
    """``estimate(username, sbatch_args, script)`` → :class:`StartEstimate` or ``None``.

    ``user_prefix`` is the template that runs a command as the user, e.g.
    ``"sudo -E -u {username}"`` (see :func:`~jupyterhub_moss.slurm.commands.expand_prefix`);
    empty runs sbatch as the hub's account. ``query`` replaces the ``sbatch --test-only`` call
    (tests of the caching logic inject one).
    """

    def __init__(
        self,
        runner: SlurmRunner | None = None,
        user_prefix: str | Sequence[str] = "",
        *,
        cache_seconds: float = 30.0,
        min_spacing: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        query: EstimateQuery | None = None,
    ) -> None:
        if query is None and runner is None:
            raise TypeError("StartEstimator needs a runner or a query function")
        self.runner = runner
        self._query = query or self.test_only
        self.user_prefix = user_prefix
        self.cache_seconds = cache_seconds
        self.min_spacing = min_spacing
        self._clock = clock
        self._cache: dict[_Key, _Cached] = {}
        self._last_run: dict[str, float] = {}
        self._inflight: dict[_Key, asyncio.Future[StartEstimate | None]] = {}
        self.run_count = 0

    async def estimate(
        self, username: str, sbatch_args: Sequence[str], script: str
    ) -> StartEstimate | None:
        """When a job with ``sbatch_args`` would start, or ``None`` (unknown, refused, limited).

        ``script`` is given to sbatch on stdin; ``sbatch_args`` should include what the real
        submission would (partition, CPUs, memory, time, GRES, ``--chdir``...).
        """
        key = (username, tuple(sbatch_args))
        now = self._clock()
        entry = self._cache.get(key)
        if entry is not None and now - entry.at < self.cache_seconds:
            return entry.estimate
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        last = self._last_run.get(username)
        if last is not None and now - last < self.min_spacing:
            return entry.estimate if entry else None
        self._last_run[username] = now
        self._prune(now)
        task = asyncio.ensure_future(self._run(username, list(sbatch_args), script))
        self._inflight[key] = task
        # shield: a reader that goes away must not cancel a run others may be waiting for
        return await asyncio.shield(task)

    async def close(self) -> None:
        """Cancel the estimates in flight (hub shutdown); what is cached stays."""
        loop = asyncio.get_running_loop()
        # a task of another (finished) event loop cannot be awaited from this one
        pending = [task for task in self._inflight.values() if task.get_loop() is loop]
        self._inflight.clear()
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    async def test_only(self, username: str, sbatch_args: list[str], script: str) -> StartEstimate:
        """Run ``sbatch --test-only`` as ``username``; raises on refusal or failure."""
        assert self.runner is not None
        prefix = expand_prefix(self.user_prefix, username=username) if self.user_prefix else []
        _, stderr = await self.runner.run(
            "sbatch",
            ["--test-only", *sbatch_args],
            prefix=prefix,
            input=script,
            accept_stderr=True,
        )
        return parse_test_only(stderr)

    async def _run(
        self, username: str, sbatch_args: list[str], script: str
    ) -> StartEstimate | None:
        key = (username, tuple(sbatch_args))
        self.run_count += 1
        estimate: StartEstimate | None = None
        try:
            estimate = await self._query(username, sbatch_args, script)
        except (SlurmCommandError, ValueError) as error:
            log.info("No start estimate for %s: %s", log_safe(username), log_safe(error))
        finally:
            self._inflight.pop(key, None)
        self._cache[key] = _Cached(estimate, self._clock())
        return estimate

    def _prune(self, now: float) -> None:
        # The cache is per (user, request): drop what can no longer be served, so it stays small.
        for key in [k for k, v in self._cache.items() if now - v.at > 10 * self.cache_seconds]:
            del self._cache[key]
        for user in [u for u, at in self._last_run.items() if now - at > 10 * self.min_spacing]:
            del self._last_run[user]
