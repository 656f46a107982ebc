"""``log_safe(text)``: user- or job-controlled text made fit for one line of the hub's log.

Usernames, server names, unknown option names, a job's output lines, Slurm's error text and
partition names all reach the log. A newline or carriage return in one of them could forge a
log line that looks like the hub's own, and an escape sequence could rewrite a terminal showing
the log. Every such value goes through :func:`log_safe` before it is logged.
"""

from __future__ import annotations

import re

__all__ = ["MAX_LOGGED_CHARS", "log_safe"]

#: Longest piece of one value kept in a log line; the rest is counted, not shown.
MAX_LOGGED_CHARS = 300

# C0 and C1 controls, DEL, Unicode line/paragraph separators and the bidirectional overrides
# (which reorder what a reader sees).
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def log_safe(value: object, limit: int = MAX_LOGGED_CHARS) -> str:
    """``value`` as text on one line: controls escaped as ``\\n``/``\\x1b``, at most ``limit``
    characters of it kept (then ``…(+N chars)``)."""
    text = value if isinstance(value, str) else str(value)
    extra = ""
    if len(text) > limit:
        extra = f"…(+{len(text) - limit} chars)"
        text = text[:limit]
    return _UNSAFE.sub(_escape, text) + extra
