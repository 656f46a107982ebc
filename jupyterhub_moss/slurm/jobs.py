"""The state of every job the hub tracks, from one ``squeue`` per poll for all of them.

batchspawner runs one ``squeue`` per spawner, twice a second while pending, so slurmctld's load
grows with the number of spawns. Here the hub-wide :class:`JobStatusPoller` asks about all
tracked jobs at once, never more often than ``min_interval``, and in the background every
``interval`` (with jitter, so hubs restarted together do not poll in step).

What an answer means:

- an error or a timeout means *unknown*: the last known status stays, nothing is declared dead;
- a job missing from squeue's answer is looked up once more before it is declared ended;
- jobs declared ended in one poll are asked about in one ``sacct`` (:mod:`.job_history`), once:
  their status carries the accounting's final state, reason and exit code (``ended``). Without
  an answer (no accounting, sacct failing, no record) the job is
  :data:`~jupyterhub_moss.slurm.models.JOB_GONE`, as it always was.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass

from .commands import SlurmCommandError, SlurmRunner
from .job_history import EndedJob, EndedJobLookup
from .job_status import parse_squeue, squeue_args
from .models import JOB_GONE, JobStatus
from .nodes import first_hostname
from .refresher import BackgroundRefresher

#: How many polls in a row must miss a job before it is declared gone.
MISSES_BEFORE_GONE = 2

JobQuery = Callable[[Collection[str]], Awaitable[Mapping[str, JobStatus]]]
#: How jobs that left squeue ended; must not raise (``{}`` when it cannot tell).
EndedJobQuery = Callable[[Collection[str]], Awaitable[Mapping[str, EndedJob]]]
# what one poll read: the ids asked about, the statuses squeue gave for them, and the
# accounting records of those it declares ended now
_Answer = tuple[list[str], Mapping[str, JobStatus], Mapping[str, EndedJob]]


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


def gone_status(job_id: str, ended: EndedJob | None) -> JobStatus:
    """The final status of a job squeue no longer knows: the accounting's record when it has
    a final one, else :data:`JOB_GONE`."""
    if ended is not None:
        status = JobStatus(
            job_id, ended.state, ended.reason, first_hostname(ended.nodes), None, ended
        )
        # A record still RUNNING (slurmdbd lagging, a controller that lost its state) says
        # nothing of the end: following it would keep asking squeue about a job it forgot.
        if status.finished:
            return status
    return JobStatus(job_id, JOB_GONE, "not known to Slurm", "", None)


@dataclass
class _TrackedJob:
    status: JobStatus | None = None
    checked_at: float | None = None  # clock() of the last poll that answered
    misses: int = 0


class JobStatusPoller(BackgroundRefresher[_Answer]):
    """Hub-wide job states. ``query`` defaults to :func:`query_jobs` with ``runner``, and
    ``ended_query`` to an :class:`~.job_history.EndedJobLookup` of ``runner`` (none without
    a runner: jobs that leave squeue are then simply gone).

    The background poll runs while a tracked job may still change, and ends when none can.
    """

    failure_message = "squeue failed (%d in a row), job states unknown: %s"

    def __init__(
        self,
        runner: SlurmRunner | None = None,
        interval: float = 30.0,
        *,
        min_interval: float = 1.0,
        jitter: float = 0.1,
        query: JobQuery | None = None,
        ended_query: EndedJobQuery | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if query is None:
            if runner is None:
                raise TypeError("JobStatusPoller needs a runner or a query function")
            query = functools.partial(query_jobs, runner)
        if ended_query is None and runner is not None:
            ended_query = EndedJobLookup(runner, clock=clock)
        super().__init__(
            max(float(interval), min_interval, 1.0),
            min_interval=max(float(min_interval), 0.1),
            jitter=min(max(jitter, 0.0), 0.5),
            clock=clock,
        )
        self._query = query
        self._ended_query = ended_query
        self._jobs: dict[str, _TrackedJob] = {}
        self._querying: frozenset[str] = frozenset()  # ids of the squeue running now

    @property
    def poll_count(self) -> int:
        """How many squeue runs were started."""
        return self.refresh_count

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
        job_id = str(job_id)
        self.track(job_id)
        self._keep_refreshing()
        entry = self._jobs[job_id]
        too_old = entry.checked_at is None or (
            max_age is not None and self._clock() - entry.checked_at > max_age
        )
        if too_old:
            if job_id not in self._querying and self._polling_now():
                await self._refresh_shared()  # started before this job was tracked
            await self._refresh_shared()
        return self.latest(job_id)

    async def look_now(self, job_id: str) -> JobStatus | None:
        """One ``squeue`` for ``job_id`` alone, at once, outside the shared schedule.

        For news the job itself brought (it reported that it started, or its port): its spawn
        acts on it now rather than at the next poll. Callers bound how often this runs (once
        per report and spawn), since it skips ``min_interval``. A failing squeue, or a job
        missing from its answer, leaves the last known status (the shared poll decides that a
        job is gone).
        """
        job_id = str(job_id)
        self.track(job_id)
        self._keep_refreshing()
        try:
            found = await self._query([job_id])
        except SlurmCommandError as error:
            self._log.debug("squeue for job %s failed: %s", job_id, error)
            return self.latest(job_id)
        entry = self._jobs.get(job_id)
        status = found.get(job_id)
        if entry is not None and status is not None:
            entry.status, entry.misses, entry.checked_at = status, 0, self._clock()
        return self.latest(job_id)

    # -- polling ----------------------------------------------------------------------------

    def _polling_now(self) -> bool:
        return self._refresh_in_flight() and bool(self._querying)

    def _active_ids(self) -> list[str]:
        # A finished or gone job does not change any more: no need to ask again.
        return [
            job_id
            for job_id, entry in self._jobs.items()
            if entry.status is None or not entry.status.finished
        ]

    def _wanted(self) -> bool:
        return bool(self._active_ids())

    def _next_delay(self) -> float:
        # A job missing once is looked at again soon rather than a full interval later.
        if any(entry.misses for entry in self._jobs.values()):
            return 2 * self.min_interval
        return super()._next_delay()

    async def _refresh_once(self) -> None:
        # squeue runs at most once every min_interval, however many callers want it sooner
        if self._last_attempt is not None:
            wait = self._last_attempt + self.min_interval - self._clock()
            if wait > 0:
                await self._sleep(wait)
        if self._active_ids():
            await super()._refresh_once()

    async def _read(self) -> _Answer:
        ids = self._active_ids()
        # Until the whole read is done (sacct too): a job tracked meanwhile waits for the next.
        self._querying = frozenset(ids)
        try:
            found = await self._query(ids)
            ended = await self._ask_how_they_ended(self._ending_now(ids, found))
            return ids, found, ended
        finally:
            self._querying = frozenset()

    def _ending_now(self, ids: list[str], found: Mapping[str, JobStatus]) -> list[str]:
        """The jobs this answer will declare ended: missing once before, and missing again."""
        return [
            job_id
            for job_id in ids
            if job_id not in found
            and job_id in self._jobs
            and self._jobs[job_id].misses + 1 >= MISSES_BEFORE_GONE
        ]

    async def _ask_how_they_ended(self, job_ids: list[str]) -> Mapping[str, EndedJob]:
        # Once per job: a job declared ended is never polled again, so never looked up again.
        if not job_ids or self._ended_query is None:
            return {}
        try:
            return await self._ended_query(job_ids)
        except Exception:  # an injected query that broke: the jobs are gone all the same
            self._log.warning("looking up how jobs ended failed", exc_info=True)
            return {}

    def _apply(self, answer: _Answer) -> None:
        ids, found, ended = answer
        now = self._clock()
        for job_id in ids:
            entry = self._jobs.get(job_id)
            if entry is None:  # forgotten while squeue ran
                continue
            self._record(job_id, entry, found.get(job_id), ended.get(job_id), now)

    def _record(
        self,
        job_id: str,
        entry: _TrackedJob,
        status: JobStatus | None,
        ended: EndedJob | None,
        now: float,
    ) -> None:
        if status is not None:
            entry.status, entry.misses, entry.checked_at = status, 0, now
            return
        entry.misses += 1
        if entry.misses >= MISSES_BEFORE_GONE:
            entry.status = gone_status(job_id, ended)
            entry.checked_at = now
        # else: keep the previous status (still unchecked if none) until the second look
