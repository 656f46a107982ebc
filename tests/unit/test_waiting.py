"""``wait_at_most``: a time limit that never drops its caller's cancellation.

The case that matters is a cancellation arriving together with the result: before Python 3.12,
``asyncio.wait_for`` returns the result and the cancellation is lost (CPython gh-86296). A
spawn that lost JupyterHub's cancel made the user's stop a 500 (it was seen in the hub tier).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys

import pytest

from jupyterhub_moss.waiting import wait_at_most

pytestmark = pytest.mark.unit


def run(coroutine):
    """A fresh loop in a thread: the browser tier keeps one running in the main thread."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=30)


async def cancelled_as_the_result_arrives(wait) -> str:
    """Cancel a task waiting with ``wait`` in the step that hands it its result."""
    inner = asyncio.get_running_loop().create_future()

    async def waiting() -> str:
        return await wait(inner, 10)

    task = asyncio.ensure_future(waiting())
    for _ in range(3):  # the waiter is now parked on ``inner``
        await asyncio.sleep(0)
    inner.set_result("the result")
    task.cancel()
    try:
        return await task
    except asyncio.CancelledError:
        return "cancelled"


def test_a_cancellation_that_comes_with_the_result_is_kept():
    assert run(cancelled_as_the_result_arrives(wait_at_most)) == "cancelled"


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="wait_for keeps it from 3.12 on")
def test_the_same_cancellation_is_lost_by_asyncio_wait_for_here():
    # Why the helper exists: on this Python, the same sequence loses the cancellation.
    assert run(cancelled_as_the_result_arrives(asyncio.wait_for)) == "the result"


def test_the_result_in_time_is_returned():
    async def soon() -> int:
        await asyncio.sleep(0.01)
        return 42

    assert run(wait_at_most(soon(), 5)) == 42


def test_an_error_in_time_is_raised_as_it_is():
    async def failing() -> None:
        raise ValueError("its own error")

    with pytest.raises(ValueError, match="its own error"):
        run(wait_at_most(failing(), 5))


async def slow_with_cleanup(events: list[str]) -> None:
    """Sleeps a minute; cancelled, it takes a moment to clean up, then says so in ``events``."""
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        await asyncio.sleep(0.01)
        events.append("cleaned up")
        raise


def test_past_the_limit_the_awaitable_is_cancelled_and_has_ended_before_the_timeout():
    events: list[str] = []

    async def limited() -> None:
        try:
            await wait_at_most(slow_with_cleanup(events), 0.05)
        except asyncio.TimeoutError:
            events.append("timed out")

    run(limited())
    assert events == ["cleaned up", "timed out"]


def test_a_cancelled_caller_cancels_the_awaitable_and_waits_for_its_end():
    events: list[str] = []

    async def cancel_the_caller() -> None:
        caller = asyncio.ensure_future(wait_at_most(slow_with_cleanup(events), 30))
        await asyncio.sleep(0.05)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        events.append("caller cancelled")

    run(cancel_the_caller())
    assert events == ["cleaned up", "caller cancelled"]
