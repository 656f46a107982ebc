"""When each step of one spawn happened, logged once per spawn for the benchmark and for admins.

A spawn's user waits through: the job's submission, the queue, the job's start, the server
listening, the server answering, and JupyterHub's own readiness check. The lifecycle marks each
point it sees (wall-clock ``time.time()``, so that marks from the job's reports and from the hub
line up) and logs one line when ``start()`` ends::

    moss spawn timeline {"user": "alice", "server": "", "job": "123", "start": 1764522000.12, ...}

The JSON is machine-readable (``benchmarks/`` reads it) and escapes whatever the username holds.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

__all__ = ["LOG_PREFIX", "POINTS", "SpawnTimeline"]

LOG_PREFIX = "moss spawn timeline "

#: The points of a spawn, in the order they happen.
POINTS = (
    "start",  # start() began
    "submitted",  # sbatch returned the job id
    "running",  # the hub learned that the job runs (the job's report or a poll)
    "port",  # the job reported its server's port
    "listening",  # the server listened (the launcher reports the port at that moment)
    "answering",  # the server first answered HTTP
    "returned",  # start() returned; JupyterHub's readiness check follows
)


@dataclass
class SpawnTimeline:
    """The points one spawn has reached so far."""

    user: str
    server: str = ""
    marks: dict[str, float] = field(default_factory=dict)

    def mark(self, point: str, when: float | None = None) -> None:
        """Mark ``point`` now or at ``when``; the earliest mark of a point wins (the job's
        report that it started may arrive before a poll saw it run, or after)."""
        if point not in POINTS:
            raise ValueError(f"not a point of a spawn: {point!r}")
        when = time.time() if when is None else when
        self.marks[point] = min(self.marks.get(point, when), when)

    def log_line(self, job_id: str) -> str:
        ordered = {point: round(self.marks[point], 3) for point in POINTS if point in self.marks}
        record = {"user": self.user, "server": self.server, "job": job_id, **ordered}
        return LOG_PREFIX + json.dumps(record)

    def mark_reports(
        self, started_at: float | None, port_at: float | None, port_means_listening: bool
    ) -> None:
        """The job's reports (that it started, its port), at the time they arrived."""
        if started_at is not None:
            self.mark("running", started_at)
        if port_at is not None:
            self.mark("port", port_at)
            if port_means_listening:
                self.mark("listening", port_at)
