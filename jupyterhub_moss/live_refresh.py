"""How the live parts of our pages refresh: one htmx trigger for the availability table, "Your
sessions" and the admins' jobs table.

They poll only while the browser tab is visible (a hidden tab costs the hub nothing) and refresh
at once when it becomes visible again; each may add triggers of its own.
"""

from __future__ import annotations

__all__ = ["visible_poll_trigger"]

_VISIBLE = "[document.visibilityState === 'visible']"


def visible_poll_trigger(seconds: int, *also: str) -> str:
    """``hx-trigger``: every ``seconds`` while visible, on becoming visible, and on ``also``."""
    return ", ".join(
        [f"every {seconds}s {_VISIBLE}", f"visibilitychange{_VISIBLE} from:document", *also]
    )
