"""A job's state as Slurm reports it: ``squeue``'s status lines (:func:`squeue_args`,
:func:`parse_squeue`) and the start estimate ``sbatch --test-only`` prints
(:func:`parse_test_only`).

Unreadable ``squeue`` lines are logged and skipped, never a crash.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from ..log_safe import log_safe
from .models import JobStatus, StartEstimate
from .nodes import first_hostname
from .times import parse_slurm_time

__all__ = ["SQUEUE_FORMAT", "parse_squeue", "parse_test_only", "squeue_args"]

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# squeue

#: squeue's ``-o`` fields: job id, long state, batch host, node list, start time, reason. The
#: reason comes last: it is free-ish text, so it takes whatever remains of the line.
SQUEUE_FORMAT = "%i|%T|%B|%N|%S|%r"


def squeue_args(job_ids: Iterable[str]) -> list[str]:
    """``squeue`` arguments for :func:`parse_squeue`: every state, only these jobs."""
    return ["-h", "-t", "all", "-j", ",".join(job_ids), "-o", SQUEUE_FORMAT]


def parse_squeue(text: str) -> dict[str, JobStatus]:
    """Job statuses by job id from ``squeue`` run with :func:`squeue_args`."""
    jobs: dict[str, JobStatus] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.strip().split("|", 5)
        if len(parts) != 6 or not parts[0]:
            log.warning("skipping squeue line %s", log_safe(repr(line)))
            continue
        job_id, state, batch_host, node_list, start, reason = (p.strip() for p in parts)
        state = state.upper()
        try:
            expected = parse_slurm_time(start) if state == "PENDING" else None
        except ValueError:
            expected = None
        jobs[job_id] = JobStatus(
            job_id=job_id,
            state=state,
            reason=reason or "None",
            node=_job_node(batch_host, node_list),
            expected_start=expected,
        )
    return jobs


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
