"""Runbooks that act, through HTTP: the fake Argo Server records what the responder did."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry

from responder.app import create_app
from responder.load import load_runtime
from tests.conftest import TOKEN, eventually
from tests.fakes.argo_server import FakeArgoServer
from tests.fakes.clock import FakeTime

AUTH = {"Authorization": f"Bearer {TOKEN}"}
NS = "taskmaster"
RETRY = "/api/v1/workflows/{ns}/{wf}/retry"

RUNBOOKS = {"runbooks": [
    {
        "name": "retry-transient",
        "description": "Retry workflows that failed for a transient reason.",
        "match": ['alertname="WorkflowFailed"'],
        "when": {"retryable": True},
        "actions": [{"argo.retry": {"namespace": "{{ labels.namespace }}",
                                    "workflow": "{{ labels.workflow }}"}}],
        "retry": {"limit": 2, "backoff": {"duration": "200ms", "factor": 2,
                                          "max_duration": "1s"}},
        "breaker": {
            "key": "{{ labels.namespace }}/{{ labels.cronworkflow }}",
            "threshold": 3, "window": "10m", "cooldown": "1s",
            "on_open": [{"argo.suspend_cron": {"namespace": "{{ labels.namespace }}",
                                               "cronworkflow": "{{ labels.cronworkflow }}"}}],
            "on_close": [{"argo.resume_cron": {"namespace": "{{ labels.namespace }}",
                                               "cronworkflow": "{{ labels.cronworkflow }}"}}],
        },
        "notify": [{"channel": "console"}],
        "on_exhausted": {"notify": [{"channel": "pager"}]},
    },
    {
        "name": "escalate-the-rest",
        "match": ['alertname="WorkflowFailed"'],
        "when": {"retryable": False},
        "notify": [{"channel": "pager"}],
    },
]}


def alert(wf: str, status: str = "firing", starts: str = "2026-11-28T10:00:00Z",
          description: str = "dial tcp 10.0.0.7:5432: connect: connection refused",
          cron: str = "nightly") -> dict[str, Any]:
    return {"status": status,
            "labels": {"alertname": "WorkflowFailed", "namespace": NS, "workflow": wf,
                       "cronworkflow": cron, "severity": "warning"},
            "annotations": {"description": description},
            "startsAt": starts, "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus/graph", "fingerprint": f"fp-{wf}"}


def payload(*alerts: dict[str, Any]) -> bytes:
    status = "resolved" if all(a["status"] == "resolved" for a in alerts) else "firing"
    return json.dumps({"version": "4", "groupKey": "g", "status": status, "receiver": "r",
                       "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
                       "externalURL": "http://am", "alerts": list(alerts)}).encode()


@pytest.fixture
async def argo() -> AsyncIterator[FakeArgoServer]:
    async with FakeArgoServer(token="argo-token") as server:
        yield server


Start = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def start(tmp_path: Path, write_config: Callable[..., Path], argo: FakeArgoServer,
          aiohttp_client: Callable[..., Any]) -> Start:
    (tmp_path / "runbooks.yaml").write_text(yaml.safe_dump(RUNBOOKS, sort_keys=False))
    (tmp_path / "argo-token").write_text("argo-token")
    config = write_config({"rules": [str(tmp_path / "runbooks.yaml")],
                           "argo": {"server": argo.url, "token_file": "argo-token"}})

    async def go(time: FakeTime | None = None) -> TestClient[Any, Any]:
        """The app; with ``time``, its clock and its scheduler's sleeper are fake."""
        if time is None:
            app = create_app(load_runtime(config), registry=CollectorRegistry())
            return await aiohttp_client(app)  # type: ignore[no-any-return]
        app = create_app(load_runtime(config), registry=CollectorRegistry(),
                         clock=time.clock, sleep=time.sleep)
        client = await aiohttp_client(app)
        await time.asleep()
        return client  # type: ignore[no-any-return]

    return go


async def post(client: TestClient[Any, Any], body: bytes) -> dict[str, Any]:
    resp = await client.post("/webhook", data=body, headers=AUTH)
    assert resp.status == 200, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def action_events(client: TestClient[Any, Any], outcome: str | None = None,
                        kind: str = "action") -> list[dict[str, Any]]:
    body = await (await client.get("/api/v1/events?limit=100", headers=AUTH)).json()
    return [e for a in body["alerts"] for e in a["events"]
            if e["kind"] == kind and (outcome is None or e.get("outcome") == outcome)]


async def metric(client: TestClient[Any, Any], line_start: str) -> float:
    text = await (await client.get("/metrics")).text()
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def set_phase(argo: FakeArgoServer, wf: str, phase: str) -> None:
    argo.store.workflows[(NS, wf)]["status"]["phase"] = phase


