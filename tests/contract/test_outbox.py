"""The outbox: a message is queued once per dedup key and sent at most once per claim."""

from __future__ import annotations

import asyncio

from responder.journal import Event, OutboxMessage
from tests.contract.conftest import Backend
from tests.contract.helpers import deliver


async def test_a_message_is_queued_once_per_dedup_key(backend: Backend) -> None:
    a, b = await backend.open("a"), await backend.open("b")
    args = dict(channel="oncall", dedup="k", message={"body": {"text": "x"}, "type": "slack"},
                fallback=None, receipt_id=None)
    assert sorted(await asyncio.gather(a.enqueue(**args), b.enqueue(**args))) == [  # type: ignore[arg-type]
        False, True]
    (item,) = await a.due_outbox(backend.now)
    assert (item.channel, item.message, item.tries, item.state) == (
        "oncall", {"body": {"text": "x"}, "type": "slack"}, 0, "pending")


async def test_a_message_is_claimed_by_one_owner_and_sent_once(backend: Backend) -> None:
    a, b = await backend.open("a"), await backend.open("b")
    await a.enqueue(channel="c", dedup="k", message={"body": {}}, fallback=None, receipt_id=None)
    (item,) = await b.due_outbox(backend.now)
    assert sorted(await asyncio.gather(a.claim_message(item.id), b.claim_message(item.id))) == [
        False, True]
    assert await a.due_outbox(backend.now) == []
    await b.update_outbox(item.id, state="sent", tries=1,
                          events=[Event(kind="notification", outcome="sent")])
    backend.now += 3600
    assert await a.due_outbox(backend.now) == [] and await a.next_outbox_due() is None
    assert not await a.claim_message(item.id)


async def test_a_message_whose_sender_died_is_sent_by_another_owner_after_the_lease(
        backend: Backend) -> None:
    a, b = await backend.open("a"), await backend.open("b")
    await a.enqueue(channel="c", dedup="k", message={"body": {}}, fallback=None, receipt_id=None)
    (item,) = await a.due_outbox(backend.now)
    assert await a.claim_message(item.id, lease=120)
    assert await b.next_outbox_due() == backend.now + 120
    backend.now += 121
    assert [i.id for i in await b.due_outbox(backend.now)] == [item.id]
    assert await b.claim_message(item.id)


async def test_a_retry_later_ends_the_claim_and_waits_its_time(backend: Backend) -> None:
    a, b = await backend.open("a"), await backend.open("b")
    await a.enqueue(channel="c", dedup="k", message={"body": {}}, fallback=None, receipt_id=None)
    (item,) = await a.due_outbox(backend.now)
    assert await a.claim_message(item.id)
    await a.update_outbox(item.id, state="pending", tries=1, next_at=backend.now + 30,
                          error="HTTP 503")
    assert not await b.claim_message(item.id)
    backend.now += 30
    (again,) = await b.due_outbox(backend.now)
    assert (again.tries, again.last_error) == (1, "HTTP 503")
    assert await b.claim_message(item.id)


async def test_a_delivery_queues_its_messages_in_its_finishing_transaction(
        backend: Backend) -> None:
    a = await backend.open("a")
    await deliver(a, "etl-1")
    (d,) = await a.claim_deliveries()
    event = Event(kind="notification", receipt_id=d.new[0].id, action="oncall")
    message = OutboxMessage(channel="oncall", dedup="d1", message={"body": {}}, fallback=None,
                            receipt_id=d.new[0].id, event=event)
    assert await a.finish_delivery(d.id, [(d.new[0].id, "done", {}, [])], [],
                                   [message, message]) == 1
    outcomes = sorted(e["outcome"] for e in await a.events(kind="notification"))
    assert outcomes == ["duplicate", "queued"]
    assert len(await a.due_outbox(backend.now)) == 1
