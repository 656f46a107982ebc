"""Estimated start times from ``sbatch --test-only``, run as the user, cached and rate-limited.

An estimate is a nicety: any failure (Slurm refusing the request, a timeout, sudo not allowed)
gives ``None``, never an error page. ``sbatch --test-only`` costs slurmctld a scheduling
attempt, so the same request from the same user is answered from a cache for ``cache_seconds``,
concurrent identical requests share one run (tabs, and an admin viewing the user's form), and
each *lane* of a user runs at most one every ``spacing`` seconds. The spawn page gives each
partition its own lane and its refresh interval as the spacing, so one user costs slurmctld at
most one estimate per partition per refresh interval, however many pages ask.
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
_Lane = tuple[str, str]  # (user, lane)
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
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
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
        self._sleep = sleep
        self._cache: dict[_Key, _Cached] = {}
        #: when each (user, lane) may run again
        self._free_at: dict[_Lane, float] = {}
        self._inflight: dict[_Key, asyncio.Future[StartEstimate | None]] = {}
        #: the request that runs when a held-back lane frees, and when that is
        self._next_turn: dict[_Lane, tuple[_Key, float]] = {}
        self.run_count = 0

    async def estimate(
        self,
        username: str,
        sbatch_args: Sequence[str],
        script: str,
        *,
        lane: str = "",
        spacing: float | None = None,
    ) -> StartEstimate | None:
        """When a job with ``sbatch_args`` would start, or ``None`` (unknown, refused, limited).

        ``script`` is given to sbatch on stdin; ``sbatch_args`` should include what the real
        submission would (partition, CPUs, memory, time, GRES, ``--chdir``...). A run takes the
        user's ``lane`` for ``spacing`` seconds (default ``min_spacing``); while it is taken, a
        new request gets what is cached for it, stale or not, or ``None``.
        """
        key = (username, tuple(sbatch_args))
        now = self._clock()
        entry = self._cache.get(key)
        if entry is not None and now - entry.at < self.cache_seconds:
            return entry.estimate
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        if self.wait_for_lane(username, lane) > 0:
            return entry.estimate if entry else None
        # no await between the check above and taking the lane: one event loop, one winner
        self._free_at[(username, lane)] = now + (self.min_spacing if spacing is None else spacing)
        self._prune(now)
        task = asyncio.ensure_future(self._run(username, list(sbatch_args), script))
        self._inflight[key] = task
        # shield: a reader that goes away must not cancel a run others may be waiting for
        return await asyncio.shield(task)

    async def estimate_in_turn(
        self,
        username: str,
        sbatch_args: Sequence[str],
        script: str,
        *,
        lane: str = "",
        spacing: float | None = None,
        max_wait: float | None = None,
    ) -> StartEstimate | None:
        """:meth:`estimate`, but a request its lane holds back waits for the lane to free (if
        that is within ``max_wait`` seconds), then runs, unless a newer request for that lane
        came meanwhile: the lane runs the newest (a user's last change, in any tab). Waiting
        requests with the same arguments share one run.
        """
        estimate = await self.estimate(username, sbatch_args, script, lane=lane, spacing=spacing)
        delay = self.wait_for_lane(username, lane)
        key = (username, tuple(sbatch_args))
        too_long = max_wait is not None and delay > max_wait
        if estimate is not None or delay <= 0 or too_long or self._answered(key):
            return estimate
        turn = (key, self._clock() + delay)
        self._next_turn[(username, lane)] = turn
        await self._sleep(delay)
        current = self._next_turn.get((username, lane))
        if current is not None and current[0] != key:
            return None  # a newer request takes this turn
        return await self.estimate(username, sbatch_args, script, lane=lane, spacing=spacing)

    def _answered(self, key: _Key) -> bool:
        """Whether a fresh answer (``None`` included: Slurm refused) is cached for ``key``."""
        entry = self._cache.get(key)
        return entry is not None and self._clock() - entry.at < self.cache_seconds

    def wait_for_lane(self, username: str, lane: str = "") -> float:
        """Seconds until ``username`` may run an estimate in ``lane`` (0 when it may now)."""
        free_at = self._free_at.get((username, lane))
        return 0.0 if free_at is None else max(0.0, free_at - self._clock())

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
        for lane in [k for k, free_at in self._free_at.items() if free_at <= now]:
            del self._free_at[lane]
        # a waiter reads its turn when it wakes: keep a turn a while after its lane frees
        stale = [k for k, (_, at) in self._next_turn.items() if at + self.cache_seconds < now]
        for lane in stale:
            del self._next_turn[lane]
