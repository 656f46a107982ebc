"""The scheduling every hub-wide Slurm view shares: single flight, backoff, idling, close, loops.

:class:`Counter` is the smallest refresher: it reads a number from an injected source. Where
time matters, a :class:`FakeTime` clock moves only when the refresher sleeps, so the waits it
chooses are seen exactly and nothing really waits.
"""

from __future__ import annotations

import asyncio

import pytest

from jupyterhub_moss.slurm.refresher import MAX_BACKOFF_FACTOR, BackgroundRefresher

pytestmark = pytest.mark.unit


class Source:
    """A read that counts its calls, fails while ``failures`` is positive, and can be held."""

    def __init__(self) -> None:
        self.calls = 0
        self.failures = 0
        self.gate: asyncio.Event | None = None  # when set, each read waits for it
        self.entered = asyncio.Event()
        self.cancelled = 0

    async def __call__(self) -> int:
        self.calls += 1
        self.entered.set()
        try:
            if self.gate is not None:
                await self.gate.wait()
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError(f"read {self.calls} failed")
        return self.calls


class FakeTime:
    """A clock that moves only when the refresher sleeps; records every wait.

    With ``hold`` set to an unset event, a sleep waits for it before it ends, so that a test can
    act while the refresher sleeps.
    """

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []
        self.hold: asyncio.Event | None = None

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        end = self.now + seconds
        if self.hold is not None:
            await self.hold.wait()
        self.now = max(self.now, end)
        await asyncio.sleep(0)


class Counter(BackgroundRefresher[int]):
    """Keeps the latest number its source read; ``get()`` is a reader, as a view's would be."""

    def __init__(self, source: Source, **kwargs) -> None:
        kwargs.setdefault("min_interval", 0.0)
        super().__init__(kwargs.pop("interval", 60.0), **kwargs)
        self.source = source
        self.value: int | None = None

    async def _read(self) -> int:
        return await self.source()

    def _apply(self, answer: int) -> None:
        self.value = answer

    async def get(self) -> int | None:
        self._asked()
        self._keep_refreshing()
        await self._refresh_shared()
        return self.value

    @property
    def background(self) -> asyncio.Task | None:
        return self._background


async def settle(task: asyncio.Task | None) -> None:
    """Let a background loop on fake time run until it goes idle."""
    assert task is not None
    await asyncio.wait_for(asyncio.shield(task), timeout=2)


# -- single flight ------------------------------------------------------------------------------


async def test_fifty_concurrent_readers_share_one_read():
    source = Source()
    source.gate = asyncio.Event()
    counter = Counter(source)
    readers = [asyncio.ensure_future(counter.get()) for _ in range(50)]
    await source.entered.wait()
    await asyncio.sleep(0.01)
    assert source.calls == 1  # every other reader joined the read in flight
    source.gate.set()
    assert await asyncio.wait_for(asyncio.gather(*readers), timeout=1) == [1] * 50
    assert counter.refresh_count == 1
    await counter.close()


async def test_a_cancelled_reader_does_not_cancel_the_read_for_the_others():
    source = Source()
    source.gate = asyncio.Event()
    counter = Counter(source)
    impatient = asyncio.ensure_future(counter.get())
    patient = asyncio.ensure_future(counter.get())
    await source.entered.wait()
    impatient.cancel()
    await asyncio.sleep(0.01)
    source.gate.set()
    assert await asyncio.wait_for(patient, timeout=1) == 1
    assert impatient.cancelled()
    assert source.cancelled == 0 and source.calls == 1
    await counter.close()


async def test_a_failed_read_is_kept_as_last_error_and_never_raised_to_readers():
    source = Source()
    counter = Counter(source)
    assert await counter.get() == 1
    source.failures = 1
    assert await counter.get() == 1  # still the last good value
    assert counter.last_error == "read 2 failed"
    assert await counter.get() == 3
    assert counter.last_error is None
    await counter.close()


# -- backoff and idling, on fake time ----------------------------------------------------------


