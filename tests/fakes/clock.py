"""Time that moves only when a test says so: a clock and a kopf-style sleeper.

``sleep(delay, wakeup)`` returns once the clock has moved ``delay`` past the moment it
was called, or ``wakeup`` is set. ``advance(seconds)`` moves the clock and returns once
the sleeper has gone back to sleep, i.e. once the code under test has done everything
the new time made due: a test that then sees nothing happened has proved it without
sleeping.
"""

from __future__ import annotations

import asyncio

REAL_TIMEOUT = 10.0   # a test waits this long (real seconds) for the code under test


class FakeTime:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now
        self.naps: list[float] = []      # every delay the code under test slept for
        self.sleeping = 0
        self._moved = asyncio.Event()
        self._napped = asyncio.Event()
        self._generation = 0   # advances of the clock so far
        self._seen = -1        # the generation the sleeper last went (back) to sleep in

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float, wakeup: asyncio.Event) -> None:
        deadline = self.now + delay
        self.naps.append(delay)
        self.sleeping += 1
        try:
            while self.now < deadline and not wakeup.is_set():
                self._seen = self._generation
                self._napped.set()
                moved = asyncio.ensure_future(self._moved.wait())
                woken = asyncio.ensure_future(wakeup.wait())
                try:
                    await asyncio.wait({moved, woken}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    moved.cancel()
                    woken.cancel()
        finally:
            self.sleeping -= 1

    async def asleep(self, naps: int = 1) -> None:
        """Wait until the sleeper has been called ``naps`` times in all and sleeps now,
        having seen the clock's latest move."""
        async with asyncio.timeout(REAL_TIMEOUT):
            while (len(self.naps) < naps or not self.sleeping
                   or self._seen != self._generation):
                self._napped.clear()
                await self._napped.wait()

    async def advance(self, seconds: float) -> None:
        """Move the clock; return once the sleeper has done what became due and sleeps."""
        self.now += seconds
        self._generation += 1
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()
        await self.asleep(len(self.naps))

    async def woken(self, wakeup: asyncio.Event) -> None:
        """Set ``wakeup`` and return once the sleeper has been called again and sleeps."""
        before = len(self.naps)
        wakeup.set()
        await self.asleep(before + 1)
