"""Grafana Alerting's webhook contact point (``version: "1"``) through HTTP.

The shipped ``examples/grafana-workflow-failed.json`` is built as Grafana documents its
webhook body; posted as Grafana posts it, it is journaled, the workflow is retried through
the fake Argo Server and the notification carries Grafana's links and values.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from responder.app import create_app
from responder.load import load_runtime
from tests.conftest import REPO, TOKEN, eventually
from tests.fakes.argo_server import FakeArgoServer
from tests.fakes.webhook_sink import FakeWebhookSink

EXAMPLE = REPO / "examples/grafana-workflow-failed.json"
RUNBOOKS = {"runbooks": [{
    "name": "retry-transient",
    "match": ['alertname="WorkflowFailed"'],
    "when": {"retryable": True},
    "actions": [{"argo.retry": {"namespace": "{{ labels.namespace }}",
                                "workflow": "{{ labels.workflow }}"}}],
    "retry": {"limit": 1, "backoff": {"duration": "100ms"}},
    "notify": [{"channel": "audit"}],
}]}


@pytest.fixture
async def argo() -> AsyncIterator[FakeArgoServer]:
    async with FakeArgoServer(token="argo-token") as server:
        yield server


@pytest.fixture
async def sink() -> AsyncIterator[FakeWebhookSink]:
    async with FakeWebhookSink() as server:
        yield server


async def test_grafana_webhook_is_accepted_acted_on_and_its_links_reach_the_notification(
        tmp_path: Path, write_config: Callable[..., Path], argo: FakeArgoServer,
        sink: FakeWebhookSink, aiohttp_client: Callable[..., Any]) -> None:
    body = json.loads(EXAMPLE.read_text())
    first = body["alerts"][0]
    argo.add_workflow(first["labels"]["namespace"], first["labels"]["workflow"], phase="Failed")
    (tmp_path / "runbooks.yaml").write_text(yaml.safe_dump(RUNBOOKS))
    (tmp_path / "argo-token").write_text("argo-token")
    config = write_config({"rules": [str(tmp_path / "runbooks.yaml")],
                           "argo": {"server": argo.url, "token_file": "argo-token"}},
                          channels={"audit": {"type": "webhook", "url": sink.hook_url}})
    client = await aiohttp_client(create_app(load_runtime(config), registry=CollectorRegistry()))

    # Grafana's contact point: POST, JSON body, the Authorization header it is given.
    resp = await client.post("/webhook", data=EXAMPLE.read_bytes(), headers={
        "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json",
        "User-Agent": "Grafana"})
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"accepted": 1, "duplicates": 0}

    path = f"/api/v1/workflows/taskmaster/{first['labels']['workflow']}/retry"
    await eventually(lambda: asyncio.sleep(0, argo.calls("PUT", path)))
    (message,) = await eventually(lambda: asyncio.sleep(0, sink.received))
    links = message["links"]
    assert links["silence"] == first["silenceURL"]
    assert links["dashboard"] == first["dashboardURL"]
    assert (links["panel"], links["image"]) == (first["panelURL"], first["imageURL"])
    assert links["generatorURL"] == first["generatorURL"]
    (sent,) = message["alerts"]
    assert sent["values"] == {"A": 1.0, "B": 1.0}
    assert sent["valueString"] == first["valueString"]
    assert sent["links"]["silence"] == first["silenceURL"]
    assert (message["group"]["orgId"], message["group"]["title"]) == (1, body["title"])

    events = await (await client.get("/api/v1/events", headers={
        "Authorization": f"Bearer {TOKEN}"})).json()
    (journaled,) = events["alerts"]
    assert journaled["alert"]["silenceURL"] == first["silenceURL"]


async def test_an_alertmanager_payload_carries_no_grafana_fields_and_empty_links(
        write_config: Callable[..., Path], aiohttp_client: Callable[..., Any]) -> None:
    client = await aiohttp_client(create_app(load_runtime(write_config()),
                                             registry=CollectorRegistry()))
    resp = await client.post("/webhook", data=(REPO / "examples/workflow-failed.json").read_bytes(),
                             headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status == 200
    events = await (await client.get("/api/v1/events", headers={
        "Authorization": f"Bearer {TOKEN}"})).json()
    (journaled,) = events["alerts"]
    assert "silenceURL" not in journaled["alert"] and "values" not in journaled["alert"]


async def test_a_grafana_payload_of_another_version_is_refused_at_version(
        write_config: Callable[..., Path], aiohttp_client: Callable[..., Any]) -> None:
    client = await aiohttp_client(create_app(load_runtime(write_config()),
                                             registry=CollectorRegistry()))
    body = {**json.loads(EXAMPLE.read_text()), "version": "2"}
    resp = await client.post("/webhook", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status == 400
    assert (await resp.json())["path"] == "$.version"


def test_values_that_are_not_numbers_are_kept_not_refused() -> None:
    from responder.model import GrafanaAlert, decode_group

    body = json.loads(EXAMPLE.read_text())
    body["alerts"][0]["values"] = {"A": "NaN", "B": None, "C": 2}
    group, rejected = decode_group(json.dumps(body).encode())
    assert rejected == []
    (alert,) = group.alerts
    assert isinstance(alert, GrafanaAlert) and alert.values == {"A": "NaN", "B": None, "C": 2}