async def test_a_failed_workflow_is_retried_once_after_the_backoff(
        start: Start, argo: FakeArgoServer) -> None:
    argo.add_workflow(NS, "etl-1", phase="Failed")
    client = await start()
    await post(client, payload(alert("etl-1")))
    path = RETRY.format(ns=NS, wf="etl-1")
    await eventually(lambda: asyncio.sleep(0, argo.calls("PUT", path)))
    (call,) = argo.calls("PUT", path)
    assert (call.json["name"], call.json["namespace"]) == ("etl-1", NS)
    assert call.headers["authorization"] == "Bearer argo-token"
    assert (await action_events(client, "success"))[0]["action"] == "argo.retry"
    assert await metric(client, "responder_retry_attempts_total") == 1.0
    assert await metric(client, 'responder_actions_total{action="argo.retry",outcome="success"}') == 1.0


async def test_duplicate_deliveries_retry_the_workflow_once(
        start: Start, argo: FakeArgoServer) -> None:
    argo.add_workflow(NS, "etl-2", phase="Failed")
    time = FakeTime()
    client = await start(time)
    answers = await asyncio.gather(*(post(client, payload(alert("etl-2"))) for _ in range(5)))
    assert sorted(a["accepted"] for a in answers) == [0, 0, 0, 0, 1]
    path = RETRY.format(ns=NS, wf="etl-2")
    await eventually(lambda: action_events(client, "scheduled"))
    await time.advance(0.2)                    # the backoff of attempt 1
    assert len(argo.calls("PUT", path)) == 1
    await time.advance(60.0)                   # well past every backoff: the retried
    assert len(argo.calls("PUT", path)) == 1   # workflow runs, nothing repeats


async def test_a_running_workflow_is_nothing_to_do(start: Start, argo: FakeArgoServer) -> None:
    argo.add_workflow(NS, "etl-3", phase="Running")
    client = await start()
    await post(client, payload(alert("etl-3")))
    await eventually(lambda: action_events(client, "nothing_to_do"))
    assert argo.calls("PUT") == []


async def test_argo_unavailable_twice_then_ok_is_retried_until_it_works(
        start: Start, argo: FakeArgoServer) -> None:
    argo.add_workflow(NS, "etl-4", phase="Failed")
    path = RETRY.format(ns=NS, wf="etl-4")
    argo.script("PUT", path, [503, 503, 200])
    client = await start()
    await post(client, payload(alert("etl-4")))
    await eventually(lambda: action_events(client, "success"))
    assert [r.method for r in argo.calls("PUT", path)] == ["PUT"] * 3
    assert len(await action_events(client, "retrying")) == 2


async def test_an_unknown_workflow_is_a_permanent_failure_that_escalates(
        start: Start, argo: FakeArgoServer) -> None:
    client = await start()
    await post(client, payload(alert("gone-5")))
    failed = await eventually(lambda: action_events(client, "failed"))
    assert "not found" in failed[0]["detail"]["error"]
    assert argo.calls("PUT") == []
    assert len(await action_events(client, "escalated", kind="escalation")) == 1
    assert await metric(client, "responder_manual_interventions_total") == 1.0


async def test_a_spent_budget_escalates_exactly_once(start: Start, argo: FakeArgoServer) -> None:
    argo.add_workflow(NS, "etl-6", phase="Failed")
    time = FakeTime()
    client = await start(time)
    await post(client, payload(alert("etl-6")))
    path = RETRY.format(ns=NS, wf="etl-6")
    await eventually(lambda: action_events(client, "scheduled"))
    for n, backoff in ((1, 0.2), (2, 0.4)):
        await time.advance(backoff)
        assert len(argo.calls("PUT", path)) == n
        set_phase(argo, "etl-6", "Failed")   # the retried workflow fails again
    await time.advance(0.8)                  # the budget is spent: still failing
    await eventually(lambda: action_events(client, "escalated", kind="escalation"))
    await post(client, payload(alert("etl-6")))   # Alertmanager's repeat: still failing
    await time.advance(60.0)
    assert len(argo.calls("PUT", path)) == 2
    assert len(await action_events(client, "escalated", kind="escalation")) == 1
    assert await metric(client, 'responder_retry_budget_exhausted_total{runbook="retry-transient"}') == 1.0


