"""Upstreams that echo credentials: nothing of a secret reaches a log line, the events API,
a journal row or a metric, whichever part of it the upstream quoted."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from responder.app import create_app
from responder.load import load_runtime
from responder.redact import Redactor, fragments
from tests.conftest import TOKEN, eventually
from tests.fakes import Reply
from tests.fakes.argo_server import FakeArgoServer
from tests.fakes.slack import FakeSlack

AUTH = {"Authorization": f"Bearer {TOKEN}"}
ARGO_TOKEN = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LWFyZ28tdG9rZW4.S1GNATUREp4rt"
NS = "taskmaster"


def webhook(workflow: str) -> bytes:
    return json.dumps({"version": "4", "groupKey": "g", "status": "firing", "receiver": "r",
                       "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
                       "externalURL": "http://am", "alerts": [{
                           "status": "firing", "labels": {
                               "alertname": "WorkflowFailed", "namespace": NS,
                               "workflow": workflow, "severity": "warning"},
                           "annotations": {"description": "connection refused"},
                           "startsAt": "2026-11-28T10:00:00Z",
                           "fingerprint": f"fp-{workflow}"}]}).encode()


def leaks(text: str, secret: str) -> list[str]:
    """The parts of ``secret`` found in ``text``."""
    return sorted(f for f in fragments(secret) if f in text)


def journal_text(path: Path) -> str:
    db = sqlite3.connect(path)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(str(row) for t in tables for row in db.execute(f'SELECT * FROM "{t}"'))
    finally:
        db.close()


def test_every_credential_carrying_part_of_a_url_is_scrubbed() -> None:
    url = "https://user:p4ssw0rd!@hooks.example.com/services/T0ABCDEF1/B0GHIJKL2/" \
          "xoxbSECRETtoken123456?token=q-t0ken-99&x=1"
    redactor = Redactor([url])
    echoed = ("no_service for /services/T0ABCDEF1/B0GHIJKL2/xoxbSECRETtoken123456, team "
              "T0ABCDEF1, hook B0GHIJKL2/xoxbSECRETtoken123456, token q-t0ken-99, "
              "auth user:p4ssw0rd!, quoted p4ssw0rd%21")
    scrubbed = redactor.scrub(echoed)
    for part in ("T0ABCDEF1", "B0GHIJKL2", "xoxbSECRETtoken123456", "q-t0ken-99", "p4ssw0rd"):
        assert part not in scrubbed, scrubbed
    assert scrubbed.startswith("no_service for /services/<secret>, team <secret>"), scrubbed
    # A database name or a user name alone is no credential: it stays readable.
    dsn = Redactor(["postgresql://responder:pw-s3cret-42@db:5432/responder"])
    assert dsn.scrub("cannot reach postgresql://responder@db:5432/responder") == \
        "cannot reach postgresql://responder@db:5432/responder"
    assert Redactor(["Bearer abcdef123456"]).scrub("got abcdef123456") == "got <secret>"


async def test_an_argo_403_quoting_the_token_and_a_slack_400_quoting_the_path_leak_nothing(
        tmp_path: Path, write_config: Callable[..., Path], aiohttp_client: Callable[..., Any],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with FakeArgoServer(token=ARGO_TOKEN) as argo, FakeSlack() as slack:
        argo.add_workflow(NS, "etl-1", phase="Failed")
        path = f"/api/v1/workflows/{NS}/etl-1"
        denied = {"code": 7, "message": f"permission denied for token {ARGO_TOKEN} "
                                        f"(Authorization: Bearer {ARGO_TOKEN})"}
        argo.script("GET", path, [Reply(403, body=denied)] * 20)
        argo.script("PUT", path + "/retry", [Reply(403, body=denied)] * 20)
        echo = f"invalid_payload: no service at {slack.path} (team {slack.path.split('/')[2]})"
        slack.script("POST", slack.path, [Reply(400, body=echo)] * 5)
        (tmp_path / "argo-token").write_text(ARGO_TOKEN)
        (tmp_path / "slack-url").write_text(slack.webhook_url)
        (tmp_path / "runbooks.yaml").write_text(yaml.safe_dump({"runbooks": [{
            "name": "retry", "match": ['alertname="WorkflowFailed"'],
            "actions": [{"argo.retry": {"namespace": "{{ labels.namespace }}",
                                        "workflow": "{{ labels.workflow }}"}}],
            "retry": {"limit": 1, "backoff": {"duration": "10ms"}},
            "notify": [{"channel": "oncall"}],
            "on_exhausted": {"notify": [{"channel": "oncall"}]}}]}))
        config = write_config({"rules": [str(tmp_path / "runbooks.yaml")],
                               "argo": {"server": argo.url, "token_file": "argo-token"}},
                              channels={"oncall": {"type": "slack", "url_file": "slack-url",
                                                   "retry": {"max_tries": 1}}})
        client = await aiohttp_client(create_app(load_runtime(config),
                                                 registry=CollectorRegistry()))
        resp = await client.post("/webhook", data=webhook("etl-1"), headers=AUTH)
        assert resp.status == 200

        async def settled() -> str | None:
            text = await (await client.get("/api/v1/events?limit=50", headers=AUTH)).text()
            done = "permission denied" in text and '"outcome":"failed"' in text and \
                text.count('"kind":"notification"') >= 2 and "invalid_payload" in text
            return text if done else None

        events = await eventually(settled, within=20)
        metrics = await (await client.get("/metrics")).text()
        await client.close()
    logs = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    stored = journal_text(tmp_path / "state.db")
    assert "permission denied" in events and "<secret>" in events
    for where, text in (("events", events), ("logs", logs), ("journal", stored),
                        ("metrics", metrics)):
        assert leaks(text, ARGO_TOKEN) == [], where
        assert leaks(text, slack.webhook_url) == [], where
