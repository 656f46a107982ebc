"""One hub-wide, background-refreshed view of the Slurm cluster.

Every spawn page, fragment and validation reads the same :class:`ClusterSnapshot` from one
:class:`ClusterView` per hub process, so slurmctld's load does not grow with the number of people
looking at the page. The view:

- runs nothing at import or hub start-up; the first reader triggers the first read;
- shares one in-flight refresh among all concurrent callers (single flight);
- refreshes in the background every ``interval`` while someone has asked within ``idle_after``,
  and goes idle otherwise, waking on the next request;
- keeps the last good snapshot, with its age and the error, when Slurm fails or times out; only
  with no snapshot ever does a reader get :class:`ClusterUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from ..log_safe import log_safe
from .commands import SlurmCommandError, SlurmRunner
from .models import PartitionInfo, Reservation
from .parsing import RESERVATION_ARGS, SINFO_ARGS, parse_reservations, parse_sinfo

log = logging.getLogger(__name__)

#: The shortest refresh interval accepted, in seconds; shorter ones are raised to it.
MIN_INTERVAL = 5.0
DEFAULT_INTERVAL = 30.0
#: After failures, the wait between attempts doubles up to this many intervals.
MAX_BACKOFF_FACTOR = 4

ClusterData = tuple[Mapping[str, PartitionInfo], tuple[Reservation, ...]]


class ClusterUnavailable(RuntimeError):
    """Slurm has never answered this hub process, so there is no data at all to show."""


@dataclass(frozen=True)
class ClusterSnapshot:
    """What the hub knows about the cluster, read at ``taken_at``.

    ``error`` is set when the latest refresh failed: the data is then older than it should be
    (``is_stale``), and the page says "data from N s ago: Slurm did not answer".
    """

    partitions: Mapping[str, PartitionInfo]
    reservations: tuple[Reservation, ...]
    taken_at: datetime | None
    error: str | None = None

    def age_seconds(self, now: datetime | None = None) -> float | None:
        if self.taken_at is None:
            return None
        now = now or datetime.now(timezone.utc)
        return max((now - self.taken_at).total_seconds(), 0.0)

    @property
    def is_stale(self) -> bool:
        return self.error is not None


async def read_cluster(runner: SlurmRunner) -> ClusterData:
    """Read partitions and reservations: one ``sinfo`` and one ``scontrol show reservation``."""
    sinfo_out, reservations_out = await asyncio.gather(
        runner.run("sinfo", list(SINFO_ARGS)),
        runner.run("scontrol", list(RESERVATION_ARGS)),
    )
    partitions = parse_sinfo(sinfo_out)
    if not partitions and sinfo_out.strip():
        raise ValueError(f"sinfo output could not be read: {sinfo_out[:200]!r}")
    return partitions, tuple(parse_reservations(reservations_out))


class ClusterView:
    """Owner of the hub's :class:`ClusterSnapshot`; use :meth:`shared` to get the process's one.

    ``refresh`` reads the cluster; it defaults to :func:`read_cluster` with ``runner`` (tests of
    the scheduling logic may inject their own). ``clock`` is a monotonic clock in seconds.
    """

    _registry: dict[tuple, ClusterView] = {}

    def __init__(
        self,
        runner: SlurmRunner | None = None,
        interval: float = DEFAULT_INTERVAL,
        idle_after: float | None = None,
        *,
        refresh: Callable[[], Awaitable[ClusterData]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        min_interval: float = MIN_INTERVAL,
    ) -> None:
        if refresh is None:
            if runner is None:
                raise TypeError("ClusterView needs a runner or a refresh function")
            refresh = functools.partial(read_cluster, runner)
        self.runner = runner
        self.min_interval = min_interval
        self.interval = max(float(interval), min_interval)
        self.idle_after = max(idle_after or 3 * self.interval, self.interval)
        self._read = refresh
        self._clock = clock
        self._snapshot: ClusterSnapshot | None = None
        self._last_error: str | None = None
        self._failures = 0
        self._last_attempt: float | None = None  # clock() when the last refresh started
        self._last_request = clock()
        self._inflight: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.refresh_count = 0  # refreshes started, for tests and logs

    # -- the process-wide instance ---------------------------------------------------------

    @classmethod
    def shared(cls, runner: SlurmRunner, interval: float = DEFAULT_INTERVAL) -> ClusterView:
        """The view for this runner configuration and interval, created on first use.

        Creating it runs nothing: the first :meth:`snapshot` does the first read.
        """
        key = (runner.cache_key(), max(float(interval), MIN_INTERVAL))
        view = cls._registry.get(key)
        if view is None:
            view = cls._registry[key] = cls(runner, interval)
        return view

    @classmethod
    async def close_all(cls) -> None:
        """Stop every shared view's background work (hub shutdown, tests)."""
        views = list(cls._registry.values())
        cls._registry.clear()
        for view in views:
            await view.close()

    # -- readers ----------------------------------------------------------------------------

    def current(self) -> ClusterSnapshot | None:
        """The latest snapshot, without waiting or triggering anything."""
        return self._snapshot

    @property
    def last_error(self) -> str | None:
        return self._last_error

    async def snapshot(self, max_age: float | None = None) -> ClusterSnapshot:
        """The current snapshot, at once when there is one.

        With none yet, waits for the first refresh (shared with concurrent callers) and raises
        :class:`ClusterUnavailable` if it fails. Keeps the background refresh going while asked.
        With ``max_age`` (seconds), waits for a refresh when the data is older than that.
        """
        self._bind_loop()
        self._last_request = self._clock()
        if self._snapshot is None:
            await self._first_snapshot()
        self._ensure_poller()
        snapshot = self._snapshot
        assert snapshot is not None
        age = snapshot.age_seconds()
        if max_age is not None and age is not None and age > max_age:
            await self._refresh_shared()
        assert self._snapshot is not None
        return self._snapshot

    async def refresh(self) -> ClusterSnapshot | None:
        """Refresh now (joining one already in flight) and return the resulting snapshot."""
        self._bind_loop()
        await self._refresh_shared()
        return self._snapshot

    async def close(self) -> None:
        """Cancel the background loop and any refresh in flight."""
        tasks = [task for task in (self._poller, self._inflight) if task is not None]
        self._poller = self._inflight = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # -- internals --------------------------------------------------------------------------

    def _bind_loop(self) -> None:
        # Tasks belong to one event loop. A view outliving its loop (tests run one loop per
        # test) forgets the old loop's tasks instead of awaiting them from another loop.
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._inflight = None
            self._poller = None

    async def _first_snapshot(self) -> None:
        # While Slurm has never answered, do not let each reader start another attempt.
        recently = (
            self._last_attempt is not None
            and (self._inflight is None or self._inflight.done())
            and self._clock() - self._last_attempt < self.min_interval
        )
        if not recently:
            await self._refresh_shared()
        if self._snapshot is None:
            raise ClusterUnavailable(f"Slurm is not answering: {self._last_error or 'no data'}")

    async def _refresh_shared(self) -> None:
        """Run one refresh, or wait for the one in flight. Never raises for Slurm failures."""
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(self._refresh_once())
        # shield: a reader that gives up (cancelled request) must not cancel everyone's refresh
        await asyncio.shield(self._inflight)

    async def _refresh_once(self) -> None:
        self._last_attempt = self._clock()
        self.refresh_count += 1
        try:
            partitions, reservations = await self._read()
        except Exception as error:
            # Whatever went wrong (Slurm, or a bug in a parser), readers keep the last snapshot
            # rather than getting an error page.
            self._failures += 1
            self._last_error = str(error) or type(error).__name__
            log.warning(
                "Slurm cluster refresh failed (%d in a row): %s",
                self._failures,
                log_safe(self._last_error),
                exc_info=not isinstance(error, SlurmCommandError),
            )
            if self._snapshot is not None:
                self._snapshot = replace(self._snapshot, error=self._last_error)
            return
        self._failures = 0
        self._last_error = None
        self._snapshot = ClusterSnapshot(
            partitions=dict(partitions),
            reservations=tuple(reservations),
            taken_at=datetime.now(timezone.utc),
        )

    def _ensure_poller(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.ensure_future(self._poll())

    def _wait_before_next(self) -> float:
        factor = min(2 ** max(self._failures - 1, 0), MAX_BACKOFF_FACTOR)
        return self.interval * factor

    async def _poll(self) -> None:
        """Refresh every interval while asked recently; return (go idle) otherwise."""
        while True:
            last = self._last_attempt if self._last_attempt is not None else -float("inf")
            delay = last + self._wait_before_next() - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._clock() - self._last_request > self.idle_after:
                log.debug("Slurm view idle: nobody asked for %.0f s", self.idle_after)
                return
            await self._refresh_shared()