async def test_breaker_opens_suspends_the_cron_half_opens_and_closes_on_resolution(
        start: Start, argo: FakeArgoServer) -> None:
    argo.add_cron_workflow(NS, "nightly")
    for i in range(4):
        argo.add_workflow(NS, f"nightly-{i}", phase="Running")
    client = await start()
    for i in range(3):
        await post(client, payload(alert(f"nightly-{i}", starts=f"2026-11-28T1{i}:00:00Z")))
    suspend = f"/api/v1/cron-workflows/{NS}/nightly/suspend"
    await eventually(lambda: asyncio.sleep(0, argo.calls("PUT", suspend)))
    assert argo.store.cron_workflows[(NS, "nightly")]["spec"]["suspend"] is True
    breakers = (await (await client.get("/api/v1/breakers", headers=AUTH)).json())["breakers"]
    assert [(b["key"], b["state"]) for b in breakers] == [(f"{NS}/nightly", "open")]
    assert await metric(client, f'responder_circuit_breaker_state{{key="{NS}/nightly"}}') == 1.0

    async def half_open() -> bool:
        body = await (await client.get("/api/v1/breakers", headers=AUTH)).json()
        return bool(body["breakers"][0]["state"] == "half_open")

    await eventually(half_open, within=5)
    await post(client, payload(alert("nightly-0", status="resolved",
                                     starts="2026-11-28T10:00:00Z")))
    resume = f"/api/v1/cron-workflows/{NS}/nightly/resume"
    await eventually(lambda: asyncio.sleep(0, argo.calls("PUT", resume)))
    assert argo.store.cron_workflows[(NS, "nightly")]["spec"]["suspend"] is False
    assert len(argo.calls("PUT", suspend)) == 1
    assert await metric(client, f'responder_circuit_breaker_state{{key="{NS}/nightly"}}') == 0.0


async def test_a_retry_scheduled_before_a_restart_runs_once_after_it(
        start: Start, argo: FakeArgoServer) -> None:
    argo.add_workflow(NS, "etl-8", phase="Failed")
    time = FakeTime()
    client = await start(time)
    await post(client, payload(alert("etl-8")))
    await eventually(lambda: action_events(client, "scheduled"))
    await client.close()   # stops before the 200 ms backoff is over
    path = RETRY.format(ns=NS, wf="etl-8")
    assert argo.calls("PUT", path) == []
    again = await start(time)
    await time.advance(0.2)
    assert len(argo.calls("PUT", path)) == 1
    await time.advance(60.0)
    assert len(argo.calls("PUT", path)) == 1
    await again.close()


async def test_a_non_retryable_failure_is_escalated_not_retried(
        start: Start, argo: FakeArgoServer) -> None:
    argo.add_workflow(NS, "train-9", phase="Failed")
    time = FakeTime()
    client = await start(time)
    await post(client, payload(alert("train-9", description="OOMKilled (exit code 137)")))
    body = await eventually(lambda: _done(client))
    assert body["analysis"]["category"] == "ResourceExhaustion"
    assert body["runbooks"] == ["escalate-the-rest"]
    await time.advance(60.0)
    assert argo.calls("PUT") == []


async def test_pause_holds_every_action_and_survives_restart(
        start: Start, argo: FakeArgoServer) -> None:
    argo.add_workflow(NS, "etl-10", phase="Failed")
    time = FakeTime()
    client = await start(time)
    assert (await client.post("/api/v1/pause", headers=AUTH)).status == 200
    await client.close()
    client = await start(time)
    status = await (await client.get("/api/v1/status", headers=AUTH)).json()
    assert status["paused"] is True
    await post(client, payload(alert("etl-10")))
    await eventually(lambda: action_events(client, "paused"))
    for _ in range(10):
        await time.advance(1.0)
    assert argo.calls("PUT") == []
    assert len(await action_events(client, "paused")) == 1   # held, recorded once


async def test_an_action_held_by_a_pause_runs_once_resumed(
        start: Start, argo: FakeArgoServer) -> None:
    argo.add_workflow(NS, "etl-13", phase="Failed")
    time = FakeTime()
    client = await start(time)
    assert (await client.post("/api/v1/pause", headers=AUTH)).status == 200
    await post(client, payload(alert("etl-13")))
    await eventually(lambda: action_events(client, "paused"))
    await time.advance(5.0)
    assert argo.calls("PUT") == []
    assert (await client.post("/api/v1/resume", headers=AUTH)).status == 200
    await time.advance(1.0)
    assert len(argo.calls("PUT", RETRY.format(ns=NS, wf="etl-13"))) == 1


async def _done(client: TestClient[Any, Any]) -> dict[str, Any] | None:
    body = await (await client.get("/api/v1/events", headers=AUTH)).json()
    done = [a for a in body["alerts"] if a["state"] == "done"]
    return done[0] if done else None


async def test_an_alert_without_useful_text_is_classified_from_the_workflow_itself(
        start: Start, argo: FakeArgoServer) -> None:
    argo.add_workflow(NS, "train-11", phase="Failed", message="child 'train-11-123' failed",
                      nodes=[{"name": "train", "phase": "Failed", "message": "OOMKilled",
                              "exit_code": 137}])
    client = await start()
    await post(client, payload(alert("train-11", description="Workflow failed")))
    body = await eventually(lambda: _done(client))
    assert body["analysis"]["category"] == "ResourceExhaustion"
    assert (body["analysis"]["source"], body["analysis"]["evidence"]) == ("pattern", "workflow")
    assert body["runbooks"] == ["escalate-the-rest"]
    assert argo.calls("GET", f"/api/v1/workflows/{NS}/train-11")
    assert argo.calls("PUT") == []


