"""The feedback loop through HTTP: an operator corrects an alert's category, the same
failure text is classified as corrected at once, and still after a restart."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry

from responder.app import create_app
from responder.load import load_runtime
from tests.conftest import TOKEN, eventually

AUTH = {"Authorization": f"Bearer {TOKEN}"}
# a failure neither the patterns nor the model can place
TEXT = "reconciler {pod} gave up: the flux capacitor in rack {n} made a noise"


def payload(i: int, pod: str, n: int) -> dict[str, Any]:
    return {"version": "4", "groupKey": f"{{}}:{{wf=\"{i}\"}}", "truncatedAlerts": 0,
            "status": "firing", "receiver": "responder", "groupLabels": {},
            "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am",
            "alerts": [{
                "status": "firing",
                "labels": {"alertname": "WorkflowFailed", "namespace": "batch",
                           "workflow": f"nightly-{i}"},
                "annotations": {"description": TEXT.format(pod=pod, n=n)},
                "startsAt": "2026-11-28T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus/graph", "fingerprint": f"fp{i:06d}"}]}


async def analysed(client: TestClient[Any, Any], i: int, pod: str, n: int) -> dict[str, Any]:
    """Post failure ``i`` and return its journaled alert once the pipeline analysed it."""
    resp = await client.post("/webhook", data=json.dumps(payload(i, pod, n)), headers=AUTH)
    assert resp.status == 200

    async def done() -> dict[str, Any] | None:
        body = await (await client.get("/api/v1/events?limit=50", headers=AUTH)).json()
        for a in body["alerts"]:
            if a["alert"]["fingerprint"] == f"fp{i:06d}" and a["analysis"]:
                return a  # type: ignore[no-any-return]
        return None

    return await eventually(done)  # type: ignore[no-any-return]


async def correct(client: TestClient[Any, Any], alert_id: object, body: object,
                  headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    resp = await client.post(f"/api/v1/alerts/{alert_id}/category", data=json.dumps(body),
                             headers=AUTH if headers is None else headers)
    return resp.status, await resp.json()


async def test_a_correction_applies_to_the_same_text_at_once_and_after_a_restart(
        aiohttp_client: Callable[..., Any], write_config: Callable[..., Path]) -> None:
    config = write_config()
    client = await aiohttp_client(create_app(load_runtime(config), registry=CollectorRegistry()))
    first = await analysed(client, 1, "reconcile-7c9f5d8b4-x2k8d", 12)
    assert first["analysis"]["category"] == "Unknown"

    status, body = await correct(client, first["id"], {"category": "Infrastructure",
                                                       "by": "alice"})
    assert (status, body) == (200, {"id": first["id"], "category": "Infrastructure",
                                    "previous": "Unknown"})

    # the same failure from another pod, another rack: the operator's category, at once
    second = await analysed(client, 2, "reconcile-5d2a1f9c3-q9w1z", 40)
    assert (second["analysis"]["category"], second["analysis"]["source"],
            second["analysis"]["retryable"]) == ("Infrastructure", "feedback", True)
    metrics = await (await client.get("/metrics")).text()
    assert 'responder_analysis_total{source="feedback"} 1.0' in metrics
    assert 'responder_analysis_total{source="none"} 1.0' in metrics
    events = await (await client.get("/api/v1/events?limit=50", headers=AUTH)).json()
    (corrected,) = [a for a in events["alerts"] if a["id"] == first["id"]]
    assert [(e["kind"], e["outcome"], e["detail"]["by"]) for e in corrected["events"]
            if e["kind"] == "correction"] == [("correction", "Infrastructure", "alice")]
    await client.close()

    # a new process on the same journal knows the correction too
    client = await aiohttp_client(create_app(load_runtime(config), registry=CollectorRegistry()))
    third = await analysed(client, 3, "reconcile-1a2b3c4d5-m3n4o", 7)
    assert (third["analysis"]["category"], third["analysis"]["source"]) == (
        "Infrastructure", "feedback")


async def test_a_correction_needs_auth_a_known_category_and_a_known_alert(
        aiohttp_client: Callable[..., Any], write_config: Callable[..., Path]) -> None:
    client = await aiohttp_client(create_app(load_runtime(write_config()),
                                             registry=CollectorRegistry()))
    first = await analysed(client, 1, "reconcile-7c9f5d8b4-x2k8d", 12)
    assert (await correct(client, first["id"], {"category": "Network"}, headers={}))[0] == 401
    status, body = await correct(client, first["id"], {"category": "Cosmic"})
    assert status == 400 and "ExternalDependency" in body["error"]
    assert (await correct(client, first["id"], ["Network"]))[0] == 400
    assert (await correct(client, 999_999, {"category": "Network"}))[0] == 404
    assert (await correct(client, "abc", {"category": "Network"}))[0] == 404
    # nothing was recorded: the same text is still not decided
    second = await analysed(client, 2, "reconcile-5d2a1f9c3-q9w1z", 40)
    assert second["analysis"]["source"] == "none"