async def test_backoff_doubles_up_to_the_cap_and_resets_on_success():
    time, source = FakeTime(), Source()
    source.failures = 6
    counter = Counter(source, interval=10.0, idle_after=500.0, clock=time.clock, sleep=time.sleep)
    await counter.get()  # the first of six failures
    await settle(counter.background)
    cap = 10.0 * MAX_BACKOFF_FACTOR
    assert MAX_BACKOFF_FACTOR == 4
    # after failures 1..6: one interval, then doubling to the cap; after the success: one again
    assert time.waits[:8] == [10.0, 20.0, 40.0, cap, cap, cap, 10.0, 10.0]
    assert counter.last_error is None and counter.value == source.calls  # the last read succeeded


async def test_goes_idle_when_nobody_asks_and_wakes_on_the_next_request():
    time, source = FakeTime(), Source()
    counter = Counter(source, interval=10.0, idle_after=30.0, clock=time.clock, sleep=time.sleep)
    await counter.get()
    await settle(counter.background)
    # asked at t=0: refreshed at 0, 10, 20 and 30; at 40 nobody asked for more than 30 s
    assert source.calls == 4
    assert time.waits == [10.0] * 4
    assert counter.background.done()
    time.now += 1000.0  # a long quiet time: nothing runs at all
    await asyncio.sleep(0.01)
    assert source.calls == 4
    assert await counter.get() == 5  # the next reader reads at once and wakes the loop
    assert not counter.background.done()
    await settle(counter.background)
    assert source.calls == 8  # and the loop ran again for idle_after
    await counter.close()


async def test_a_refresh_forced_meanwhile_restarts_the_interval():
    time, source = FakeTime(), Source()
    time.hold = asyncio.Event()
    counter = Counter(source, interval=10.0, idle_after=25.0, clock=time.clock, sleep=time.sleep)
    start = time.now
    await counter.get()  # a read at 0, then the loop sleeps until 10
    while not time.waits:
        await asyncio.sleep(0)
    time.now = start + 5.0
    await counter.get()  # at 5 a reader forces a read while the loop sleeps
    time.hold.set()
    await settle(counter.background)
    # the loop wakes at 10 and waits until 15 rather than reading again at once: reads at 0, 5,
    # 15 and 25; at 35 nobody asked for 30 s (more than idle_after)
    assert source.calls == 4
    assert time.waits == [10.0, 5.0, 10.0, 10.0]


# -- close --------------------------------------------------------------------------------------


async def test_close_cancels_the_loop_and_the_read_in_flight():
    source = Source()
    source.gate = asyncio.Event()  # never set: the read would wait forever
    counter = Counter(source, interval=0.05)
    reader = asyncio.ensure_future(counter.get())
    await source.entered.wait()
    loop_task = counter.background
    assert loop_task is not None and not loop_task.done()
    await asyncio.wait_for(counter.close(), timeout=1)
    assert source.cancelled == 1
    assert loop_task.cancelled()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(reader, timeout=1)
    calls = source.calls
    await asyncio.sleep(0.15)  # three intervals: a closed loop reads nothing more
    assert source.calls == calls
    # closing is not the end: a new request starts afresh
    source.gate = None
    assert await asyncio.wait_for(counter.get(), timeout=1) == calls + 1
    await counter.close()


async def test_close_with_nothing_running_is_harmless():
    counter = Counter(Source())
    await counter.close()
    await counter.close()
    assert counter.background is None


# -- event loops --------------------------------------------------------------------------------


def test_a_new_event_loop_forgets_the_old_loops_tasks():
    source = Source()
    counter = Counter(source)
    old_loop = asyncio.new_event_loop()
    try:

        async def start_a_read_that_never_ends() -> asyncio.Task:
            source.gate = asyncio.Event()
            reader = asyncio.ensure_future(counter.get())
            await source.entered.wait()
            return reader

        stuck = old_loop.run_until_complete(start_a_read_that_never_ends())
        assert not stuck.done()  # the old loop stops with this read still in flight

        async def in_a_new_loop() -> tuple[int | None, bool]:
            source.gate = None
            value = await asyncio.wait_for(counter.get(), timeout=1)
            background = counter.background
            on_this_loop = background is not None and background.get_loop() is (
                asyncio.get_running_loop()
            )
            await counter.close()
            return value, on_this_loop

        value, on_this_loop = asyncio.run(in_a_new_loop())
        assert value == 2  # a read of its own, not the old loop's
        assert on_this_loop
    finally:
        for task in asyncio.all_tasks(old_loop):
            task.cancel()
        old_loop.run_until_complete(asyncio.sleep(0.01))
        old_loop.close()
