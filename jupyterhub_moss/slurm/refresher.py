"""When a hub-wide Slurm view reads Slurm: the scheduling every background refresher shares.

A subclass says what one refresh reads (``_read``) and what it keeps of the answer
(``_apply``); :class:`BackgroundRefresher` decides when that happens:

- single flight: concurrent callers share one refresh in flight, and a caller that is cancelled
  (a browser that went away) does not cancel it for the others;
- loop binding: tasks belong to one event loop; an object outliving its loop (tests run one loop
  per test) forgets that loop's tasks instead of awaiting them from another;
- a background refresh every ``interval`` (spread by ``jitter``) while it is wanted; after
  failures the wait doubles, up to :data:`MAX_BACKOFF_FACTOR` intervals, until one succeeds;
- idle: the background loop ends when nobody asked within ``idle_after`` (or when the subclass's
  ``_wanted`` says so), and the next request starts it again;
- :meth:`~BackgroundRefresher.close` cancels the loop and the refresh in flight.

A failed read never raises to the callers: it is counted, logged and kept in ``last_error``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from ..log_safe import log_safe
from .commands import SlurmCommandError

#: After failures, the wait between background refreshes doubles up to this many intervals.
MAX_BACKOFF_FACTOR = 4

Answer = TypeVar("Answer")


class BackgroundRefresher(Generic[Answer]):
    """The refresh scheduling of a hub-wide view; subclasses implement ``_read`` and ``_apply``.

    ``clock`` is a monotonic clock in seconds and ``sleep`` waits on it: tests of the scheduling
    inject a pair whose sleep moves the clock. ``interval`` and ``min_interval`` are taken as
    given: each subclass clamps its own.
    """

    #: The warning logged when a read fails, with the failures in a row and the error.
    failure_message = "Slurm refresh failed (%d in a row): %s"

    def __init__(
        self,
        interval: float,
        *,
        min_interval: float,
        idle_after: float = math.inf,
        jitter: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.interval = interval
        self.min_interval = min_interval
        self.idle_after = idle_after
        self.jitter = jitter
        self.last_error: str | None = None
        self.refresh_count = 0  # reads started, for tests and logs
        self._clock = clock
        self._sleep = sleep
        self._failures = 0
        self._last_attempt: float | None = None  # clock() when the last read started
        self._last_request = clock()
        self._inflight: asyncio.Task[None] | None = None
        self._background: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # the subclass's module, so that its warnings keep their logger name
        self._log = logging.getLogger(type(self).__module__)

    # -- what a subclass provides -----------------------------------------------------------

    async def _read(self) -> Answer:
        """Ask Slurm; raise on any failure."""
        raise NotImplementedError

    def _apply(self, answer: Answer) -> None:
        """Keep what a successful read answered."""
        raise NotImplementedError

    def _failed(self) -> None:
        """A read has just failed (``last_error`` says why); what was known is still kept."""

    def _wanted(self) -> bool:
        """Whether the background loop should go on: by default, someone asked recently."""
        return self._clock() - self._last_request <= self.idle_after

    # -- what a subclass calls --------------------------------------------------------------

    async def close(self) -> None:
        """Cancel the background loop and the refresh in flight; a later request starts anew."""
        self._bind_loop()
        tasks = [task for task in (self._background, self._inflight) if task is not None]
        self._background = self._inflight = None
        for task in tasks:
            task.cancel()
        if tasks:
            # wait() neither raises the tasks' errors nor swallows a cancellation of close()
            await asyncio.wait(tasks)

    def _asked(self) -> None:
        """Someone wants the data: the background loop is not idle for ``idle_after`` more."""
        self._last_request = self._clock()

    def _keep_refreshing(self) -> None:
        """Start the background loop unless it runs; it ends by itself once not wanted."""
        self._bind_loop()
        if self._background is None or self._background.done():
            self._background = asyncio.ensure_future(self._refresh_in_background())

    def _refresh_in_flight(self) -> bool:
        self._bind_loop()
        return self._inflight is not None and not self._inflight.done()

    async def _refresh_shared(self) -> None:
        """Run one refresh, or join the one in flight. Never raises for a failed read."""
        if not self._refresh_in_flight():
            self._inflight = asyncio.ensure_future(self._refresh_once())
        # shield: a caller that gives up (cancelled request) must not cancel everyone's refresh
        await asyncio.shield(self._inflight)

    async def _refresh_once(self) -> None:
        """One read and its bookkeeping; subclasses may wrap it (to space reads out, say)."""
        self._last_attempt = self._clock()
        self.refresh_count += 1
        try:
            answer = await self._read()
        except Exception as error:
            # Whatever went wrong (Slurm, or a bug in a parser), callers keep what was known
            # rather than getting an error page.
            self._failures += 1
            self.last_error = str(error) or type(error).__name__
            self._log.warning(
                self.failure_message,
                self._failures,
                log_safe(self.last_error),
                exc_info=not isinstance(error, SlurmCommandError),
            )
            self._failed()
            return
        self._failures = 0
        self.last_error = None
        self._apply(answer)

    def _next_delay(self) -> float:
        """The wait after the last read: an interval, doubled per failure up to the cap."""
        factor = min(2 ** max(self._failures - 1, 0), MAX_BACKOFF_FACTOR)
        # jitter: hubs restarted together do not read in step
        spread = 1 + random.uniform(-self.jitter, self.jitter) if self.jitter else 1.0  # noqa: S311
        return self.interval * factor * spread

    # -- internals --------------------------------------------------------------------------

    def _bind_loop(self) -> None:
        # Tasks belong to one event loop: after a new loop, the old one's are forgotten rather
        # than awaited (or cancelled) from a loop they do not belong to.
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._inflight = self._background = None

    async def _refresh_in_background(self) -> None:
        """Refresh every ``_next_delay()`` while wanted; return (go idle) otherwise."""
        while self._wanted():
            last = self._last_attempt
            wait = 0.0 if last is None else last + self._next_delay() - self._clock()
            if wait > 0:
                await self._sleep(wait)
                if self._last_attempt != last:
                    continue  # someone refreshed meanwhile: count the interval from there
                if not self._wanted():
                    break
            await self._refresh_shared()
        self._log.debug("%s idle: nobody needs it refreshed", type(self).__name__)
