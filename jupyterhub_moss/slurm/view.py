"""One hub-wide, background-refreshed view of the Slurm cluster.

Every spawn page, fragment and validation reads the same :class:`ClusterSnapshot` from one
:class:`ClusterView` per hub process, so slurmctld's load does not grow with the number of people
looking at the page. The view:

- runs nothing at import or hub start-up; the first reader triggers the first read;
- shares one in-flight refresh among all concurrent callers (single flight);
- refreshes in the background every ``interval`` while someone has asked within ``idle_after``,
  and goes idle otherwise, waking on the next request (that scheduling is
  :class:`~.refresher.BackgroundRefresher`'s);
- keeps the last good snapshot, with its age and the error, when Slurm fails or times out; only
  with no snapshot ever does a reader get :class:`ClusterUnavailable`.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from .commands import SlurmRunner
from .models import PartitionInfo, Reservation
from .partition_access import PARTITION_ARGS, PartitionAccess, parse_partition_access
from .partitions import SINFO_ARGS, parse_sinfo
from .refresher import BackgroundRefresher
from .reservations import RESERVATION_ARGS, parse_reservations

#: The shortest refresh interval accepted, in seconds; shorter ones are raised to it.
MIN_INTERVAL = 5.0
DEFAULT_INTERVAL = 30.0

ClusterData = tuple[
    Mapping[str, PartitionInfo], tuple[Reservation, ...], Mapping[str, PartitionAccess]
]


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
    #: Who may use each partition (AllowAccounts, AllowGroups, AllowQos...), hidden ones too.
    access: Mapping[str, PartitionAccess] = field(default_factory=dict)

    def age_seconds(self, now: datetime | None = None) -> float | None:
        if self.taken_at is None:
            return None
        now = now or datetime.now(timezone.utc)
        return max((now - self.taken_at).total_seconds(), 0.0)

    @property
    def is_stale(self) -> bool:
        return self.error is not None


async def read_cluster(runner: SlurmRunner) -> ClusterData:
    """Read partitions, reservations and the partitions' access rules: one ``sinfo``, one
    ``scontrol show reservation`` and one ``scontrol show partition``."""
    sinfo_out, reservations_out, access_out = await asyncio.gather(
        runner.run("sinfo", list(SINFO_ARGS)),
        runner.run("scontrol", list(RESERVATION_ARGS)),
        runner.run("scontrol", list(PARTITION_ARGS)),
    )
    partitions = parse_sinfo(sinfo_out)
    if not partitions and sinfo_out.strip():
        raise ValueError(f"sinfo output could not be read: {sinfo_out[:200]!r}")
    return (
        partitions,
        tuple(parse_reservations(reservations_out)),
        parse_partition_access(access_out),
    )


class ClusterView(BackgroundRefresher[ClusterData]):
    """Owner of the hub's :class:`ClusterSnapshot`; :func:`.services.cluster_view` gives the
    process's one.

    ``refresh`` reads the cluster; it defaults to :func:`read_cluster` with ``runner`` (tests of
    the scheduling logic may inject their own). ``clock`` is a monotonic clock in seconds.
    """

    failure_message = "Slurm cluster refresh failed (%d in a row): %s"

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
        interval = max(float(interval), min_interval)
        super().__init__(
            interval,
            min_interval=min_interval,
            idle_after=max(idle_after or 3 * interval, interval),
            clock=clock,
        )
        self.runner = runner
        self._read_cluster = refresh
        self._snapshot: ClusterSnapshot | None = None

    # -- readers ----------------------------------------------------------------------------

    def current(self) -> ClusterSnapshot | None:
        """The latest snapshot, without waiting or triggering anything."""
        return self._snapshot

    async def snapshot(self, max_age: float | None = None) -> ClusterSnapshot:
        """The current snapshot, at once when there is one.

        With none yet, waits for the first refresh (shared with concurrent callers) and raises
        :class:`ClusterUnavailable` if it fails. Keeps the background refresh going while asked.
        With ``max_age`` (seconds), waits for a refresh when the data is older than that.
        """
        self._asked()
        if self._snapshot is None:
            await self._first_snapshot()
        self._keep_refreshing()
        snapshot = self._snapshot
        assert snapshot is not None
        age = snapshot.age_seconds()
        if max_age is not None and age is not None and age > max_age:
            await self._refresh_shared()
        assert self._snapshot is not None
        return self._snapshot

    async def refresh(self) -> ClusterSnapshot | None:
        """Refresh now (joining one already in flight) and return the resulting snapshot."""
        await self._refresh_shared()
        return self._snapshot

    # -- the refresh ------------------------------------------------------------------------

    async def _first_snapshot(self) -> None:
        # While Slurm has never answered, do not let each reader start another attempt.
        recently = (
            self._last_attempt is not None
            and not self._refresh_in_flight()
            and self._clock() - self._last_attempt < self.min_interval
        )
        if not recently:
            await self._refresh_shared()
        if self._snapshot is None:
            raise ClusterUnavailable(f"Slurm is not answering: {self.last_error or 'no data'}")

    async def _read(self) -> ClusterData:
        return await self._read_cluster()

    def _apply(self, answer: ClusterData) -> None:
        partitions, reservations, access = answer
        self._snapshot = ClusterSnapshot(
            partitions=dict(partitions),
            reservations=tuple(reservations),
            taken_at=datetime.now(timezone.utc),
            access=dict(access),
        )

    def _failed(self) -> None:
        # readers keep the last snapshot, marked stale with the reason
        if self._snapshot is not None:
            self._snapshot = replace(self._snapshot, error=self.last_error)
