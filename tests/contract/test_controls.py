"""Pauses and approvals are journal state: every owner sees one copy, and of any number of
owners deciding one approval at once exactly one decision is taken."""

from __future__ import annotations

import asyncio

from responder.journal import Event
from tests.contract.conftest import Backend


async def test_a_pause_made_by_one_owner_holds_for_all_until_lifted_or_expired(
        backend: Backend) -> None:
    a, b = await backend.open("a"), await backend.open("b")
    now = backend.clock()
    scoped = await a.add_pause(matchers=['namespace="ci"'], reason="upgrade", by="alice",
                               until=None, events=lambda p: [Event(kind="pause")])
    await a.add_pause(matchers=[], reason=None, by="bob", until=now + 60,
                      events=lambda p: [])
    assert [p.matchers for p in await b.active_pauses(now)] == [('namespace="ci"',), ()]
    assert await b.active_pauses(now + 61) == [scoped]
    (lifted,) = await b.lift_pauses(by="carol", pause_id=scoped.id, events=lambda p: [])
    assert lifted.id == scoped.id
    assert await a.lift_pauses(by="dave", pause_id=scoped.id, events=lambda p: []) == []
    assert [p.by for p in await a.active_pauses(now)] == ["bob"]
    assert len(await a.events(kind="pause")) == 1


async def test_one_approval_decided_by_many_owners_at_once_is_decided_once(
        backend: Backend) -> None:
    a, b, c = await backend.open("a"), await backend.open("b"), await backend.open("c")
    now = backend.clock()
    first = await a.schedule_attempt(instance="i", runbook="rb", target="wf", n=1,
                                     action="argo.retry", params={}, due_at=now,
                                     receipt_id=None, context={}, state="approval")
    assert first is not None
    asked = await a.ask_approval(instance="i", runbook="rb", receipt_id=None,
                                 attempts=[first.id], summary={"actions": []},
                                 timeout_at=now + 900, on_timeout="escalate")
    assert asked is not None
    assert await b.ask_approval(instance="i", runbook="rb", receipt_id=None, attempts=[],
                                summary={}, timeout_at=now, on_timeout="proceed") is None
    decided = await asyncio.gather(*(
        j.decide_approval(asked.id, decision="approved", run=True, by=j.owner, comment=None,
                          events=lambda x: [Event(kind="approval", outcome="approved")])
        for j in (a, b, c, a, b, c)))
    winners = [d for d in decided if d is not None]
    assert len(winners) == 1
    assert (await c.approval(asked.id)).decided_by == winners[0].decided_by  # type: ignore[union-attr]
    assert len(await c.events(kind="approval")) == 1
    assert (await c.attempt_by_id(first.id)).state == "scheduled"  # type: ignore[union-attr]
    assert await b.approvals() == []


async def test_cancelling_the_last_waiting_attempt_closes_its_approval(backend: Backend) -> None:
    a = await backend.open("a")
    now = backend.clock()
    attempt = await a.schedule_attempt(instance="i", runbook="rb", target="wf", n=1,
                                       action="argo.retry", params={}, due_at=now,
                                       receipt_id=None, context={}, state="approval")
    assert attempt is not None
    asked = await a.ask_approval(instance="i", runbook="rb", receipt_id=None,
                                 attempts=[attempt.id], summary={}, timeout_at=now + 1,
                                 on_timeout="proceed")
    assert asked is not None and await a.expired_approvals(now + 2) == [asked]
    assert [x.id for x in await a.attempts_in(["approval"])] == [attempt.id]
    cancelled = await a.cancel_attempt(attempt.id, by="bob", events=lambda x: [])
    assert cancelled is not None and cancelled.state == "cancelled"
    assert await a.cancel_attempt(attempt.id, by="bob", events=lambda x: []) is None
    assert (await a.approval(asked.id)).decision == "cancelled"  # type: ignore[union-attr]
    assert await a.next_approval_timeout() is None
