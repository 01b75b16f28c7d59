"""Operator credentials apart from Alertmanager's: who may do what, and whose name is recorded."""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry

from responder.app import create_app
from responder.errors import ConfigErrors
from responder.load import load_runtime
from tests.conftest import TOKEN

WEBHOOK = {"Authorization": f"Bearer {TOKEN}"}
ALICE = {"Authorization": "Bearer alice-t0ken"}
BOB = {"Authorization": "Basic " + base64.b64encode(b"bob:bob-pw").decode()}
OPERATORS = [{"name": "alice", "bearer_token_file": "alice-token"},
             {"name": "bob", "basic_auth": {"username": "bob", "password_file": "bob-pw"}}]
EMPTY = {"version": "4", "groupKey": "g", "status": "firing", "receiver": "r",
         "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
         "externalURL": "http://am", "alerts": []}


def with_operators(tmp_path: Path, write_config: Callable[..., Path]) -> Path:
    (tmp_path / "alice-token").write_text("alice-t0ken\n")
    (tmp_path / "bob-pw").write_text("bob-pw\n")
    (tmp_path / "token").write_text(TOKEN)
    return write_config({"auth": {"bearer_token_file": "token", "operators": OPERATORS}})


async def start(aiohttp_client: Callable[..., Any], config: Path) -> TestClient[Any, Any]:
    app = create_app(load_runtime(config), registry=CollectorRegistry())
    return await aiohttp_client(app)  # type: ignore[no-any-return]


async def test_the_webhook_credential_alone_may_only_post_webhooks(
        tmp_path: Path, write_config: Callable[..., Path],
        aiohttp_client: Callable[..., Any]) -> None:
    client = await start(aiohttp_client, with_operators(tmp_path, write_config))
    assert (await client.post("/webhook", json=EMPTY, headers=WEBHOOK)).status == 400
    for method, path in (("POST", "/api/v1/pause"), ("GET", "/api/v1/events"),
                         ("POST", "/-/reload"), ("GET", "/api/v1/breakers"),
                         ("GET", "/api/v1/approvals")):
        resp = await client.request(method, path, headers=WEBHOOK)
        assert resp.status == 403, path
        assert "may only post webhooks" in (await resp.json())["error"]
    status = await (await client.get("/api/v1/status", headers=ALICE)).json()
    assert status["paused"] is False


async def test_operators_pause_with_their_own_name_in_the_audit_log(
        tmp_path: Path, write_config: Callable[..., Path],
        aiohttp_client: Callable[..., Any]) -> None:
    client = await start(aiohttp_client, with_operators(tmp_path, write_config))
    resp = await client.post("/api/v1/pause", json={"by": "mallory"}, headers=ALICE)
    assert resp.status == 200
    assert (await client.post("/api/v1/resume", headers=BOB)).status == 200
    body = await (await client.get("/api/v1/audit?kind=pause,resume", headers=BOB)).json()
    assert [(e["kind"], e["detail"]["by"]) for e in body["events"]] == [
        ("resume", "bob"), ("pause", "alice")]
    wrong = {"Authorization": "Basic " + base64.b64encode(b"bob:nope").decode()}
    assert (await client.get("/api/v1/status", headers=wrong)).status == 401


async def test_without_operators_the_webhook_credential_serves_both(
        write_config: Callable[..., Path], aiohttp_client: Callable[..., Any]) -> None:
    client = await start(aiohttp_client, write_config())
    assert (await client.post("/api/v1/pause", json={"by": "carol"}, headers=WEBHOOK)).status == 200
    body = await (await client.get("/api/v1/audit?kind=pause", headers=WEBHOOK)).json()
    assert body["events"][0]["detail"]["by"] == "carol"
    assert (await client.get("/api/v1/status")).status == 401


def test_check_warns_when_the_webhook_credential_serves_operators_too(
        tmp_path: Path, write_config: Callable[..., Path]) -> None:
    config = write_config()
    out = subprocess.run([sys.executable, "-m", "responder.cli", "check", "-c", str(config)],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "warning: auth has no operators" in out.stderr
    out = subprocess.run([sys.executable, "-m", "responder.cli", "check", "-c",
                          str(with_operators(tmp_path, write_config))],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "warning" not in out.stderr
    assert TOKEN not in out.stdout + out.stderr


def test_an_operator_without_a_credential_is_a_config_error_with_its_line(
        tmp_path: Path, write_config: Callable[..., Path]) -> None:
    config = write_config({"auth": {"bearer_token_file": "token",
                                    "operators": [{"name": "eve"}, {"name": "eve",
                                                                    "bearer_token": "x"}]}})
    try:
        load_runtime(config)
    except ConfigErrors as exc:
        messages = [str(e) for e in exc.errors]
    else:
        raise AssertionError("expected a configuration error")
    assert any("auth.operators[0]: give bearer_token(_file) or basic_auth" in m
               and f"{config}:" in m for m in messages), messages
    assert any("auth.operators[1].name: 'eve' is given twice" in m for m in messages), messages
