"""Claims with leases: work is done by one owner at a time, and never lost with it."""

from __future__ import annotations

import asyncio

from responder.journal import (
    Event,
    FinishedDelivery,
    OutboxItem,
    OutboxMessage,
    OutboxUpdate,
    PendingDelivery,
)
from tests.contract.conftest import Backend
from tests.contract.helpers import attempt, deliver


async def test_a_delivery_claimed_by_one_owner_is_not_claimed_by_another(
        backend: Backend) -> None:
    a, b = await backend.open("a"), await backend.open("b")
    result = await deliver(a, "etl-1", "etl-2")
    (claimed,) = await a.claim_deliveries()
    assert claimed.id == result.delivery_id and len(claimed.new) == 2
    assert await b.claim_deliveries() == []
    assert await a.claim_deliveries() == []      # not twice to the same owner either


async def test_concurrent_claims_hand_each_delivery_to_exactly_one_owner(
        backend: Backend) -> None:
    a, b = await backend.open("a"), await backend.open("b")
    for i in range(20):
        await deliver(a, f"etl-{i}", group=f"g{i}")
    first, second = await asyncio.gather(a.claim_deliveries(limit=12, max_alerts=100),
                                         b.claim_deliveries(limit=12, max_alerts=100))
    ids = [d.id for d in first] + [d.id for d in second]
    assert len(ids) == len(set(ids))
    rest = await a.claim_deliveries(limit=50, max_alerts=100)
    assert sorted(ids + [d.id for d in rest]) == sorted({*ids, *(d.id for d in rest)})
    assert len(ids) + len(rest) == 20


async def test_an_expired_lease_hands_the_delivery_to_another_owner_and_the_first_cannot_finish(
        backend: Backend) -> None:
    a, b = await backend.open("a"), await backend.open("b")
    await deliver(a, "etl-1")
    (held,) = await a.claim_deliveries(lease=60)
    backend.now += 59
    assert await b.claim_deliveries() == []
    backend.now += 2
    (taken,) = await b.claim_deliveries()
    assert taken.id == held.id
    events = [Event(kind="alert", receipt_id=held.new[0].id, outcome="firing")]
    assert await a.finish_delivery(held.id, [(held.new[0].id, "done", {}, [])], events) == 0
    assert await a.events(kind="alert") == []                 # nothing of a's is written
    await b.finish_delivery(taken.id, [(taken.new[0].id, "done", {}, [])], events)
    assert len(await a.events(kind="alert")) == 1
    assert await a.pending_deliveries() == [] and await b.claim_deliveries() == []


async def test_a_released_delivery_is_claimable_at_once(backend: Backend) -> None:
    a, b = await backend.open("a"), await backend.open("b")
    await deliver(a, "etl-1")
    (held,) = await a.claim_deliveries()
    await a.release_deliveries([held.id])
    assert [d.id for d in await b.claim_deliveries()] == [held.id]


async def test_a_restart_takes_back_its_own_leases_and_only_its_own(backend: Backend) -> None:
    a, b = await backend.open("a"), await backend.open("b")
    await deliver(a, "etl-1", group="g1")
    await deliver(a, "etl-2", group="g2")
    (mine,) = await a.claim_deliveries(limit=1)
    (theirs,) = await b.claim_deliveries(limit=1)
    mine_attempt = await attempt(a, "fp-a")
    their_attempt = await attempt(a, "fp-b")
    assert await a.claim_attempt(mine_attempt.id)
    assert await b.claim_attempt(their_attempt.id)
    await a.close()
    again = await backend.open("a")              # a crashed and started again
    assert [d.id for d in await again.claim_deliveries()] == [mine.id]
    assert await again.claim_attempt(mine_attempt.id)
    assert not await again.claim_attempt(their_attempt.id)   # b's lease is b's
    assert theirs.id != mine.id


async def test_an_attempt_is_claimed_at_most_once_until_its_lease_expires(
        backend: Backend) -> None:
    a, b = await backend.open("a"), await backend.open("b")
    due = await attempt(a, due_at=backend.now)
    results = await asyncio.gather(a.claim_attempt(due.id, lease=300),
                                   b.claim_attempt(due.id, lease=300))
    assert sorted(results) == [False, True]
    assert await a.due_attempts(backend.now) == []
    backend.now += 301
    assert [x.id for x in await b.due_attempts(backend.now)] == [due.id]
    assert await b.claim_attempt(due.id)
    await b.update_attempt(due.id, state="done", outcome="success")
    backend.now += 1000
    assert await a.due_attempts(backend.now) == []
    assert not await a.claim_attempt(due.id)


async def test_an_attempt_not_yet_due_cannot_be_claimed(backend: Backend) -> None:
    a = await backend.open("a")
    later = await attempt(a, due_at=backend.now + 30)
    assert not await a.claim_attempt(later.id)
    assert await a.next_attempt_due() == backend.now + 30


async def test_a_transient_failure_schedules_the_attempt_again_with_its_try_count(
        backend: Backend) -> None:
    a, b = await backend.open("a"), await backend.open("b")
    due = await attempt(a)
    assert await a.claim_attempt(due.id)
    await a.retry_attempt(due.id, due_at=backend.now + 5, tries=2)
    (again,) = await a.attempts_for(due.instance)
    assert (again.state, again.due_at, again.context["_tries"]) == (
        "scheduled", backend.now + 5, 2)
    assert again.context["group_key"] == "g"
    backend.now += 5
    assert await b.claim_attempt(due.id)         # its lease ended with the retry


