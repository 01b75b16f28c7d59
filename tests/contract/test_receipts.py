"""Receipts: every alert is journaled once per (instance, status), however its webhooks
arrive: one at a time, many at once at one owner (written together in one commit) or at
several owners at once."""

from __future__ import annotations

import asyncio

from responder.journal import DeliveryResult, JournalUnavailable
from tests.contract.conftest import Backend
from tests.contract.helpers import deliver


async def test_webhooks_arriving_together_are_each_journaled_with_their_own_delivery(
        backend: Backend) -> None:
    a = await backend.open("a")
    results = await asyncio.gather(*(deliver(a, f"etl-{i}", f"etl-{i}-b", group=f"g{i}")
                                     for i in range(12)))
    assert [(r.accepted, r.duplicates) for r in results] == [(2, 0)] * 12
    assert len({r.delivery_id for r in results}) == 12
    claimed = await a.claim_deliveries(limit=50, max_alerts=100)
    by_id = {d.id: d for d in claimed}
    assert sorted(by_id) == sorted(r.delivery_id for r in results)
    for i, r in enumerate(results):
        assert sorted(x.alert["labels"]["workflow"] for x in by_id[r.delivery_id].new) == [
            f"etl-{i}", f"etl-{i}-b"]


async def test_the_same_alert_in_webhooks_arriving_together_is_new_once(
        backend: Backend) -> None:
    """Alertmanager's peers send the same group at the same moment: one delivery takes
    the alert as new, each other counts it a duplicate of that receipt."""
    a, b = await backend.open("a"), await backend.open("b")
    results = await asyncio.gather(*(deliver(j, "etl-1", f"other-{k}", group=f"g{k}")
                                     for k, j in enumerate([a, a, a, b, b, a])))
    assert sum(r.accepted for r in results) == 1 + 6
    assert sum(r.duplicates for r in results) == 5
    claimed = await a.claim_deliveries(limit=50, max_alerts=100)
    receipts = {x.id for d in claimed for x in (*d.new, *d.duplicates)
                if x.alert["labels"]["workflow"] == "etl-1"}
    assert len(receipts) == 1
    (receipt,) = [x for d in claimed for x in d.new if x.alert["labels"]["workflow"] == "etl-1"]
    assert receipt.deliveries == 6


async def test_an_alert_twice_in_one_webhook_is_one_receipt(backend: Backend) -> None:
    """A payload listing an alert three times is one new alert and two duplicates: one
    failure, not three (three would count toward a breaker and page as three)."""
    a = await backend.open("a")
    once = await deliver(a, "etl-1", "etl-1", "etl-2", "etl-1")
    assert (once.accepted, once.duplicates) == (2, 2)
    again = await deliver(a, "etl-1", "etl-1", "etl-2", group="g2")
    assert (again.accepted, again.duplicates) == (0, 3)
    (first, second) = await a.claim_deliveries(limit=50, max_alerts=100)
    assert sorted(x.alert["labels"]["workflow"] for x in first.new) == ["etl-1", "etl-2"]
    assert first.duplicates == ()
    assert sorted(x.id for x in second.duplicates) == sorted(x.id for x in first.new)
    assert sorted(x.deliveries for x in second.duplicates) == [2, 2]


async def test_a_webhook_the_store_refuses_fails_alone_not_those_written_with_it(
        backend: Backend) -> None:
    """PostgreSQL refuses a NUL in text (SQLite stores it): the webhooks that came with
    it are still journaled, and only that one may answer 503."""
    a = await backend.open("a")
    results = await asyncio.gather(deliver(a, "etl-1", group="g1"),
                                   deliver(a, "etl-2", group="bad\x00key"),
                                   deliver(a, "etl-3", group="g3"), return_exceptions=True)
    first, refused, third = results
    assert isinstance(first, DeliveryResult) and isinstance(third, DeliveryResult)
    assert isinstance(refused, (DeliveryResult, JournalUnavailable))
    claimed = await a.claim_deliveries(limit=50, max_alerts=100)
    assert {first.delivery_id, third.delivery_id} <= {d.id for d in claimed}
    assert len(claimed) == (3 if isinstance(refused, DeliveryResult) else 2)
