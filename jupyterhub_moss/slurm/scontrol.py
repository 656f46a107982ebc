"""``scontrol show ... -o`` output: one record per line, as ``Key=value`` fields.

Reservations (:mod:`.reservations`) and job records both read their lines with
:func:`parse_scontrol_fields`.
"""

from __future__ import annotations

import re

__all__ = ["parse_scontrol_fields"]

# A key=value field of scontrol's one-line output; values may hold spaces (Comment=...), so a
# value runs until the next " Key=". Keys may hold ":" and "/" (AllocNode:Sid=, CPUs/Task=).
_KEY = r"[A-Za-z][A-Za-z0-9_:/]*"
_FIELD = re.compile(rf"(?:^|\s)({_KEY})=(.*?)(?=\s+{_KEY}=|\s*$)")


def parse_scontrol_fields(line: str) -> dict[str, str]:
    """``Key=value`` pairs of one ``scontrol show ... -o`` line."""
    return {match.group(1): match.group(2).strip() for match in _FIELD.finditer(line.strip())}
