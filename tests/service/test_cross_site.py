"""A page of another site cannot drive the API through a visitor's browser: without auth
(``make run``) or with basic auth (which a browser re-sends by itself), a cross-site
"simple" request would otherwise pause, resume, approve or post alerts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from responder.app import create_app
from responder.load import load_runtime
from tests.service.test_webhook import alert, payload


async def test_a_cross_site_post_is_refused_and_changes_nothing(
        write_config: Callable[..., Path], aiohttp_client: Callable[..., Any]) -> None:
    client = await aiohttp_client(create_app(load_runtime(write_config(token=None)),
                                             registry=CollectorRegistry()))
    evil = {"Origin": "https://evil.example", "Content-Type": "text/plain"}
    for path, body in (("/api/v1/pause", '{"reason": "from evil page", "by": "alice"}'),
                       ("/api/v1/resume", ""), ("/-/reload", ""),
                       ("/webhook", json.dumps(payload([alert(1)])))):
        resp = await client.post(path, data=body, headers=evil)
        assert resp.status == 403, path
        assert "cross-site request refused" in (await resp.json())["error"]
    fetched = {"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"}
    assert (await client.post("/api/v1/pause", json={}, headers=fetched)).status == 403
    status = await (await client.get("/api/v1/status", headers=evil)).json()  # reads are fine
    assert status["paused"] is False
    events = await (await client.get("/api/v1/events")).json()
    assert events["alerts"] == []

    # Alertmanager, curl and ctl send no Origin; the console's own page sends its own.
    assert (await client.post("/webhook", json=payload([alert(2)]))).status == 200
    same = {"Origin": str(client.make_url("")).rstrip("/")}
    resp = await client.post("/api/v1/pause", json={"reason": "maintenance"}, headers=same)
    assert resp.status == 200, await resp.text()
    assert (await (await client.get("/api/v1/status")).json())["paused"] is True
