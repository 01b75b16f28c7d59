"""Hostile values and upstreams that echo secrets, through a real process: a Slack mention,
a ``javascript:`` runbook URL and a 100,000-character summary reach Slack escaped, without
the link and cut to size; an Argo 403 and a Slack 404 quoting credentials leak nothing to
the log, the events API or the journal."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from tests.e2e.procs import wait_for, write_yaml
from tests.fakes import Reply
from tests.fakes.argo_server import FakeArgoServer
from tests.fakes.slack import FakeSlack
from tests.faults.conftest import Fakes, Responder, fingerprint
from tests.service.test_secret_echo import journal_text, leaks

NS = "ns"
ARGO_TOKEN = "eyJhbGciOiJSUzI1NiJ9.ZmF1bHQtc3VpdGUtdG9rZW4.S1GNATUREfau1t"
MENTIONS = "<!channel> <!here> <@U0EVIL>"


def alert(workflow: str, **annotations: str) -> dict[str, Any]:
    return {"version": "4", "status": "firing", "groupKey": workflow, "receiver": "r",
            "alerts": [{"status": "firing",
                        "labels": {"alertname": "WorkflowFailed", "namespace": NS,
                                   "workflow": workflow, "team": MENTIONS},
                        "annotations": {"description": "dial tcp: connection refused",
                                        **annotations},
                        "startsAt": "2026-11-28T10:00:00Z",
                        "fingerprint": fingerprint(workflow)}]}


def strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [value] if isinstance(value, str) else []


def test_hostile_values_and_secret_echoes_through_a_real_process(
        tmp_path: Path, fakes: Fakes, responder: list[Responder]) -> None:
    argo = fakes.start(FakeArgoServer(token=ARGO_TOKEN))
    slack = fakes.start(FakeSlack())
    argo.add_workflow(NS, "hostile", phase="Failed")
    argo.add_workflow(NS, "secret", phase="Failed")
    denied = {"code": 7, "message": f"token {ARGO_TOKEN} may not read ns/secret"}
    argo.script("GET", f"/api/v1/workflows/{NS}/secret", [Reply(403, body=denied)] * 3)
    (tmp_path / "argo-token").write_text(ARGO_TOKEN)
    (tmp_path / "slack-url").write_text(slack.webhook_url)
    write_yaml(tmp_path / "runbooks.yaml", {"runbooks": [{
        "name": "retry", "match": ['alertname="WorkflowFailed"'],
        "actions": [{"argo.retry": {"namespace": "{{ labels.namespace }}",
                                    "workflow": "{{ labels.workflow }}"}}],
        "retry": {"limit": 1, "backoff": {"duration": "50ms"}},
        "notify": [{"channel": "oncall"}]}]})
    r = Responder(tmp_path, rules=[str(tmp_path / "runbooks.yaml")],
                  argo={"server": argo.url, "token_file": "argo-token"},
                  channels={"oncall": {"type": "slack", "url_file": "slack-url",
                                       "retry": {"max_tries": 1}}})
    responder.append(r.start("--log-level", "debug"))

    assert r.post(alert("hostile", summary=MENTIONS + "s" * 100_000,
                        runbook_url="javascript:alert(4)"))[0] == 200
    (message,) = wait_for(lambda: list(slack.messages), 20, "the Slack message", ())
    assert len(message["text"]) <= 40_000
    texts = strings(message)
    assert any("&lt;!channel&gt;" in t for t in texts)
    assert not [t for t in texts if re.search(r"<[!@#]", t)]
    assert not [t for t in texts if "javascript" in t.lower()]

    slack.script("POST", slack.path, [Reply(404, body=f"no_service {slack.path}")])
    assert r.post(alert("secret"))[0] == 200
    wait_for(lambda: "may not read" in json.dumps(r.get("/api/v1/events?limit=20")[1])
             and "no_service" in json.dumps(r.get("/api/v1/events?limit=20")[1]), 20,
             "the echoed errors recorded", (r.proc,) if r.proc else ())
    time.sleep(0.3)
    events = json.dumps(r.get("/api/v1/events?limit=50")[1])
    r.stop()
    stored, log = journal_text(tmp_path / "state.db"), r.log()
    for where, text in (("events", events), ("log", log), ("journal", stored)):
        assert leaks(text, ARGO_TOKEN) == [], where
        assert leaks(text, slack.webhook_url) == [], where
    assert "Traceback" not in log