async def test_an_attempt_exists_once_per_instance_runbook_target_and_n(
        backend: Backend) -> None:
    a, b = await backend.open("a"), await backend.open("b")
    first = await attempt(a)
    assert await b.schedule_attempt(
        instance=first.instance, runbook=first.runbook, target=first.target, n=1,
        action="argo.retry", params={}, due_at=0.0, receipt_id=None, context={}) is None
    assert await b.attempt(first.instance, first.runbook, first.target, 1) == first
    assert await b.attempt(first.instance, first.runbook, first.target, 2) is None


async def test_open_escalations_are_markers_whose_alert_has_not_resolved(
        backend: Backend) -> None:
    a = await backend.open("a")
    result = await deliver(a, "etl-1", "etl-2")
    (delivery,) = await a.claim_deliveries()
    one, two = (r.instance for r in delivery.new)
    for instance in (one, two):
        await a.schedule_attempt(instance=instance, runbook="retry", target="escalation", n=0,
                                 action="notify", params={}, due_at=0.0,
                                 receipt_id=result.delivery_id, context={"group_key": "g"},
                                 state="done")
    assert [m.instance for m in await a.open_escalations("retry", other_than=one)] == [two]
    await a.finish_delivery(delivery.id, [], [])
    await deliver(a, "etl-2", status="resolved")
    assert await a.open_escalations("retry", other_than=one) == []


async def test_a_batch_of_deliveries_finishes_in_one_call_and_skips_what_another_owner_holds(
        backend: Backend) -> None:
    a, b = await backend.open("a"), await backend.open("b")
    for i in range(3):
        await deliver(a, f"etl-{i}", group=f"g{i}")
    first, second, third = await a.claim_deliveries(lease=60)
    backend.now += 61
    (taken,) = await b.claim_deliveries(limit=1)          # b now holds the first one
    assert taken.id == first.id

    def finished(d: PendingDelivery, dedup: str) -> FinishedDelivery:
        rid = d.new[0].id
        return FinishedDelivery(
            d.id, ((rid, "done", {"category": "Network"}, ["retry"]),),
            (Event(kind="alert", receipt_id=rid, outcome="firing"),),
            (OutboxMessage(channel="oncall", dedup=dedup, message={"body": {}}, fallback=None,
                           receipt_id=rid, event=Event(kind="notification", receipt_id=rid)),))

    assert await a.finish_deliveries(
        [finished(first, "m1"), finished(second, "m2"), finished(third, "m2")]) == [0, 1, 0]
    assert await a.finish_deliveries([]) == []
    alerts = await a.events(kind="alert")
    assert sorted(e["receipt_id"] for e in alerts) == sorted([second.new[0].id, third.new[0].id])
    assert sorted(e["outcome"] for e in await a.events(kind="notification")) == [
        "duplicate", "queued"]
    assert [d.id for d in await a.pending_deliveries()] == [first.id]
    assert [m.dedup for m in await a.due_outbox(backend.now)] == ["m2"]


async def test_a_message_finished_claimed_is_the_writers_to_send_until_its_lease_runs_out(
        backend: Backend) -> None:
    a, b = await backend.open("a"), await backend.open("b")
    await deliver(a, "etl-1")
    (d,) = await a.claim_deliveries()
    rid = d.new[0].id

    def message(dedup: str, claim: bool) -> OutboxMessage:
        return OutboxMessage(channel="console", dedup=dedup, message={"body": {"n": dedup}},
                             fallback=None, receipt_id=rid, claim=claim,
                             event=Event(kind="notification", receipt_id=rid))

    claimed: list[OutboxItem] = []
    assert await a.finish_deliveries([FinishedDelivery(
        d.id, ((rid, "done", {}, []),), (),
        (message("mine", True), message("theirs", False)))], claimed=claimed, lease=30) == [2]
    assert [(i.dedup, i.state, i.tries, i.message) for i in claimed] == [
        ("mine", "sending", 0, {"body": {"n": "mine"}})]
    # Nobody else sends it (nor the writer's own outbox loop) while the lease holds ...
    assert [m.dedup for m in await b.due_outbox(backend.now)] == ["theirs"]
    assert await b.claim_messages([claimed[0].id]) == []
    assert await a.pending_count() == 2
    # ... and a writer that died before recording the try leaves it to the outbox after.
    backend.now += 31
    assert sorted(m.dedup for m in await b.due_outbox(backend.now)) == ["mine", "theirs"]
    assert await b.claim_messages([claimed[0].id]) == [claimed[0].id]
    await b.update_outbox_many([OutboxUpdate(claimed[0].id, "sent", 1)])
    assert [m.dedup for m in await b.due_outbox(backend.now)] == ["theirs"]


async def test_claimed_work_still_counts_as_pending_until_it_is_finished(
        backend: Backend) -> None:
    a = await backend.open("a")
    await deliver(a, "etl-1")
    due = await attempt(a, due_at=backend.now)
    await a.enqueue(channel="c", dedup="k", message={"body": {}}, fallback=None, receipt_id=None)
    assert await a.pending_count() == 3
    (d,) = await a.claim_deliveries()
    assert await a.claim_attempt(due.id)
    (item,) = await a.due_outbox(backend.now)
    assert await a.claim_message(item.id)
    assert await a.pending_count() == 3
    await a.finish_delivery(d.id, [(d.new[0].id, "done", {}, [])], [])
    await a.update_attempt(due.id, state="done", outcome="success")
    await a.update_outbox(item.id, state="sent", tries=1)
    assert await a.pending_count() == 0
