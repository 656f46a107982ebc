"""How jobs ended, from the accounting database, once ``squeue`` has forgotten them:
:func:`sacct_args` and :func:`parse_sacct`.

slurmctld forgets a job ``MinJobAge`` seconds after it ends (five minutes by default), so a hub
that looks later (a hub restart, a slow poll) gets nothing from ``squeue``. ``sacct`` still has
the job's final state, reason and exit code when the site runs slurmdbd.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from ..log_safe import log_safe

__all__ = ["SACCT_FIELDS", "EndedJob", "parse_sacct", "sacct_args"]

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
