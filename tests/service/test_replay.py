"""``responder replay`` through the CLI, on a journal the service wrote through HTTP."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from responder.app import create_app
from responder.load import load_runtime
from tests.conftest import REPO, TOKEN, eventually

RESPONDER = str(Path(sys.executable).with_name("responder"))
AUTH = {"Authorization": f"Bearer {TOKEN}"}

RUNBOOKS: dict[str, Any] = {"runbooks": [
    {"name": "retry-transient", "match": ['alertname="WorkflowFailed"'],
     "when": {"retryable": True},
     "actions": [{"argo.retry": {"namespace": "{{ labels.namespace }}",
                                 "workflow": "{{ labels.workflow }}"}}],
     "notify": [{"channel": "oncall"}]},
    {"name": "page-the-rest", "match": ['alertname="WorkflowFailed"'],
     "notify": [{"channel": "pager"}]},
]}


def replay(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RESPONDER, "replay", "-c", str(config), *args], capture_output=True,
                          text=True, timeout=60, check=False)


async def journal_alerts(tmp_path: Path, write_config: Callable[..., Path],
                         aiohttp_client: Callable[..., Any],
                         corrections: dict[str, str] | None = None) -> Path:
    """A journal with a transient and an OOM failure, decided with ``RUNBOOKS``; then the
    operators' ``corrections`` (workflow -> category) through the API."""
    (tmp_path / "runbooks.yaml").write_text(yaml.safe_dump(RUNBOOKS, sort_keys=False))
    config = write_config({"rules": [str(tmp_path / "runbooks.yaml")], "dry_run": True})
    client = await aiohttp_client(create_app(load_runtime(config), registry=CollectorRegistry()))
    for name in ("workflow-failed.json", "workflow-oomkilled.json"):
        resp = await client.post("/webhook", data=(REPO / "examples" / name).read_bytes(),
                                 headers=AUTH)
        assert resp.status == 200, await resp.text()

    async def processed() -> bool:
        body = await (await client.get("/api/v1/events", headers=AUTH)).json()
        return len(body["alerts"]) == 2 and all(a["state"] == "done" for a in body["alerts"])

    await eventually(processed)
    body = await (await client.get("/api/v1/events", headers=AUTH)).json()
    for alert in body["alerts"]:
        category = (corrections or {}).get(alert["alert"]["labels"].get("workflow"))
        if category:
            resp = await client.post(f"/api/v1/alerts/{alert['id']}/category", headers=AUTH,
                                     data=json.dumps({"category": category, "by": "alice"}))
            assert resp.status == 200, await resp.text()
    await client.close()
    return config


async def test_an_unchanged_configuration_replays_without_differences(
        tmp_path: Path, write_config: Callable[..., Path],
        aiohttp_client: Callable[..., Any]) -> None:
    config = await journal_alerts(tmp_path, write_config, aiohttp_client)
    result = replay(config, "--since", "1h")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(": no differences"), result.stdout
    assert "replayed 2 alerts in 2 deliveries" in result.stdout


async def test_an_edited_runbook_shows_what_would_now_be_decided_differently(
        tmp_path: Path, write_config: Callable[..., Path],
        aiohttp_client: Callable[..., Any]) -> None:
    config = await journal_alerts(tmp_path, write_config, aiohttp_client)
    state = tmp_path / "state.db"
    rows_before = _rows(state)
    edited = json.loads(json.dumps(RUNBOOKS))
    edited["runbooks"][0]["notify"] = [{"channel": "console"}]      # tell someone else
    edited["runbooks"][0]["when"] = {"category": ["Network"]}        # and act on less
    (tmp_path / "runbooks.yaml").write_text(yaml.safe_dump(edited, sort_keys=False))
    result = replay(config, "--state", str(state), "--since", "1h")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    changed = [line for line in lines if line.startswith("alert ")]
    assert len(changed) == 1 and "WorkflowFailed taskmaster/nightly-etl-29k4x" in changed[0]
    assert "  - retry-transient: notify oncall" in lines
    assert "  + retry-transient: notify console" in lines
    assert lines[-1].endswith("1 would be decided differently (runbooks involved: "
                              "retry-transient)"), lines
    assert _rows(state) == rows_before            # nothing written


