"""POST /webhook through HTTP: the answers Alertmanager gets, and what reaches the journal."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry

from responder.app import create_app
from responder.load import load_runtime
from responder.receive import SERVICE
from tests.conftest import REPO, TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def alert(i: int = 0, **labels: str) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {"alertname": "WorkflowFailed", "namespace": "ns", "workflow": f"wf-{i}",
                   **labels},
        "annotations": {"description": "dial tcp 10.0.0.1:443: connect: connection refused"},
        "startsAt": "2026-11-28T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": f"fp{i:06d}",
    }


def payload(alerts: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"version": "4", "groupKey": "{}:{alertname=\"WorkflowFailed\"}", "truncatedAlerts": 0,
            "status": "firing", "receiver": "responder", "groupLabels": {},
            "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am",
            "alerts": alerts, **extra}


@pytest.fixture
async def client(aiohttp_client: Callable[..., Any],
                 write_config: Callable[..., Path]) -> TestClient[Any, Any]:
    runtime = load_runtime(write_config())
    app = create_app(runtime, registry=CollectorRegistry())
    return await aiohttp_client(app)  # type: ignore[no-any-return]


async def post(client: TestClient[Any, Any], body: bytes | dict[str, Any],
               headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    resp = await client.post("/webhook", data=data, headers=AUTH if headers is None else headers)
    return resp.status, await resp.json()


async def still_healthy(client: TestClient[Any, Any]) -> None:
    assert (await client.get("/-/healthy")).status == 200
    status, body = await post(client, payload([alert(987_654_321)]))
    assert (status, body["accepted"]) == (200, 1)


async def test_a_valid_payload_is_journaled_and_answered_with_counts(
        client: TestClient[Any, Any]) -> None:
    status, body = await post(client, payload([alert(1), alert(2)]))
    assert (status, body) == (200, {"accepted": 2, "duplicates": 0})
    events = await (await client.get("/api/v1/events?limit=10", headers=AUTH)).json()
    assert {a["alert"]["fingerprint"] for a in events["alerts"]} == {"fp000001", "fp000002"}


async def test_a_duplicate_delivery_is_answered_200_and_counted_not_reprocessed(
        client: TestClient[Any, Any]) -> None:
    await post(client, payload([alert(1)]))
    status, body = await post(client, payload([alert(1)]))
    assert (status, body) == (200, {"accepted": 0, "duplicates": 1})
    metrics = await (await client.get("/metrics")).text()
    assert "responder_alerts_duplicate_total 1.0" in metrics


async def test_invalid_json_is_a_400_naming_the_problem(client: TestClient[Any, Any]) -> None:
    status, body = await post(client, b'{"version": "4", "alerts": [')
    assert status == 400 and "invalid JSON" in body["error"]
    await still_healthy(client)


async def test_a_wrong_version_is_a_400_at_the_version_field(client: TestClient[Any, Any]) -> None:
    status, body = await post(client, payload([alert()], version="3"))
    assert (status, body["path"]) == (400, "$.version")


async def test_a_missing_labels_field_rejects_only_that_alert(client: TestClient[Any, Any]) -> None:
    broken = alert(2)
    del broken["labels"]
    status, body = await post(client, payload([alert(1), broken, alert(3)]))
    assert status == 200
    assert (body["accepted"], body["rejected"]) == (2, 1)
    assert body["errors"][0]["path"] == "$.alerts[1]"
    assert "labels" in body["errors"][0]["error"]


async def test_wrong_types_name_the_field_path(client: TestClient[Any, Any]) -> None:
    broken = alert(1)
    broken["labels"]["namespace"] = 7
    status, body = await post(client, payload([broken]))
    assert status == 400
    assert body["path"] == "$.alerts[0].labels.namespace"
    assert "Expected `str`" in body["errors"][0]["error"]
    odd = alert(2)
    odd["annotations"] = {"runbook url": ["not", "text"]}
    status, body = await post(client, payload([alert(3), odd]))
    assert (status, body["rejected"]) == (200, 1)
    assert body["errors"][0]["path"] == '$.alerts[1].annotations["runbook url"]'


async def test_extra_fields_from_newer_alertmanagers_are_ignored(
        client: TestClient[Any, Any]) -> None:
    a = alert(1)
    a["newField"] = {"nested": [1, 2]}
    status, body = await post(client, payload([a], anotherNewField=True))
    assert (status, body["accepted"]) == (200, 1)


async def test_ten_thousand_alerts_in_one_payload_are_all_journaled(
        client: TestClient[Any, Any]) -> None:
    status, body = await post(client, payload([alert(i) for i in range(10_000)]))
    assert (status, body["accepted"]) == (200, 10_000)
    await still_healthy(client)


async def test_deep_nesting_is_a_400_not_a_crash(client: TestClient[Any, Any]) -> None:
    deep = b"[" * 200_000 + b"]" * 200_000
    status, body = await post(client, b'{"version":"4","status":"firing","x":' + deep +
                              b',"alerts":[]}')
    assert status == 400 and "nested too deeply" in body["error"]
    await still_healthy(client)


async def test_a_body_over_four_mebibytes_is_a_413(client: TestClient[Any, Any]) -> None:
    big = json.dumps(payload([alert()], padding="x" * (6 * 1024 * 1024))).encode()
    resp = await client.post("/webhook", data=big, headers=AUTH)
    assert resp.status == 413
    await still_healthy(client)


async def test_non_utf8_bytes_are_a_400(client: TestClient[Any, Any]) -> None:
    status, body = await post(client, b"\xff\xfe\x00{")
    assert status == 400 and "UTF-8" in body["error"]
    await still_healthy(client)


async def test_bytes_that_are_not_utf8_in_a_label_reject_that_alert_at_the_label(
        client: TestClient[Any, Any]) -> None:
    broken = alert(2)
    broken["labels"]["namespace"] = "@@BAD@@"
    raw = json.dumps(payload([alert(1), broken])).encode().replace(b"@@BAD@@", b"etl\xff")
    status, body = await post(client, raw)
    assert (status, body["accepted"], body["rejected"]) == (200, 1, 1)
    assert body["errors"][0]["path"] == "$.alerts[1].labels.namespace"
    assert "UTF-8" in body["errors"][0]["error"]
    await still_healthy(client)


async def test_an_empty_body_is_a_400(client: TestClient[Any, Any]) -> None:
    status, body = await post(client, b"")
    assert status == 400 and "empty body" in body["error"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": "Basic dXNlcjpwYXNz"}])
async def test_missing_or_wrong_credentials_are_a_401_that_reveals_nothing(
        client: TestClient[Any, Any], headers: dict[str, str],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    resp = await client.post("/webhook", data=json.dumps(payload([alert()])), headers=headers)
    assert resp.status == 401
    assert "WWW-Authenticate" in resp.headers
    assert TOKEN not in await resp.text()
    assert TOKEN not in caplog.text
    events = await (await client.get("/api/v1/events", headers=AUTH)).json()
    assert events["alerts"] == []


async def test_metrics_and_health_need_no_credentials_but_the_api_does(
        client: TestClient[Any, Any]) -> None:
    for path in ("/metrics", "/-/healthy", "/-/ready"):
        assert (await client.get(path)).status == 200
    for path in ("/api/v1/events", "/api/v1/status", "/api/v1/breakers"):
        assert (await client.get(path)).status == 401
    assert (await client.post("/-/reload")).status == 401


async def test_webhook_answers_are_counted_by_code(client: TestClient[Any, Any]) -> None:
    await post(client, payload([alert()]))
    await post(client, b"{")
    await post(client, payload([alert()]), headers={})
    text = await (await client.get("/metrics")).text()
    for code in ("200", "400", "401"):
        assert f'responder_webhook_requests_total{{code="{code}"}} 1.0' in text


def test_repo_example_payload_is_valid() -> None:
    from responder.model import decode_group

    group, rejected = decode_group((REPO / "examples/workflow-failed.json").read_bytes())
    assert rejected == [] and len(group.alerts) == 1


async def _in_flight(service: Any) -> None:
    for _ in range(500):
        if service.webhooks_in_flight:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the webhook request never reached the handler")


async def test_the_pipeline_gives_way_while_a_webhook_is_in_flight_but_not_for_ever(
        client: TestClient[Any, Any]) -> None:
    service = client.app[SERVICE]
    body = json.dumps(payload([alert(1)])).encode()
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield body[:20]
        await release.wait()
        yield body[20:]

    sending = asyncio.ensure_future(client.post("/webhook", data=slow_body(), headers=AUTH))
    await _in_flight(service)
    waiting = asyncio.ensure_future(service.give_way_to_webhooks(10.0))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    release.set()
    assert (await sending).status == 200
    await asyncio.wait_for(waiting, 2.0)
    assert service.webhooks_in_flight == 0

    release.clear()
    sending = asyncio.ensure_future(client.post("/webhook", data=slow_body(), headers=AUTH))
    await _in_flight(service)
    started = time.monotonic()
    await service.give_way_to_webhooks(0.2)       # a stuck sender delays processing only so long
    assert 0.15 < time.monotonic() - started < 2.0
    release.set()
    assert (await sending).status == 200
