"""What ``responder replay`` reads: processed deliveries of a period, as decided then."""

from __future__ import annotations

from responder.journal import Event
from tests.contract.conftest import Backend
from tests.contract.helpers import deliver


async def test_processed_deliveries_since_a_time_come_with_what_was_decided(
        backend: Backend) -> None:
    a = await backend.open("a")
    await deliver(a, "before", group="old")
    backend.now += 3600
    since = backend.now
    await deliver(a, "w1", "w2", group="g")
    await deliver(a, "unprocessed", group="later")
    old, new = await a.claim_deliveries(limit=2, max_alerts=10)
    for d in (old, new):
        await a.finish_delivery(
            d.id, [(r.id, "done", {"category": "Network"}, ["retry"]) for r in d.new],
            [Event(kind="action", receipt_id=r.id, instance=r.instance, runbook="retry",
                   action="argo.retry", target="workflow:ns/wf", outcome="scheduled")
             for r in d.new])

    (decided,) = await a.decided(since)
    assert decided.id == new.id and decided.group["groupKey"] == "g"
    assert [r.receipt.alert["labels"]["workflow"] for r in decided.receipts] == ["w1", "w2"]
    first = decided.receipts[0]
    assert (first.analysis, first.runbooks) == ({"category": "Network"}, ["retry"])
    assert [(e["kind"], e["outcome"]) for e in first.events] == [("action", "scheduled")]
    assert len(await a.decided(since - 3600)) == 2
