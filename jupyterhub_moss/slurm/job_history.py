"""How jobs ended, from the accounting database, once ``squeue`` has forgotten them:
:func:`sacct_args` and :func:`parse_sacct`, and :class:`EndedJobLookup`, which runs them.

slurmctld forgets a job ``MinJobAge`` seconds after it ends (five minutes by default), so a hub
that looks later (a hub restart, a slow poll) gets nothing from ``squeue``. ``sacct`` still has
the job's final state, reason and exit code when the site runs slurmdbd.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..log_safe import log_safe
from .accounting import accounting_is_off
from .commands import SlurmCommandError

if TYPE_CHECKING:
    from .commands import SlurmRunner

__all__ = [
    "ACCOUNTING_OFF_RECHECK",
    "PAUSE_AFTER_FAILURE",
    "SACCT_FIELDS",
    "SACCT_TIMEOUT",
    "EndedJob",
    "EndedJobLookup",
    "parse_sacct",
    "sacct_args",
]

log = logging.getLogger(__name__)

SACCT_FIELDS = ("JobID", "State", "ExitCode", "Reason", "Account", "QOS", "Partition", "NodeList")


def sacct_args(job_ids: Iterable[str]) -> list[str]:
    """``sacct`` arguments for the allocations (``-X``: no steps) of ``job_ids``.

    With ``--jobs``, sacct looks back to the beginning of time, not only to midnight.
    """
    ids = [job_id for job_id in job_ids if job_id.replace("_", "").isdigit()]
    if not ids:
        raise ValueError("no job id to ask sacct about")
    return ["-n", "-P", "-X", "--jobs=" + ",".join(ids), "--format=" + ",".join(SACCT_FIELDS)]


@dataclass(frozen=True)
class EndedJob:
    """A job as the accounting database recorded it."""

    job_id: str
    state: str  # COMPLETED, FAILED, CANCELLED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, ...
    exit_code: int | None  # the batch script's exit status
    signal: int | None  # the signal that ended it, if any
    reason: str  # "None" when Slurm has nothing to say
    account: str
    qos: str
    partition: str
    nodes: str

    def describe(self) -> str:
        """In words, for a failure message: "FAILED with exit code 3", "TIMEOUT", ..."""
        words = self.state
        if self.exit_code:
            words += f" with exit code {self.exit_code}"
        if self.signal:
            words += f" (signal {self.signal})"
        if self.reason and self.reason != "None":
            words += f", reason {self.reason}"
        return words


def _exit_code(text: str) -> tuple[int | None, int | None]:
    code, _, signal = text.partition(":")
    try:
        return int(code), int(signal or 0)
    except ValueError:
        return None, None


def parse_sacct(text: str) -> dict[str, EndedJob]:
    """Jobs by id from ``sacct`` with :func:`sacct_args`. ``CANCELLED by 1001`` becomes
    ``CANCELLED``. Unreadable lines are logged and skipped."""
    jobs: dict[str, EndedJob] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) != len(SACCT_FIELDS):
            log.warning("skipping sacct line %s", log_safe(repr(line[:120])))
            continue
        values = dict(zip(SACCT_FIELDS, (part.strip() for part in parts), strict=True))
        exit_code, signal = _exit_code(values["ExitCode"])
        jobs[values["JobID"]] = EndedJob(
            job_id=values["JobID"],
            state=values["State"].split()[0] if values["State"] else "UNKNOWN",
            exit_code=exit_code,
            signal=signal,
            reason=values["Reason"] or "None",
            account=values["Account"],
            qos=values["QOS"],
            partition=values["Partition"],
            nodes=values["NodeList"],
        )
    return jobs


# ---------------------------------------------------------------------------------------------
# Asking sacct

#: Seconds one ``sacct`` may take. It only adds detail to jobs already known to have ended, and
#: the poll that asks it holds every other job's news meanwhile, so it gets less than a query.
SACCT_TIMEOUT = 5.0
#: After sacct failed (slurmdbd down or slow), seconds during which jobs leaving ``squeue`` are
#: reported "gone" without asking it: each try could hold a poll for :data:`SACCT_TIMEOUT`.
PAUSE_AFTER_FAILURE = 60.0
#: After sacct said the cluster has no accounting, seconds before it is asked again.
ACCOUNTING_OFF_RECHECK = 3600.0


class EndedJobLookup:
    """How jobs ended, for the job poller: one ``sacct`` per call, however many jobs.

    It never raises: whatever goes wrong, the answer is ``{}`` (no record), and the jobs stay
    "gone" as they would be without accounting. A failure is logged once, not at every call.

    "No accounting" is remembered for :data:`ACCOUNTING_OFF_RECHECK`: sacct decides it from the
    local slurm.conf (``AccountingStorageType``), which only changes when an admin reconfigures
    the site, so asking at every job that ends would cost a process for an answer known in
    advance. Asking again hourly still notices a site that turned slurmdbd on while the hub ran.
    """

    def __init__(
        self,
        runner: SlurmRunner,
        *,
        timeout: float = SACCT_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._runner = runner
        # never longer than the admin's slurm_timeout (a test's stand-in may have none)
        self._timeout = min(timeout, float(getattr(runner, "timeout", timeout)))
        self._clock = clock
        self._quiet_until = -math.inf  # no sacct before this clock() (off, or failing)
        self._failing = False  # the last sacct failed, and the log said so
        self.accounting_off = False

    async def __call__(self, job_ids: Collection[str]) -> dict[str, EndedJob]:
        """The accounting records of ``job_ids`` (those it has), by job id."""
        try:
            args = sacct_args(job_ids)
        except ValueError:
            return {}
        if self._clock() < self._quiet_until:
            return {}
        try:
            out = await self._runner.run("sacct", args, timeout=self._timeout)
        except Exception as error:  # whatever it is, the job has still ended: say "gone"
            self._failed(error, len(job_ids))
            return {}
        self._answered()
        return parse_sacct(out)

    def _failed(self, error: Exception, jobs: int) -> None:
        message = error.stderr if isinstance(error, SlurmCommandError) else ""
        if accounting_is_off(message or str(error)):
            self._quiet_until = self._clock() + ACCOUNTING_OFF_RECHECK
            if not self.accounting_off:
                log.warning(
                    "Slurm has no accounting database (sacct: %s): jobs that leave squeue "
                    "are reported as gone, without their final state",
                    log_safe(message.strip() or error),
                )
            self.accounting_off = True
            return
        self._quiet_until = self._clock() + PAUSE_AFTER_FAILURE
        log.log(
            logging.DEBUG if self._failing else logging.WARNING,
            "sacct failed, %d ended job(s) reported as gone without their final state "
            "(not asked again for %.0f s): %s",
            jobs,
            PAUSE_AFTER_FAILURE,
            log_safe(error),
            exc_info=not isinstance(error, SlurmCommandError),
        )
        self._failing = True

    def _answered(self) -> None:
        if self._failing or self.accounting_off:
            log.info("sacct answers again: ended jobs get their final state")
        self._failing = self.accounting_off = False
