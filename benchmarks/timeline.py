"""One spawn's timeline, read from the hub's log: when each step happened after the request.

Two kinds of log line give the points the harness cannot see from outside:

- JupyterHub's own ``User <name> took <x> seconds to start``, logged when the spawn (start()
  and the readiness check) is done: "the hub calls it ready". Both implementations log it; its
  time is the log line's own timestamp.
- Our spawner's ``moss spawn timeline {json}``, once per spawn: Unix times of its inner steps
  (submitted, running, port, listening, …). Only ours logs it; any key may be missing.

Times are returned as seconds since the spawn request (``time.time()`` taken when it was sent).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

TIMELINE_MARK = "moss spawn timeline "

#: JupyterHub's (tornado's) prefix: ``[I 2026-11-30 17:09:39.823 JupyterHub user:123] …``.
_PREFIX = re.compile(r"^\[[A-Z] (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) ")

#: The inner points of our spawner's timeline, in the order they happen.
INNER_POINTS = ("start", "submitted", "running", "port", "listening", "answering", "returned")

#: Logging truncates to whole milliseconds, so a line may look up to 1 ms older than it is.
_STAMP_SLACK = 0.002


def log_time(line: str) -> float | None:
    """The Unix time of a JupyterHub log line, from its prefix (local time, like logging's)."""
    match = _PREFIX.match(line)
    if match is None:
        return None
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()


def hub_ready_time(lines: Iterable[str], user: str, since: float) -> float | None:
    """When JupyterHub logged that ``user``'s default server took … to start, after ``since``."""
    # The default server is logged as "user", a named one as "user:name".
    wanted = re.compile(rf"\bUser {re.escape(user)} took [0-9.]+ seconds to start")
    for line in lines:
        if wanted.search(line):
            stamp = log_time(line)
            if stamp is not None and stamp >= since - _STAMP_SLACK:
                return stamp
    return None


def spawner_timeline(lines: Iterable[str], user: str, since: float) -> dict[str, float]:
    """The last ``moss spawn timeline`` of ``user``'s default server logged after ``since``.

    Only the Unix-time points are kept (user, server and job are dropped); empty when our
    spawner logged none, as the reference never does.
    """
    found: dict[str, float] = {}
    for line in lines:
        _, mark, rest = line.partition(TIMELINE_MARK)
        if not mark:
            continue
        try:
            record = json.loads(rest.strip())
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            continue
        if record.get("user") != user or record.get("server", "") != "":
            continue
        stamp = log_time(line)
        if stamp is None:
            stamp = record.get("returned") or record.get("start")
        if not isinstance(stamp, int | float) or stamp < since - _STAMP_SLACK:
            continue
        found = {
            key: float(value)
            for key, value in record.items()
            if key not in ("user", "server", "job") and isinstance(value, int | float)
        }
    return found


@dataclass
class SpawnTimeline:
    """Seconds from the spawn request to each point reached; a point not reached is absent."""

    points: dict[str, float] = field(default_factory=dict)

    def get(self, point: str) -> float | None:
        return self.points.get(point)

    def gap(self, first: str, then: str) -> float | None:
        """Seconds from ``first`` to ``then``, when both were reached."""
        a, b = self.points.get(first), self.points.get(then)
        return None if a is None or b is None else b - a


def read_timeline(log_text: str, user: str, requested: float) -> SpawnTimeline:
    """The hub log's points of the spawn requested at Unix time ``requested``."""
    lines = log_text.splitlines()
    points = {
        key: value - requested
        for key, value in spawner_timeline(lines, user, requested).items()
        if key in INNER_POINTS
    }
    ready = hub_ready_time(lines, user, requested)
    if ready is not None:
        points["hub_ready"] = ready - requested
    return SpawnTimeline(points)
