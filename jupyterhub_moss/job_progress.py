"""The progress events of one spawn, as JupyterHub's progress stream shows them.

Events are plain text (``message``, never ``html_message``: JupyterHub inserts that as HTML).
Every reader gets every event from the first, so a page opened late, or reloaded, still shows
the job id and the queue's reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

__all__ = ["JobProgress"]


class JobProgress:
    """The progress events of one spawn, replayed from the start for every reader."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.finished = False
        self._changed = asyncio.Event()

    def add(self, message: str, progress: int | None = None) -> None:
        """Add an event; ``progress`` is JupyterHub's percentage (its bar), if any."""
        event: dict[str, Any] = {"message": message}
        if progress is not None:
            event["progress"] = progress
        self.events.append(event)
        self._wake()

    @property
    def last_message(self) -> str | None:
        return self.events[-1]["message"] if self.events else None

    def finish(self) -> None:
        """No more events: every reader stops after the last one."""
        self.finished = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def follow(self) -> AsyncIterator[dict[str, Any]]:
        """Every event from the first, then each new one as it comes, until :meth:`finish`."""
        seen = 0
        while True:
            waiter = self._changed
            while seen < len(self.events):
                yield dict(self.events[seen])
                seen += 1
            if self.finished:
                return
            await waiter.wait()
