"""The state of every job the hub tracks, from one ``squeue`` per poll for all of them.

batchspawner runs one ``squeue`` per spawner, twice a second while pending, so slurmctld's load
grows with the number of spawns. Here the hub-wide :class:`JobStatusPoller` asks about all
tracked jobs at once, never more often than ``min_interval``, and in the background every
``interval`` (with jitter, so hubs restarted together do not poll in step).

What an answer means:

- an error or a timeout means *unknown*: the last known status stays, nothing is declared dead;
- a job missing from squeue's answer is looked up once more before it is declared gone
  (:data:`~jupyterhub_moss.slurm.models.JOB_GONE`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass

from ..log_safe import log_safe
from .commands import SlurmCommandError, SlurmRunner
from .models import JOB_GONE, JobStatus
from .parsing import parse_squeue, squeue_args

log = logging.getLogger(__name__)

#: How many polls in a row must miss a job before it is declared gone.
MISSES_BEFORE_GONE = 2

JobQuery = Callable[[Collection[str]], Awaitable[Mapping[str, JobStatus]]]


async def query_jobs(runner: SlurmRunner, job_ids: Collection[str]) -> dict[str, JobStatus]:
    """One ``squeue`` for ``job_ids``; jobs slurmctld no longer knows are absent from the result.

    squeue answers a single unknown id with exit status 1 ("Invalid job id specified") but
    several unknown ids with nothing at all; both mean "not there".
    """
    if not job_ids:
        return {}
    try:
        out = await runner.run("squeue", squeue_args(sorted(job_ids)))
    except SlurmCommandError as error:
        if "Invalid job id specified" in error.stderr:
            return {}
        raise
    return parse_squeue(out)


@dataclass
class _TrackedJob:
    status: JobStatus | None = None
    checked_at: float | None = None  # clock() of the last poll that answered
    misses: int = 0


class JobStatusPoller:
    """Hub-wide job states. ``query`` defaults to :func:`query_jobs` with ``runner``."""

    def __init__(
        self,
        runner: SlurmRunner | None = None,
        interval: float = 30.0,
        *,
        min_interval: float = 1.0,
        jitter: float = 0.1,
        query: JobQuery | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if query is None:
            if runner is None:
                raise TypeError("JobStatusPoller needs a runner or a query function")
            query = functools.partial(query_jobs, runner)
        self.interval = max(float(interval), min_interval, 1.0)
        self.min_interval = max(float(min_interval), 0.1)
        self.jitter = min(max(jitter, 0.0), 0.5)
        self._query = query
        self._clock = clock
        self._jobs: dict[str, _TrackedJob] = {}
        self._failures = 0
        self._last_poll: float | None = None
        self._inflight: asyncio.Task[None] | None = None
        self._querying: frozenset[str] = frozenset()  # ids of the squeue running now
        self._poller: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.last_error: str | None = None
        self.poll_count = 0

    # -- tracking ---------------------------------------------------------------------------

    def track(self, job_id: str) -> None:
        """Start following ``job_id`` (idempotent)."""
        self._jobs.setdefault(str(job_id), _TrackedJob())

    def forget(self, job_id: str) -> None:
        """Stop following ``job_id``; the background poll stops when nothing is tracked."""
        self._jobs.pop(str(job_id), None)

    def latest(self, job_id: str) -> JobStatus | None:
        """The last known status, without waiting; ``None`` when unknown."""
        entry = self._jobs.get(str(job_id))
        return entry.status if entry else None

    async def status(self, job_id: str, max_age: float | None = None) -> JobStatus | None:
        """The latest status of ``job_id`` (tracking it from now on); ``None`` when unknown.

        Waits for a poll (shared with every other caller) when the job has not been checked yet
        or was checked more than ``max_age`` seconds ago. Slurm failing makes it unknown or
        leaves the previous status; it never makes a job "gone".
        """
        self._bind_loop()
        job_id = str(job_id)
        self.track(job_id)
        self._ensure_poller()
        entry = self._jobs[job_id]
        too_old = entry.checked_at is None or (
            max_age is not None and self._clock() - entry.checked_at > max_age
        )
        if too_old:
            if job_id not in self._querying and self._polling_now():
                await self._poll_shared()  # started before this job was tracked
            await self._poll_shared()
        return self.latest(job_id)

    async def close(self) -> None:
        tasks = [task for task in (self._poller, self._inflight) if task is not None]
        self._poller = self._inflight = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # -- polling ----------------------------------------------------------------------------

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._inflight = None
            self._poller = None

    def _ensure_poller(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.ensure_future(self._background())

    def _polling_now(self) -> bool:
        return self._inflight is not None and not self._inflight.done() and bool(self._querying)

    async def _poll_shared(self) -> None:
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(self._poll_when_allowed())
        await asyncio.shield(self._inflight)

    async def _poll_when_allowed(self) -> None:
        if self._last_poll is not None:
            wait = self._last_poll + self.min_interval - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
        await self._poll_once()

    def _active_ids(self) -> list[str]:
        # A finished or gone job does not change any more: no need to ask again.
        return [
            job_id
            for job_id, entry in self._jobs.items()
            if entry.status is None or not entry.status.finished
        ]

    async def _poll_once(self) -> None:
        ids = self._active_ids()
        if not ids:
            return
        self._last_poll = self._clock()
        self.poll_count += 1
        self._querying = frozenset(ids)
        try:
            found = await self._query(ids)
        except Exception as error:
            # Unknown, not dead: whatever failed, no job changes state on it.
            self._failures += 1
            self.last_error = str(error) or type(error).__name__
            log.warning(
                "squeue failed (%d in a row), job states unknown: %s",
                self._failures,
                log_safe(self.last_error),
                exc_info=not isinstance(error, SlurmCommandError),
            )
            return
        finally:
            self._querying = frozenset()
        self._failures = 0
        self.last_error = None
        now = self._clock()
        for job_id in ids:
            entry = self._jobs.get(job_id)
            if entry is None:  # forgotten while squeue ran
                continue
            self._record(job_id, entry, found.get(job_id), now)

    def _record(
        self, job_id: str, entry: _TrackedJob, status: JobStatus | None, now: float
    ) -> None:
        if status is not None:
            entry.status, entry.misses, entry.checked_at = status, 0, now
            return
        entry.misses += 1
        if entry.misses >= MISSES_BEFORE_GONE:
            entry.status = JobStatus(job_id, JOB_GONE, "not known to Slurm", "", None)
            entry.checked_at = now
        # else: keep the previous status (still unchecked if none) until the second look

    def _next_delay(self) -> float:
        factor = min(2 ** max(self._failures - 1, 0), 4)
        spread = 1 + random.uniform(-self.jitter, self.jitter)  # noqa: S311 - not security
        return self.interval * factor * spread

    async def _background(self) -> None:
        """Poll every interval (jittered, backing off on errors) while a job is active."""
        while self._active_ids():
            # A job missing once is looked at again soon rather than a full interval later.
            recheck = any(entry.misses for entry in self._jobs.values())
            delay = 2 * self.min_interval if recheck else self._next_delay()
            last = self._last_poll
            wait = 0.0 if last is None else last + delay - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
                if self._last_poll != last:
                    continue  # a reader polled meanwhile: count the interval from there
            await self._poll_shared()