async def test_replay_applies_the_operators_corrections_from_the_journal_as_the_service_does(
        tmp_path: Path, write_config: Callable[..., Path],
        aiohttp_client: Callable[..., Any]) -> None:
    # The DNS timeout was decided Network (retryable: retried); an operator says it is the
    # workload's own configuration: not retryable, so the retry runbook no longer matches.
    config = await journal_alerts(tmp_path, write_config, aiohttp_client,
                                  corrections={"nightly-etl-29k4x": "Configuration"})
    state = tmp_path / "state.db"
    rows_before = _rows(state)
    result = replay(config, "--since", "1h")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    changed = [line for line in lines if line.startswith("alert ")]
    assert len(changed) == 1 and "WorkflowFailed taskmaster/nightly-etl-29k4x" in changed[0]
    assert "  analysis: Network -> Configuration" in lines, lines
    assert "  runbooks: retry-transient -> page-the-rest" in lines, lines
    assert "  - retry-transient: schedule argo.retry workflow:taskmaster/nightly-etl-29k4x" \
        in lines
    assert "  - retry-transient: notify oncall" in lines
    assert "  + page-the-rest: notify pager" in lines
    assert _rows(state) == rows_before            # nothing written


async def test_replay_of_a_missing_journal_says_so(
        tmp_path: Path, write_config: Callable[..., Path]) -> None:
    config = write_config()
    result = replay(config, "--state", str(tmp_path / "nope.db"))
    assert result.returncode == 1
    assert result.stderr.strip() == f"{tmp_path / 'nope.db'}: no such journal"


def _rows(path: Path) -> dict[str, int]:
    db = sqlite3.connect(path)
    try:
        return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("deliveries", "receipts", "events", "attempts", "outbox")}
    finally:
        db.close()


async def test_replay_reads_a_postgresql_journal_through_read_only_transactions(
        tmp_path: Path, write_config: Callable[..., Path], pg_dsn: str,
        aiohttp_client: Callable[..., Any]) -> None:
    (tmp_path / "runbooks.yaml").write_text(yaml.safe_dump(RUNBOOKS, sort_keys=False))
    (tmp_path / "pg-dsn").write_text(pg_dsn)
    config = write_config({"rules": [str(tmp_path / "runbooks.yaml")], "dry_run": True,
                           "state": {"postgres": {"dsn_file": "pg-dsn"}}})
    client = await aiohttp_client(create_app(load_runtime(config), registry=CollectorRegistry()))
    await eventually(lambda: _ready(client))
    resp = await client.post("/webhook", headers=AUTH,
                             data=(REPO / "examples/workflow-failed.json").read_bytes())
    assert resp.status == 200, await resp.text()

    async def processed() -> bool:
        body = await (await client.get("/api/v1/events", headers=AUTH)).json()
        return bool(body["alerts"]) and body["alerts"][0]["state"] == "done"

    await eventually(processed)
    await client.close()
    edited = json.loads(json.dumps(RUNBOOKS))
    edited["runbooks"][0]["notify"] = [{"channel": "console"}]
    (tmp_path / "runbooks.yaml").write_text(yaml.safe_dump(edited, sort_keys=False))
    result = replay(config)        # state.postgres of the config
    assert result.returncode == 0, result.stderr
    assert "  + retry-transient: notify console" in result.stdout.splitlines()
    assert pg_dsn.split("@")[0] not in result.stdout + result.stderr   # no credentials


async def _ready(client: Any) -> bool:
    return bool((await client.get("/-/ready")).status == 200)
