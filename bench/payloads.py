"""Request bodies for the benchmark: the same alerts for the responder, the bare handler and
Alertmanager.

Every body is a template with one ``@@ID@@`` marker (12 hex digits once filled) that the
load generators replace per request, so each request carries new alerts: the journal
deduplicates identical alerts, and a bench of identical bodies would only measure the
duplicate path. Alert ``i`` of a request gets fingerprint ``@@ID@@`` + ``i`` as 4 hex
digits (16 hex digits, like Alertmanager's) and its own workflow name.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

MARK = "@@ID@@"

# Realistic failure texts, one per analysis category, cycled over the alerts of a request.
FAILURES: tuple[str, ...] = (
    'step fetch-upstream: Get "https://api.github.com/repos/acme/data/tarball": dial tcp: '
    "lookup api.github.com on 10.96.0.10:53: read udp 10.244.1.7:41235->10.96.0.10:53: "
    "i/o timeout",
    "step train: OOMKilled (exit code 137): container exceeded its memory limit of 4Gi",
    'step build: Back-off pulling image "registry.acme.io/etl/loader:v2.14.1": '
    "ErrImagePull: manifest unknown",
    "step load: pod deleted: node gke-prod-pool-2-3f9a was preempted",
    "step test: FAILED tests/test_orders.py::test_refund_rounding - AssertionError: "
    "assert 10.01 == 10.0",
    "step publish: 503 Service Unavailable from https://pypi.org/simple/numpy/",
    "step sync: Operation cannot be fulfilled on configmaps \"etl-state\": the object has "
    "been modified; please apply your changes to the latest version and try again",
    "Step exceeded its deadline: activeDeadlineSeconds=3600",
)
NAMESPACES = ("taskmaster", "ci-payments", "ci-search", "data-platform")
TEMPLATES = ("nightly-etl", "hourly-sync", "model-train", "release-build")
BASE_LABELS = ("alertname", "namespace", "workflow", "workflow_template", "cronworkflow",
               "severity")


def _rfc3339(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _alert(i: int, starts: datetime) -> dict[str, Any]:
    namespace = NAMESPACES[i % len(NAMESPACES)]
    template = TEMPLATES[i % len(TEMPLATES)]
    workflow = f"{template}-{MARK}{i:04x}"
    failure = FAILURES[i % len(FAILURES)]
    return {
        "labels": {
            "alertname": "WorkflowFailed",
            "namespace": namespace,
            "workflow": workflow,
            "workflow_template": template,
            "cronworkflow": template,
            "severity": "warning",
        },
        "annotations": {
            "summary": f"Workflow {namespace}/{workflow} failed",
            "description": f"Workflow {workflow} failed: {failure}",
            "runbook_url": "https://github.com/alert-responder/alert-responder/blob/main/"
                           "README.md#workflowfailed",
        },
        "startsAt": _rfc3339(starts),
        "generatorURL": "http://prometheus.monitoring:9090/graph?g0.expr="
                        "argo_workflow_status_phase%7Bphase%3D~%22Failed%7CError%22%7D+%3D%3D+1",
    }


def webhook_body(n: int, starts: datetime) -> str:
    """An Alertmanager webhook v4 body with ``n`` firing WorkflowFailed alerts."""
    alerts = []
    for i in range(n):
        a = _alert(i, starts)
        alerts.append({"status": "firing", **a, "endsAt": "0001-01-01T00:00:00Z",
                       "fingerprint": f"{MARK}{i:04x}"})
    namespace = NAMESPACES[0] if n == 1 else None
    group_labels = {"alertname": "WorkflowFailed"}
    common = {"alertname": "WorkflowFailed", "severity": "warning"}
    if namespace:
        group_labels["namespace"] = namespace
        common = dict(alerts[0]["labels"])
    return json.dumps({
        "receiver": "alert-responder",
        "status": "firing",
        "alerts": alerts,
        "groupLabels": group_labels,
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.monitoring:9093",
        "version": "4",
        "groupKey": "{}/{alertname=\"WorkflowFailed\"}:{alertname=\"WorkflowFailed\"}",
        "truncatedAlerts": 0,
    }, separators=(",", ":"))


def alertmanager_body(n: int, starts: datetime) -> str:
    """The same alerts as Prometheus posts them to Alertmanager's ``/api/v2/alerts``."""
    ends = starts + timedelta(hours=1)
    return json.dumps([{**_alert(i, starts), "endsAt": _rfc3339(ends)} for i in range(n)],
                      separators=(",", ":"))


def fill(template: str, request_id: int) -> str:
    """The body of request ``request_id`` (what the Lua scripts do, for Python clients)."""
    return template.replace(MARK, f"{request_id:012x}")


def now() -> datetime:
    return datetime.now(UTC)