async def test_an_alert_storm_on_one_workflow_is_rate_limited_and_recorded(
        tmp_path: Path, write_config: Callable[..., Path], argo: FakeArgoServer,
        aiohttp_client: Callable[..., Any]) -> None:
    limited = {"runbooks": [{**RUNBOOKS["runbooks"][0], "breaker": None,
                             "rate_limit": {"max_actions": 1, "window": "1m"}}]}
    del limited["runbooks"][0]["breaker"]
    (tmp_path / "limited.yaml").write_text(yaml.safe_dump(limited, sort_keys=False))
    (tmp_path / "argo-token").write_text("argo-token")
    config = write_config({"rules": [str(tmp_path / "limited.yaml")],
                           "argo": {"server": argo.url, "token_file": "argo-token"}})
    time = FakeTime()
    client = await aiohttp_client(create_app(load_runtime(config), registry=CollectorRegistry(),
                                             clock=time.clock, sleep=time.sleep))
    await time.asleep()
    argo.add_workflow(NS, "etl-12", phase="Failed")
    for hour in range(3):   # three firings of one workflow: three alert instances
        await post(client, payload(alert("etl-12", starts=f"2026-11-28T1{hour}:00:00Z")))
    await eventually(lambda: _scheduled(client, 3))
    await time.advance(0.2)
    limited_events = await action_events(client, "rate_limited")
    assert limited_events[0]["target"] == f"workflow:{NS}/etl-12"
    await time.advance(30.0)                 # within the 1m window
    assert len(argo.calls("PUT", RETRY.format(ns=NS, wf="etl-12"))) == 1
    assert await metric(client, 'responder_actions_total{action="argo.retry",outcome="rate_limited"}') >= 1.0


async def test_a_runbook_failing_to_render_at_run_time_is_logged_counted_and_escalated(
        start: Start, argo: FakeArgoServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="responder.notify")
    client = await start()
    broken = alert("etl-9")
    del broken["labels"]["workflow"]      # retry-transient renders {{ labels.workflow }}
    await post(client, payload(broken))
    failed = await eventually(lambda: action_events(client, "plan_failed", kind="error"))
    assert "workflow" in failed[0]["detail"]["error"]
    escalated = await eventually(lambda: action_events(client, "escalated", kind="escalation"))
    assert escalated[0]["runbook"] == "retry-transient"
    assert "cannot be planned" in escalated[0]["detail"]["reason"]
    assert await metric(client, 'responder_plan_errors_total{runbook="retry-transient"}') == 1.0
    assert await metric(client, "responder_manual_interventions_total") == 1.0
    assert any("retry-transient cannot be planned" in r.getMessage() and r.levelname == "WARNING"
               for r in caplog.records)
    assert argo.calls("PUT") == []

    def paged() -> list[dict[str, Any]]:
        lines = [json.loads(r.getMessage()) for r in caplog.records
                 if r.name == "responder.notify"]
        return [m for m in lines if m["notification"] == "pager" and m["event"] == "escalation"]

    assert len(await eventually(paged)) == 1


async def _scheduled(client: TestClient[Any, Any], count: int) -> bool:
    return len(await action_events(client, "scheduled")) >= count


async def test_a_resolve_before_the_retry_cancels_it_and_the_audit_log_says_so(
        start: Start, argo: FakeArgoServer) -> None:
    argo.add_workflow(NS, "etl-9", phase="Failed")
    time = FakeTime()                  # the retry's backoff never elapses in this test
    client = await start(time)
    await post(client, payload(alert("etl-9")))
    await eventually(lambda: action_events(client, "scheduled"))
    await post(client, payload(alert("etl-9", status="resolved")))
    shown = await eventually(lambda: action_events(client, "cancelled"))
    (cancelled,) = {json.dumps(e, sort_keys=True) for e in shown}   # under both its rows
    assert (json.loads(cancelled)["action"], json.loads(cancelled)["detail"]["reason"]) == (
        "argo.retry", "alert resolved")
    body = await (await client.get("/api/v1/events?limit=10", headers=AUTH)).json()
    (firing,) = [a for a in body["alerts"] if a["status"] == "firing"]
    actions = [e for e in firing["events"] if e["kind"] == "action"]
    assert [e["outcome"] for e in actions] == ["scheduled", "cancelled"]
    assert argo.calls("PUT", RETRY.format(ns=NS, wf="etl-9")) == []
