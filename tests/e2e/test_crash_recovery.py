"""SIGKILL right after a 200: the alert is in the journal and is processed after restart."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.procs import free_port, http, responder_config, running, start_responder, wait_for

pytestmark = pytest.mark.e2e
TOKEN = "crash-test-token"


def payload(n: int) -> dict[str, Any]:
    return {"version": "4", "status": "firing", "groupKey": "crash", "receiver": "r",
            "alerts": [{
                "status": "firing",
                "labels": {"alertname": "WorkflowFailed", "namespace": "ns",
                           "workflow": f"wf-{i}", "severity": "warning"},
                "annotations": {"description": "connection reset by peer"},
                "startsAt": "2026-11-28T10:00:00Z", "fingerprint": f"{i:016x}",
            } for i in range(n)]}


def receipts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT state, COUNT(*) FROM receipts GROUP BY state").fetchall())


def test_an_acknowledged_alert_survives_kill_9_and_is_processed_after_restart(
        tmp_path: Path) -> None:
    port = free_port()
    config = responder_config(tmp_path, port, TOKEN)
    first = start_responder(tmp_path, config, port)
    with running(first):
        status, body = http("POST", f"http://127.0.0.1:{port}/webhook", payload(3000),
                            token=TOKEN, timeout=30)
        first.kill(signal.SIGKILL)
    assert (status, body["accepted"]) == (200, 3000)
    after_kill = receipts(tmp_path / "state.db")
    assert sum(after_kill.values()) == 3000, after_kill
    assert after_kill.get("pending", 0) > 0, f"processing finished before the kill: {after_kill}"

    second = start_responder(tmp_path, config, port)
    with running(second):
        wait_for(lambda: receipts(tmp_path / "state.db") == {"done": 3000}, 60,
                 "every receipt processed after restart", (second,))
        with sqlite3.connect(tmp_path / "state.db") as conn:
            per_receipt = conn.execute(
                "SELECT COUNT(*) FROM events WHERE kind = 'alert' GROUP BY receipt_id").fetchall()
        assert len(per_receipt) == 3000
        assert {count for (count,) in per_receipt} == {1}, "an alert was processed twice"
        status, body = http("GET", f"http://127.0.0.1:{port}/api/v1/events?limit=5", token=TOKEN)
        assert status == 200 and all(a["state"] == "done" for a in body["alerts"])
