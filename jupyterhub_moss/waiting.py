"""Waiting with a time limit without ever losing a cancellation.

Before Python 3.12, ``asyncio.wait_for`` returns the awaited result when the waiting task is
cancelled in the instant after that result arrived (CPython gh-86296): the cancellation is
dropped and the task runs on. JupyterHub stops a pending spawn by cancelling it and gives the
spawn one second to end, after which the stop fails with a 500 and the spawn goes on waiting
for a job nobody wants. A spawn must therefore never drop its cancellation, and its waits use
:func:`wait_at_most` instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["wait_at_most"]

T = TypeVar("T")


async def wait_at_most(awaitable: Awaitable[T], seconds: float) -> T:
    """Await ``awaitable`` for at most ``seconds`` and return its result.

    Past ``seconds`` it is cancelled, and ``asyncio.TimeoutError`` is raised once it has ended.
    A cancellation of the caller always propagates, even one that comes together with the
    result; the awaitable is then cancelled too, and has ended when the cancellation reaches
    the caller, as with ``asyncio.wait_for``.
    """
    task = asyncio.ensure_future(awaitable)
    try:
        # asyncio.wait never swallows its caller's cancellation, unlike wait_for before 3.12
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        await _cancel_and_wait(task)
        raise
    if not done:
        await _cancel_and_wait(task)
        raise asyncio.TimeoutError
    return task.result()


async def _cancel_and_wait(task: asyncio.Future) -> None:
    """Cancel ``task`` and wait until it has ended, whatever it ends with."""
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved: a task that failed while cancelled is not logged as lost
