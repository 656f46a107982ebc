"""Slurm's time values: durations (``D-HH:MM:SS`` and its shorter spellings) and timestamps.

One grammar reads every duration, whether Slurm printed it (``sinfo``'s time limit) or a user
typed it (``--time``); one formatter writes the spelling ``sbatch --time`` reads unambiguously.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

__all__ = [
    "format_slurm_duration",
    "parse_slurm_duration",
    "parse_slurm_time",
    "slurm_duration_seconds",
]


def _duration_grammar(days: str, lead: str, later: str) -> re.Pattern[str]:
    """Slurm's duration grammar, each field matching the given digits pattern: ``days`` for
    ``D``, ``lead`` for the first field without days, ``later`` for every other field."""
    return re.compile(
        rf"(?P<days>{days})-(?P<dh>{later})(?::(?P<dm>{later})(?::(?P<ds>{later}))?)?"
        rf"|(?P<a>{lead})(?::(?P<b>{later})(?::(?P<c>{later}))?)?"
    )


_DURATION = _duration_grammar("[0-9]+", "[0-9]+", "[0-9]+")
# The same grammar with each field's length bounded: for text a user typed, so that a huge
# number is refused as malformed rather than read.
_BOUNDED_DURATION = _duration_grammar("[0-9]{1,4}", "[0-9]{1,7}", "[0-9]{1,5}")


def slurm_duration_seconds(text: str, *, bounded: bool = True) -> int:
    """Seconds in a Slurm duration, with Slurm's own reading of each form.

    Accepts every spelling Slurm prints or reads: ``D-HH:MM:SS``, ``D-HH:MM``, ``D-HH``,
    ``HH:MM:SS``, ``MM:SS`` and ``M`` (minutes). Note the trap this follows from Slurm: in
    ``sbatch --time``, ``N`` means *N minutes* and ``A:B`` means *A minutes and B seconds*, not
    hours and minutes. ``bounded`` (the default, for text a user typed) refuses fields longer
    than Slurm could mean (days over 4 digits, a leading field over 7, any other over 5).
    Raises :class:`ValueError` for anything else, ``infinite``/``UNLIMITED`` included (see
    :func:`parse_slurm_duration`).
    """
    grammar = _BOUNDED_DURATION if bounded else _DURATION
    match = grammar.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a Slurm duration: {text!r}")
    part = {k: int(v) for k, v in match.groupdict().items() if v is not None}
    if "days" in part:
        days, hours = part["days"], part["dh"]
        minutes, seconds = part.get("dm", 0), part.get("ds", 0)
    elif "c" in part:
        days, hours, minutes, seconds = 0, part["a"], part["b"], part["c"]
    else:
        days, hours, minutes, seconds = 0, 0, part["a"], part.get("b", 0)
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def parse_slurm_duration(text: str) -> int | None:
    """Seconds in a duration Slurm printed, ``None`` for no limit (``infinite``, ``UNLIMITED``).

    Otherwise :func:`slurm_duration_seconds`, unbounded: what Slurm prints is read as it is.
    Raises :class:`ValueError` for anything else.
    """
    if text.strip().lower() in ("infinite", "unlimited"):
        return None
    return slurm_duration_seconds(text, bounded=False)


def format_slurm_duration(seconds: int) -> str:
    """``D-HH:MM:SS`` (or ``HH:MM:SS`` under a day), which sbatch ``--time`` reads unambiguously."""
    if seconds < 0:
        raise ValueError(f"negative duration: {seconds}")
    minutes, secs = divmod(int(seconds), 60)
    hours, mins = divmod(minutes, 60)
    days, hrs = divmod(hours, 24)
    if days:
        return f"{days}-{hrs:02d}:{mins:02d}:{secs:02d}"
    return f"{hrs:02d}:{mins:02d}:{secs:02d}"


def parse_slurm_time(text: str) -> datetime | None:
    """A Slurm timestamp (``2026-11-26T10:00:00``, the cluster's local time) as aware UTC.

    ``None`` for ``N/A``, ``Unknown``, ``None``, ``(null)`` and empty text. The hub and the
    Slurm commands share the machine's time zone, so the naive time is read as local.
    """
    value = text.strip()
    if value.lower() in ("", "n/a", "unknown", "none", "(null)"):
        return None
    return datetime.fromisoformat(value).astimezone(timezone.utc)
