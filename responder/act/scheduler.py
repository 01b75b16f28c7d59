"""The scheduler: runs due attempts through the gate and the backend, and sleeps between.

Each pass moves breakers whose cooldown is over to half-open, takes the due attempts from
the journal, and for each asks the gate (``act/gate.py``) until it has a verdict,
fetching the facts it asks for. ``Run`` calls the backend; what comes back chains the
next attempt of the budget (``act/attempts.py``). Between passes it sleeps until the
next attempt or half-open is due, or until woken (a new attempt, a resume).

Time is passed in: ``clock()`` says what time it is and ``sleep(delay, wakeup)`` waits
``delay`` seconds or until ``wakeup`` is set (kopf's model), so a test drives the
scheduler with a fake clock and a sleeper that returns when the test says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from responder.act import gate as g
from responder.act.attempts import Attempts
from responder.act.breaker_store import BreakerStore
from responder.act.context import action_event, gated
from responder.journal import Attempt, Event, JournalUnavailable
from responder.journal.fullness import failure_level

log = logging.getLogger("responder.act")
BATCH = 50
IDLE = 5.0   # the longest sleep: a pass re-reads the journal at least this often


class Sleep(Protocol):
    async def __call__(self, delay: float, wakeup: asyncio.Event) -> None: ...


async def sleep(delay: float, wakeup: asyncio.Event) -> None:
    """Wait ``delay`` seconds or until ``wakeup`` is set, whichever comes first."""
    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
    # races with the event, and then shutdown waits for ever.
    try:
        async with asyncio.timeout(max(0.0, delay)):
            await wakeup.wait()
    except TimeoutError:
        pass


class Scheduler:
    def __init__(self, attempts: Attempts, breakers: BreakerStore, *,
                 clock: Callable[[], float], sleep: Sleep, wakeup: asyncio.Event,
                 paused: Callable[[Attempt], Awaitable[bool]]) -> None:
        self.attempts = attempts
        self.journal = attempts.journal
        self.breakers = breakers
        self.clock = clock
        self.sleep = sleep
        self.wakeup = wakeup
        self.paused = paused
        self.wakes_at: float | None = None   # when the current sleep ends; None: awake

    def due(self, at: float) -> None:
        """An attempt was scheduled for ``at``: wake the scheduler unless its sleep ends by
        then anyway (an alert storm scheduling retries 30s out costs it no pass each)."""
        wakes_at = self.wakes_at
        if wakes_at is None or at < wakes_at:
            self.wakeup.set()

    async def run(self) -> None:
        while True:
            self.wakes_at = None
            self.wakeup.clear()
            try:
                due = await self.run_due()
                next_due = await self.journal.next_attempt_due()
            except JournalUnavailable as exc:
                log.log(failure_level(exc), "journal unavailable: %s", exc)
                await self.sleep(1.0, asyncio.Event())
                continue
            if due == BATCH:
                continue
            wake = [t for t in (next_due, self.breakers.next_half_open_at()) if t is not None]
            delay = min(IDLE, max(0.0, min(wake) - self.clock())) if wake else IDLE
            self.wakes_at = self.clock() + delay
            await self.sleep(delay, self.wakeup)

    async def run_due(self) -> int:
        """One pass: half-open what is due, run every due attempt; how many were due."""
        for key in await self.breakers.tick():
            log.info("breaker %s half-open", key)
        due = await self.journal.due_attempts(self.clock(), limit=BATCH)
        for attempt in due:
            await self.execute(attempt)
        return len(due)

    async def execute(self, attempt: Attempt) -> None:
        journal = self.journal
        if not await journal.claim_attempt(attempt.id):
            return
        try:
            events = await self._execute(attempt)
        except JournalUnavailable:
            raise
        except Exception as exc:
            log.exception("attempt %d failed unexpectedly", attempt.id)
            await journal.update_attempt(attempt.id, state="failed", outcome="failed",
                                         detail=f"internal error: {type(exc).__name__}")
            events = [action_event(attempt, "failed",
                                          {"error": f"internal error: {exc}"})]
        await journal.add_events(events)

    async def _execute(self, a: Attempt) -> list[Event]:
        events: list[Event] = []
        facts = g.Facts(self.clock(), paused=await self.paused(a))
        verdict = g.gate(gated(a), facts)
        while isinstance(verdict, g.Need):
            value, more = await self.attempts.fact(a, verdict.fact)
            events.extend(more)
            facts = facts.learn(**{verdict.fact: value})
            verdict = g.gate(gated(a), facts)
        return events + await self.attempts.apply(a, verdict, facts)
