"""Write ``v1.db``: a journal as schema version 1 left it, for the migration test.

It was run once, at commit 1b39acb (the last code of schema version 1), with
``python tests/data/journal/make_v1.py``; the file is committed and never regenerated,
so every later version proves it still opens it. It does not run against later code.
It holds two deliveries (one processed, one still pending), their receipts and events,
a running and a scheduled attempt, a sent and a pending outbox message, an open breaker
and the pause flag.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from responder.journal import Event, Journal
from responder.model import decode_group

HERE = Path(__file__).resolve().parent
T0 = 1_767_225_600.0   # 2026-01-01T00:00:00Z


def body(status: str, *names: str) -> bytes:
    alerts = [{"status": status, "startsAt": "2026-01-01T00:00:00Z",
               "labels": {"alertname": "WorkflowFailed", "workflow": n, "namespace": "jobs"}}
              for n in names]
    return json.dumps({"version": "4", "status": status, "groupKey": f"g-{names[0]}",
                       "receiver": "responder", "alerts": alerts}).encode()


async def write(path: Path) -> None:
    now = [T0]
    journal = Journal(path, clock=lambda: now[0])
    await journal.open()
    first = await journal.record_delivery(*decode_group(body("firing", "etl-a", "etl-b")))
    now[0] += 60
    await journal.record_delivery(*decode_group(body("firing", "etl-c")))
    pending = await journal.pending_deliveries()
    done = pending[0]
    await journal.finish_delivery(
        first.delivery_id,
        [(r.id, "processed", {"category": "oom", "retryable": True}, ["workflow-retry"])
         for r in done.new],
        [Event(kind="analysis", receipt_id=r.id, instance=r.instance, outcome="oom")
         for r in done.new])
    a, b = done.new
    running = await journal.schedule_attempt(
        instance=a.instance, runbook="workflow-retry", target="jobs/etl-a", n=1,
        action="argo.retry", params={"namespace": "jobs", "workflow": "etl-a"}, due_at=T0 + 30,
        receipt_id=a.id, context={"group_key": "g-etl-a", "retry": {"limit": 3}})
    assert running is not None
    await journal.update_attempt(running.id, state="running", expect_state="scheduled")
    await journal.schedule_attempt(
        instance=b.instance, runbook="workflow-retry", target="jobs/etl-b", n=1,
        action="argo.retry", params={"namespace": "jobs", "workflow": "etl-b"}, due_at=T0 + 90,
        receipt_id=b.id, context={"group_key": "g-etl-a", "retry": {"limit": 3}, "_tries": 1})
    await journal.enqueue(channel="oncall", dedup=f"n:{a.instance}", receipt_id=a.id,
                          fallback=None, message={"text": "etl-a failed", "context": {"x": 1}})
    await journal.enqueue(channel="pager", dedup=f"n:{b.instance}", receipt_id=b.id,
                          fallback="oncall", message={"text": "etl-b failed"}, next_at=T0 + 600)
    sent = (await journal.due_outbox(T0 + 60))[0]
    await journal.update_outbox(sent.id, state="sent", tries=1, events=[
        Event(kind="notification", receipt_id=a.id, outcome="sent")])
    await journal.save_breaker(
        "workflow-retry:jobs",
        {"key": "workflow-retry:jobs", "state": "open", "failures": [T0, T0 + 1],
         "opened_at": T0 + 1, "trial_in_flight": False},
        {"threshold": 2, "window": 600.0, "cooldown": 300.0, "runbook": "workflow-retry"},
        [Event(kind="breaker", outcome="opened", target="workflow-retry:jobs")])
    await journal.set_flag("paused", True, [Event(kind="pause", outcome="paused")])
    await journal.close()


def compact(path: Path) -> None:
    with sqlite3.connect(path) as db:   # one self-contained file, no WAL beside it
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("PRAGMA journal_mode=DELETE")
        db.execute("VACUUM")


def main() -> None:
    path = HERE / "v1.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    asyncio.run(write(path))
    compact(path)


if __name__ == "__main__":
    main()
