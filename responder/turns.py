"""Turns of the event loop on a budget, for long runs of work that never wait.

The pipeline working off a storm runs step after step (journal writes on SQLite return
at once): without a turn between them, a webhook arriving meanwhile, or a message in
flight to Slack, waits for the whole run; with a turn at every step, the storm pays an
event loop iteration (a poll of every socket) several times per alert. ``Turns.take``
gives the loop a turn when the last one was at least ``every`` seconds ago.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Turns:
    def __init__(self, every: float = 0.0005,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.every = every
        self.clock = clock
        self._last = 0.0

    async def take(self) -> None:
        """Let whatever else is ready run, unless it last could less than ``every`` ago."""
        if self.clock() - self._last < self.every:
            return
        await asyncio.sleep(0)
        self._last = self.clock()
