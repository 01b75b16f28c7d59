"""The scheduler on a fake clock and sleeper: what runs when, proved without sleeping.

A real journal (SQLite in tmp_path) holds the attempts; the backend is a recording stub
of the ``Backend`` protocol; time moves only when the test advances it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from responder.act.argo import ActionResult
from responder.act.attempts import HOLD_RECHECK, Attempts
from responder.act.breaker_store import BreakerStore
from responder.act.escalation import Escalations
from responder.act.scheduler import IDLE, Scheduler
from responder.act.transitions import Transitions
from responder.errors import TemporaryError
from responder.journal import Attempt, Event, Journal, SqliteJournal
from responder.metrics import Metrics
from tests.fakes.clock import FakeTime

CONTEXT = {"runbook": "rb", "retry": {"limit": 2, "duration": 30.0, "factor": 2.0,
                                      "max_duration": 300.0}}
PARAMS = {"namespace": "ns", "workflow": "etl"}


@dataclass
class Backend:
    """Records every call; ``errors`` are raised by the next calls, in order."""

    name: str = "stub"
    phase: str = "Failed"
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)

    async def get_workflow(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return {"status": {"phase": self.phase}}

    async def execute(self, kind: str, params: Mapping[str, Any]) -> ActionResult:
        self.calls.append((kind, dict(params)))
        if self.errors:
            raise self.errors.pop(0)
        return ActionResult("success", "retried")

    async def close(self) -> None:
        pass


@dataclass
class Rig:
    time: FakeTime
    journal: Journal
    backend: Backend
    scheduler: Scheduler
    wakeup: asyncio.Event
    paused: list[bool]

    async def schedule(self, due_in: float, *, n: int = 1, context: dict[str, Any] | None = None
                       ) -> None:
        await self.journal.schedule_attempt(
            instance="i1", runbook="rb", target="workflow:ns/etl", n=n, action="argo.retry",
            params=PARAMS, due_at=self.time.now + due_in, receipt_id=None,
            context=context or CONTEXT)

    async def outcomes(self) -> list[str]:
        return [e["outcome"] for e in reversed(await self.journal.events(kind="action"))]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    time = FakeTime()
    journal = SqliteJournal(tmp_path / "state.db", clock=time.clock)
    await journal.open()
    metrics = Metrics(CollectorRegistry())
    breakers = BreakerStore(journal, metrics, time.clock)
    backend = Backend()
    sent: list[dict[str, Any]] = []

    async def send(**message: Any) -> list[Event]:
        sent.append(message)
        return []

    escalations = Escalations(journal, metrics, send, lambda name: "log", time.clock)
    transitions = Transitions(journal, metrics, breakers, time.clock)
    attempts = Attempts(journal, metrics, backend, breakers, transitions, escalations,
                        clock=time.clock, can_read=True, random=lambda: 0.0)
    wakeup = asyncio.Event()
    paused = [False]

    async def is_paused(attempt: Attempt) -> bool:
        return paused[0]

    scheduler = Scheduler(attempts, breakers, clock=time.clock, sleep=time.sleep,
                          wakeup=wakeup, paused=is_paused)
    task = asyncio.create_task(scheduler.run())
    await time.asleep()
    yield Rig(time, journal, backend, scheduler, wakeup, paused)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await journal.close()


async def test_an_idle_scheduler_sleeps_the_longest_nap(rig: Rig) -> None:
    assert rig.time.naps == [IDLE]


async def test_an_attempt_runs_when_the_clock_reaches_it_and_not_before(rig: Rig) -> None:
    await rig.schedule(due_in=30.0)
    await rig.time.woken(rig.wakeup)
    assert rig.time.naps[-1] == IDLE          # due in 30 s: it naps and looks again
    for _ in range(5):
        await rig.time.advance(5.0)
    assert rig.backend.calls == []           # 25 s later: nothing ran
    await rig.time.advance(5.0)
    assert rig.backend.calls == [("argo.retry", PARAMS)]
    assert await rig.outcomes() == ["success", "scheduled"]   # attempt 2 chained


async def test_a_chained_attempt_waits_its_backoff_then_runs_if_still_failing(rig: Rig) -> None:
    await rig.schedule(due_in=0.0)
    await rig.time.woken(rig.wakeup)
    (_, attempt2) = await rig.journal.attempts_for("i1")
    assert attempt2.due_at - rig.time.now == 60.0   # duration * factor
    await rig.time.advance(59.0)
    assert len(rig.backend.calls) == 1
    await rig.time.advance(1.0)
    assert len(rig.backend.calls) == 2


async def test_a_workflow_that_recovered_meanwhile_is_not_retried_again(rig: Rig) -> None:
    await rig.schedule(due_in=0.0, n=2)
    rig.backend.phase = "Succeeded"
    await rig.time.woken(rig.wakeup)
    assert rig.backend.calls == []
    assert await rig.outcomes() == ["recovered"]


async def test_a_transient_error_comes_back_after_the_transient_backoff(rig: Rig) -> None:
    rig.backend.errors = [TemporaryError("argo server: 503"), TemporaryError("argo server: 503")]
    await rig.schedule(due_in=0.0)
    await rig.time.woken(rig.wakeup)
    assert len(rig.backend.calls) == 1
    await rig.time.advance(0.5)               # first transient wait
    assert len(rig.backend.calls) == 2
    await rig.time.advance(0.9)
    assert len(rig.backend.calls) == 2        # the second waits 1 s
    await rig.time.advance(0.1)
    assert len(rig.backend.calls) == 3
    assert await rig.outcomes() == ["retrying", "retrying", "success", "scheduled"]


async def test_a_paused_attempt_is_held_once_and_runs_after_resume(rig: Rig) -> None:
    rig.paused[0] = True
    await rig.schedule(due_in=0.0)
    await rig.time.woken(rig.wakeup)
    for _ in range(3):
        await rig.time.advance(HOLD_RECHECK)
    assert rig.backend.calls == []
    assert await rig.outcomes() == ["paused"]   # recorded once, however long it is held
    rig.paused[0] = False
    await rig.time.advance(HOLD_RECHECK)
    assert rig.backend.calls == [("argo.retry", PARAMS)]


async def test_a_rate_limited_target_waits_for_its_window(rig: Rig) -> None:
    limited = {**CONTEXT, "rate_limit": {"max_actions": 1, "window": 60.0}}
    await rig.schedule(due_in=0.0, context=limited)
    await rig.journal.schedule_attempt(
        instance="i2", runbook="rb", target="workflow:ns/etl", n=1, action="argo.retry",
        params=PARAMS, due_at=rig.time.now, receipt_id=None, context=limited)
    await rig.time.woken(rig.wakeup)
    assert len(rig.backend.calls) == 1
    assert "rate_limited" in await rig.outcomes()
    await rig.time.advance(59.0)
    assert len(rig.backend.calls) == 1
    await rig.time.advance(1.0)
    assert len(rig.backend.calls) == 2


async def test_an_attempt_due_after_the_current_nap_wakes_nobody_and_one_due_sooner_does(
        rig: Rig) -> None:
    # The scheduler sleeps IDLE (5 s) at most: an attempt due in 30 s is seen by a pass it
    # makes anyway, so scheduling it costs no extra pass; one due now cannot wait.
    rig.scheduler.due(rig.time.now + 30.0)
    assert not rig.wakeup.is_set()
    rig.scheduler.due(rig.time.now + IDLE - 1.0)
    assert rig.wakeup.is_set()
    await rig.schedule(due_in=0.0)
    await rig.time.woken(rig.wakeup)
    assert rig.backend.calls == [("argo.retry", PARAMS)]
