"""A job's state as Slurm reports it: ``squeue``'s status lines (:func:`squeue_args`,
:func:`parse_squeue`) and the start estimate ``sbatch --test-only`` prints
(:func:`parse_test_only`).

Unreadable ``squeue`` lines are logged and skipped, and unreadable times logged and read as
unknown (``None``): never a crash.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import datetime

from ..log_safe import log_safe
from .models import ACTIVE_STATES, WAITING_STATES, JobStatus, StartEstimate
from .nodes import first_hostname
from .times import parse_slurm_time

__all__ = ["SQUEUE_FORMAT", "parse_squeue", "parse_test_only", "squeue_args"]

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# squeue

#: squeue's ``-o`` fields: job id, long state, batch host, node list, start time, end time,
#: reason. The reason comes last: it is free-ish text, so it takes whatever remains of the line.
SQUEUE_FORMAT = "%i|%T|%B|%N|%S|%e|%r"
_FIELDS = SQUEUE_FORMAT.count("|") + 1

# How squeue 22.05 spells "no end": ``NONE`` for a running job without a time limit, ``N/A``
# while pending, ``Unknown`` for an unset time (all read as None by parse_slurm_time), and
# the duration words other Slurm commands use for "no limit", read here as well so that no
# release's spelling of "unlimited" is logged as unreadable.
_NO_LIMIT = frozenset({"unlimited", "infinite"})


def squeue_args(job_ids: Iterable[str]) -> list[str]:
    """``squeue`` arguments for :func:`parse_squeue`: every state, only these jobs."""
    return ["-h", "-t", "all", "-j", ",".join(job_ids), "-o", SQUEUE_FORMAT]


def parse_squeue(text: str) -> dict[str, JobStatus]:
    """Job statuses by job id from ``squeue`` run with :func:`squeue_args`.

    Of the three times, each is kept only where squeue means it: ``expected_start`` (%S) while
    the job is PENDING (Slurm's estimate); ``started`` (%S) once it has left the waiting
    states and was given a node (a job cancelled while pending also gets a %S, the time it
    was cancelled, but never ran); ``ends`` (%e) while it is active, where %e is when Slurm
    will end it at its time limit (an ended job's %e is when it did end, already in the past).
    """
    jobs: dict[str, JobStatus] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.strip().split("|", _FIELDS - 1)
        if len(parts) != _FIELDS or not parts[0]:
            log.warning("skipping squeue line %s", log_safe(repr(line)))
            continue
        job_id, state, batch_host, node_list, start, end, reason = (p.strip() for p in parts)
        state = state.upper()
        node = _job_node(batch_host, node_list)
        waiting = state in WAITING_STATES
        jobs[job_id] = JobStatus(
            job_id=job_id,
            state=state,
            reason=reason or "None",
            node=node,
            expected_start=_time(job_id, "start", start) if state == "PENDING" else None,
            started=_time(job_id, "start", start) if not waiting and node else None,
            ends=_time(job_id, "end", end) if state in ACTIVE_STATES else None,
        )
    return jobs


def _time(job_id: str, what: str, value: str) -> datetime | None:
    """A squeue time as aware UTC; None for Slurm's "no time"/"no limit" spellings, and for
    anything unreadable (logged): one odd value must not cost the poller every job's status."""
    if value.lower() in _NO_LIMIT:
        return None
    try:
        return parse_slurm_time(value)
    except (ValueError, OverflowError):
        # OverflowError: a year-1 or year-9999 time moved into UTC leaves datetime's range.
        log.warning(
            "unreadable squeue %s time %s of job %s",
            what,
            log_safe(repr(value)),
            log_safe(job_id),
        )
        return None


def _job_node(batch_host: str, node_list: str) -> str:
    if batch_host and batch_host.lower() not in ("n/a", "(null)", "none"):
        return batch_host
    return first_hostname(node_list)


# ---------------------------------------------------------------------------------------------
# sbatch --test-only

_TEST_ONLY = re.compile(
    r"Job\s+(?P<job>\d+)\s+to start at\s+(?P<start>\S+)\s+using\s+(?P<cpus>\d+)\s+processors?"
    r"\s+on nodes\s+(?P<nodes>\S+)(?:\s+in partition\s+(?P<partition>\S+))?"
)


def parse_test_only(stderr_text: str) -> StartEstimate:
    """The estimate ``sbatch --test-only`` prints on stderr::

        sbatch: Job 123 to start at 2026-11-26T10:00:00 using 4 processors on nodes c1
        in partition cpu

    Raises :class:`ValueError` when there is none (e.g. the request was refused).
    """
    match = _TEST_ONLY.search(stderr_text)
    if match is None:
        raise ValueError(f"no start estimate in {stderr_text.strip()!r}")
    start = parse_slurm_time(match.group("start"))
    if start is None:
        raise ValueError(f"no start time in {match.group(0)!r}")
    return StartEstimate(
        start=start,
        cpus=int(match.group("cpus")),
        nodes=match.group("nodes"),
        partition=match.group("partition"),
    )
