"""Retention deletes finished work older than the cut-off, and never pending work."""

from __future__ import annotations

from responder.journal import Event, Journal
from tests.contract.conftest import Backend
from tests.contract.helpers import attempt, deliver


async def prune_all(journal: Journal, before: float) -> int:
    total = 0
    while deleted := await journal.prune(before, batch=2):
        total += deleted
    return total


async def test_finished_alerts_their_events_and_sent_messages_go_pending_work_stays(
        backend: Backend) -> None:
    a = await backend.open("a")
    old = await deliver(a, "done-1", "done-2", group="old")
    waiting = await deliver(a, "waiting", group="retrying")     # its retry is due next week
    (d1, d2) = await a.claim_deliveries(limit=2, max_alerts=10)
    assert (d1.id, d2.id) == (old.delivery_id, waiting.delivery_id)
    for d in (d1, d2):
        await a.finish_delivery(d.id, [(r.id, "done", {}, []) for r in d.new],
                                [Event(kind="alert", receipt_id=r.id, instance=r.instance)
                                 for r in d.new])
    await attempt(a, d2.new[0].instance, due_at=backend.now + 7 * 86400)
    await a.enqueue(channel="c", dedup="sent", message={"body": {}}, fallback=None,
                    receipt_id=d1.new[0].id)
    await a.enqueue(channel="c", dedup="held", message={"body": {}}, fallback=None,
                    receipt_id=d1.new[0].id, next_at=backend.now + 86400)
    (sent,) = await a.due_outbox(backend.now)
    await a.update_outbox(sent.id, state="sent", tries=1)
    await a.add_events([Event(kind="rejected", outcome="invalid")])
    backend.now += 3600
    unprocessed = await deliver(a, "new", group="new")   # pending, and younger anyway

    assert await prune_all(a, before=backend.now - 60) > 0
    left = await a.recent(100)
    assert {x["instance"] for x in left["alerts"]} == {d2.new[0].instance,
                                                       *(r.instance for r in (
                                                           await a.pending_deliveries())[0].new)}
    assert left["since"] == backend.now - 60
    assert [e["kind"] for e in await a.events()] == ["alert"]       # the waiting alert's
    assert [i.dedup for i in await a.due_outbox(backend.now + 86400)] == ["held"]
    assert len(await a.attempts_for(d2.new[0].instance)) == 1
    assert [d.id for d in await a.pending_deliveries()] == [unprocessed.delivery_id]
    assert await a.prune(backend.now - 60) == 0


async def test_nothing_younger_than_the_cut_off_is_deleted(backend: Backend) -> None:
    a = await backend.open("a")
    await deliver(a, "x")
    (d,) = await a.claim_deliveries()
    await a.finish_delivery(d.id, [(d.new[0].id, "done", {}, [])],
                            [Event(kind="alert", receipt_id=d.new[0].id)])
    assert await a.prune(backend.now - 1) == 0
    assert len((await a.recent(10))["alerts"]) == 1
    assert (await a.recent(10))["since"] is None


async def test_an_attempt_outlives_retention_while_its_alert_keeps_arriving(
        backend: Backend) -> None:
    a = await backend.open("a")
    await deliver(a, "flapping")
    (d,) = await a.claim_deliveries()
    await a.finish_delivery(d.id, [(d.new[0].id, "done", {}, [])], [])
    done = await attempt(a, d.new[0].instance)
    await a.update_attempt(done.id, state="done", outcome="success")
    backend.now += 86400
    await deliver(a, "flapping")                 # Alertmanager re-sends: the receipt is fresh
    await prune_all(a, before=backend.now - 3600)
    assert [x.id for x in await a.attempts_for(d.new[0].instance)] == [done.id]


async def test_decided_approvals_and_lifted_or_expired_pauses_go_open_and_active_ones_stay(
        backend: Backend) -> None:
    a = await backend.open("a")
    now = backend.clock()
    decided, waiting = [await a.ask_approval(
        instance=i, runbook="rb", receipt_id=None, attempts=[], summary={},
        timeout_at=now + 7 * 86400, on_timeout="escalate") for i in ("decided", "waiting")]
    assert decided is not None and waiting is not None
    assert await a.decide_approval(decided.id, decision="rejected", run=False, by="alice",
                                   comment=None, events=lambda x: []) is not None
    lifted = await a.add_pause(matchers=[], reason=None, by="bob", until=None,
                               events=lambda p: [])
    await a.lift_pauses(by="bob", pause_id=lifted.id, events=lambda p: [])
    await a.add_pause(matchers=[], reason="expired", by="bob", until=now + 60,
                      events=lambda p: [])
    active = await a.add_pause(matchers=['namespace="ci"'], reason="until lifted", by="bob",
                               until=None, events=lambda p: [])
    backend.now += 3600
    assert await prune_all(a, before=backend.now - 60) == 3
    assert await a.approval(decided.id) is None
    assert [x.id for x in await a.approvals()] == [waiting.id]
    assert await a.active_pauses(backend.now) == [active]
