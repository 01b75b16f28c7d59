"""Real Prometheus fires, real Alertmanager delivers with a bearer token, the journal has it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_binary
from tests.e2e.procs import (
    free_port,
    http,
    responder_config,
    running,
    start_alertmanager,
    start_prometheus,
    start_responder,
    wait_for,
    write_yaml,
)

pytestmark = pytest.mark.e2e
TOKEN = "am-to-responder-token"


def test_an_alert_fired_by_prometheus_reaches_the_journal_through_alertmanager(
        tmp_path: Path) -> None:
    prometheus = require_binary("prometheus")
    alertmanager = require_binary("prometheus-alertmanager")
    port = free_port()
    responder = start_responder(tmp_path, responder_config(tmp_path, port, TOKEN), port)
    (tmp_path / "am-token").write_text(TOKEN)
    am, am_port = start_alertmanager(alertmanager, tmp_path, {
        "route": {"receiver": "responder", "group_by": ["alertname", "namespace", "workflow"],
                  "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"},
        "receivers": [{"name": "responder", "webhook_configs": [{
            "url": f"http://127.0.0.1:{port}/webhook", "send_resolved": True,
            "http_config": {"authorization": {"credentials_file": str(tmp_path / "am-token")}},
        }]}],
    })
    rules = write_yaml(tmp_path / "rules.yml", {"groups": [{"name": "test", "interval": "1s",
        "rules": [{
            "alert": "WorkflowFailed",
            "expr": 'label_replace(vector(1), "workflow", "etl-e2e-7x2k", "", "")',
            "labels": {"namespace": "taskmaster", "workflow_template": "etl", "severity": "warning"},
            "annotations": {"summary": "Workflow taskmaster/etl-e2e-7x2k failed",
                            "description": "pod deleted: node ip-10-0-3-4 was lost"},
        }]}]})
    prom, _ = start_prometheus(prometheus, tmp_path, {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "alerting": {"alertmanagers": [{"static_configs": [
            {"targets": [f"127.0.0.1:{am_port}"]}]}]},
    })
    with running(prom, am, responder):
        def delivered() -> object:
            status, body = http("GET", f"http://127.0.0.1:{port}/api/v1/events", token=TOKEN)
            assert status == 200
            found = [a for a in body["alerts"] if a["alert"]["labels"].get("workflow") == "etl-e2e-7x2k"]
            return found and found[0]["state"] == "done" and found[0]

        got = wait_for(delivered, 60, "the alert in the responder's events",
                       (prom, am, responder))
        assert got["alert"]["labels"]["alertname"] == "WorkflowFailed"
        assert got["alert"]["labels"]["namespace"] == "taskmaster"
        assert got["alert"]["generatorURL"].startswith("http")
        assert got["analysis"]["category"] == "Infrastructure"
        _, metrics = http("GET", f"http://127.0.0.1:{port}/metrics")
        assert 'responder_webhook_requests_total{code="200"}' in metrics
        assert 'responder_webhook_requests_total{code="401"}' not in metrics
        assert TOKEN not in responder.output()
