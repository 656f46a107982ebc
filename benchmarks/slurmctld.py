"""slurmctld's own RPC counters (``sdiag``), read before and after a scenario.

The counters are cluster-wide: anything else talking to the controller during a window is
counted too, so the published figures come from a quiet run. Differences are used rather than
``sdiag -r`` by default, because a reset would corrupt the before/after counts of anyone else
measuring at the same time; ``--sdiag-reset`` asks for the reset as well. A reset in the middle
of a window (someone else's, or midnight UTC) is detected and the window marked invalid.
"""

from __future__ import annotations

import math
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field

#: The controller's read requests that a spawner's page and status polling cause.
INFO_TYPES = (
    "REQUEST_PARTITION_INFO",
    "REQUEST_NODE_INFO",
    "REQUEST_JOB_INFO",
    "REQUEST_JOB_INFO_SINGLE",
    "REQUEST_RESERVATION_INFO",
    "REQUEST_FED_INFO",
)
JOB_INFO_TYPES = ("REQUEST_JOB_INFO", "REQUEST_JOB_INFO_SINGLE")

_SINCE_RE = re.compile(r"^Data since\s+.*\((\d+)\)", re.MULTILINE)
_ROW_RE = re.compile(r"^\s*(\S+)\s+\(\s*\d+\)\s+count:(\d+)", re.MULTILINE)


@dataclass(frozen=True)
class Counters:
    since: int  # when the counters were last reset (epoch seconds)
    by_type: dict[str, int]
    by_user: dict[str, int]


def parse_sdiag(text: str) -> Counters:
    since_match = _SINCE_RE.search(text)
    by_type: dict[str, int] = {}
    by_user: dict[str, int] = {}
    _, _, rest = text.partition("by message type")
    types_part, _, users_part = rest.partition("by user")
    users_part = users_part.split("Pending RPC", 1)[0]
    for name, count in _ROW_RE.findall(types_part):
        by_type[name] = int(count)
    for name, count in _ROW_RE.findall(users_part):
        by_user[name] = int(count)
    return Counters(int(since_match.group(1)) if since_match else 0, by_type, by_user)


def read_counters(env: Mapping[str, str]) -> Counters:
    out = subprocess.run(
        ["sdiag"], env=dict(env), capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return parse_sdiag(out)


def reset_counters(env: Mapping[str, str]) -> None:
    subprocess.run(["sdiag", "-r"], env=dict(env), capture_output=True, check=True, timeout=30)


@dataclass
class Window:
    """The RPCs slurmctld served between :meth:`start` and :meth:`stop`."""

    env: Mapping[str, str]
    reset: bool = False
    by_type: dict[str, int] = field(default_factory=dict)
    by_user: dict[str, int] = field(default_factory=dict)
    valid: bool = True
    _before: Counters | None = None

    def start(self) -> None:
        if self.reset:
            reset_counters(self.env)
        self._before = read_counters(self.env)

    def stop(self) -> None:
        assert self._before is not None, "stop() before start()"
        after = read_counters(self.env)
        if after.since != self._before.since:
            # Reset in between: the difference means nothing.
            self.valid = False
        self.by_type = _difference(self._before.by_type, after.by_type)
        self.by_user = _difference(self._before.by_user, after.by_user)

    def add(self, other: Window) -> None:
        """Fold another window's counts into this one (several windows, one figure)."""
        self.valid = self.valid and other.valid
        for key, value in other.by_type.items():
            self.by_type[key] = self.by_type.get(key, 0) + value
        for key, value in other.by_user.items():
            self.by_user[key] = self.by_user.get(key, 0) + value

    def count(self, types: tuple[str, ...] = INFO_TYPES) -> float:
        """RPCs of these types in the window; NaN when the counters were reset inside it."""
        if not self.valid:
            return math.nan
        return float(sum(self.by_type.get(name, 0) for name in types))

    def by(self, user: str) -> float:
        """All RPCs made as ``user`` in the window; NaN when the counters were reset inside it."""
        return float(self.by_user.get(user, 0)) if self.valid else math.nan

    def breakdown(self, types: tuple[str, ...] = INFO_TYPES) -> str:
        if not self.valid:
            return "not counted: sdiag counters were reset during the window"
        parts = [
            f"{name.removeprefix('REQUEST_').lower()} {self.by_type[name]}"
            for name in types
            if self.by_type.get(name)
        ]
        return ", ".join(parts) or "none"


def _difference(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    return {key: value - before.get(key, 0) for key, value in after.items()}
