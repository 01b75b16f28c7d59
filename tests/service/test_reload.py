"""Reload is a transaction: a broken file is reported with file and line, the old config stays."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from responder.app import create_app
from responder.load import load_runtime
from tests.conftest import REPO, TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_a_broken_runbook_fails_the_reload_with_its_line_and_keeps_the_old_config(
        tmp_path: Path, write_config: Callable[..., Path],
        aiohttp_client: Callable[..., Any]) -> None:
    runbooks = tmp_path / "runbooks.yaml"
    runbooks.write_text((REPO / "rules/runbooks/workflows.yaml").read_text())
    config = write_config({"rules": [str(runbooks)]})
    client = await aiohttp_client(create_app(load_runtime(config), registry=CollectorRegistry()))
    before = await (await client.get("/api/v1/status", headers=AUTH)).json()

    runbooks.write_text("runbooks:\n  - name: broken\n    match: ['alertname=~\"(\"']\n"
                        "    notify: [{channel: console}]\n")
    resp = await client.post("/-/reload", headers=AUTH)
    body = await resp.json()
    assert resp.status == 500 and body["status"] == "failed"
    assert any(e.startswith("runbooks.yaml:3: ") for e in body["errors"]), body["errors"]
    metrics = await (await client.get("/metrics")).text()
    assert "responder_config_last_reload_successful 0.0" in metrics
    after = await (await client.get("/api/v1/status", headers=AUTH)).json()
    assert after["runbooks"] == before["runbooks"]

    runbooks.write_text((REPO / "rules/runbooks/workflows.yaml").read_text())
    resp = await client.post("/-/reload", headers=AUTH)
    assert resp.status == 200
    metrics = await (await client.get("/metrics")).text()
    assert "responder_config_last_reload_successful 1.0" in metrics


async def test_reload_requires_credentials(
        write_config: Callable[..., Path], aiohttp_client: Callable[..., Any]) -> None:
    client = await aiohttp_client(create_app(load_runtime(write_config()),
                                             registry=CollectorRegistry()))
    assert (await client.post("/-/reload")).status == 401


async def test_a_reload_failing_on_an_unknown_filter_names_the_runbook_file_and_line(
        tmp_path: Path, write_config: Callable[..., Path],
        aiohttp_client: Callable[..., Any]) -> None:
    runbooks = tmp_path / "runbooks.yaml"
    runbooks.write_text((REPO / "rules/runbooks/workflows.yaml").read_text())
    config = write_config({"rules": [str(runbooks)]})
    client = await aiohttp_client(create_app(load_runtime(config), registry=CollectorRegistry()))
    runbooks.write_text("runbooks:\n  - name: broken\n    match: ['alertname=\"X\"']\n"
                        "    actions:\n      - breaker.trip: {key: '{{ labels.x | nope }}'}\n")
    resp = await client.post("/-/reload", headers=AUTH)
    body = await resp.json()
    assert resp.status == 500
    assert body["errors"] == [
        "runbooks.yaml:5: broken.actions[0].breaker.trip.key: template: No filter named 'nope'."]


async def test_a_template_that_fails_on_the_samples_is_a_reload_warning_naming_its_line(
        tmp_path: Path, write_config: Callable[..., Path],
        aiohttp_client: Callable[..., Any]) -> None:
    """``check`` fails on it; the reload takes it (it may render every real alert: a label
    the samples lack), but says so, where before it said nothing and every message
    rendered with it, pages included, could fail."""
    templates = tmp_path / "templates"
    shutil.copytree(REPO / "templates", templates)
    config = write_config({"templates": str(templates)})
    client = await aiohttp_client(create_app(load_runtime(config), registry=CollectorRegistry()))
    (templates / "log.json.j2").write_text('{"text": "{{ nosuch.x }}"}\n')
    resp = await client.post("/-/reload", headers=AUTH)
    body = await resp.json()
    assert resp.status == 200 and body["status"] == "reloaded"
    assert any(w.startswith(f"{templates / 'log.json.j2'}:1: ") and "'nosuch' is undefined" in w
               and "`responder check` fails on it" in w for w in body["warnings"]), body
    (templates / "log.json.j2").write_text((REPO / "templates/log.json.j2").read_text())
    body = await (await client.post("/-/reload", headers=AUTH)).json()
    assert (body["status"], body["warnings"]) == ("reloaded", [])


async def test_a_reload_says_what_it_could_not_use_and_what_waits_for_a_restart(
        tmp_path: Path, write_config: Callable[..., Path],
        aiohttp_client: Callable[..., Any]) -> None:
    config = write_config()
    client = await aiohttp_client(create_app(load_runtime(config), registry=CollectorRegistry()))
    started = config.read_text()
    (tmp_path / "broken.npz").write_bytes(b"not a model at all")
    write_config({"analysis": {"model": "broken.npz"}, "state": {"path": str(tmp_path / "b.db")}})
    body = await (await client.post("/-/reload", headers=AUTH)).json()
    assert body["status"] == "reloaded"
    assert any(w.startswith("analysis.model unusable, analysing with patterns only: ")
               and "broken.npz" in w for w in body["warnings"]), body["warnings"]
    assert "state_path changed: takes effect after a restart" in body["warnings"]
    config.write_text(started)   # back to what runs: nothing waits for a restart any more
    body = await (await client.post("/-/reload", headers=AUTH)).json()
    assert (body["status"], body["warnings"]) == ("reloaded", [])
