"""Small builders shared by the contract tests."""

from __future__ import annotations

import json
from typing import Any

from responder.journal import Attempt, DeliveryResult, Journal
from responder.model import decode_group


def webhook(*names: str, status: str = "firing", group: str = "g") -> bytes:
    alerts = [{"status": status, "labels": {"alertname": "WorkflowFailed", "workflow": n},
               "startsAt": "2026-01-01T00:00:00Z"} for n in names]
    return json.dumps({"version": "4", "status": status, "groupKey": group,
                       "alerts": alerts}).encode()


async def deliver(journal: Journal, *names: str, status: str = "firing",
                  group: str = "g") -> DeliveryResult:
    return await journal.record_delivery(*decode_group(webhook(*names, status=status,
                                                               group=group)))


async def attempt(journal: Journal, instance: str = "fp@t", *, n: int = 1, due_at: float = 0.0,
                  **extra: Any) -> Attempt:
    made = await journal.schedule_attempt(
        instance=instance, runbook="retry", target="workflow:ns/wf", n=n, action="argo.retry",
        params={"namespace": "ns", "workflow": "wf"}, due_at=due_at, receipt_id=None,
        context={"group_key": "g", **extra})
    assert made is not None
    return made
