"""The people's controls through HTTP: pauses that hold actions, cancelling, approvals.

The fake Argo Server records every request, so "the action ran once" and "nothing ran" are
read from it; held, cancelled and rejected actions are read from the attempts the API lists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry

from responder.app import create_app
from responder.load import load_runtime
from tests.conftest import eventually
from tests.fakes.argo_server import FakeArgoServer
from tests.service.test_actions import (
    AUTH,
    NS,
    RETRY,
    RUNBOOKS,
    alert,
    argo,  # noqa: F401  (fixture)
    metric,
    payload,
    post,
    set_phase,
)

FAST = {"limit": 2, "backoff": {"duration": "50ms", "factor": 2, "max_duration": "1s"}}


def runbook(approval: dict[str, Any] | None = None) -> dict[str, Any]:
    rb = {**RUNBOOKS["runbooks"][0], "retry": FAST}
    del rb["breaker"]
    if approval is not None:
        rb["approval"] = approval
    return {"runbooks": [rb]}


Start = Callable[..., Any]


@pytest.fixture
def start(tmp_path: Path, write_config: Callable[..., Path], argo: FakeArgoServer,  # noqa: F811
          aiohttp_client: Callable[..., Any]) -> Start:
    (tmp_path / "argo-token").write_text("argo-token")

    async def go(approval: dict[str, Any] | None = None) -> TestClient[Any, Any]:
        (tmp_path / "runbooks.yaml").write_text(yaml.safe_dump(runbook(approval)))
        config = write_config({"rules": [str(tmp_path / "runbooks.yaml")],
                               "argo": {"server": argo.url, "token_file": "argo-token"}})
        app = create_app(load_runtime(config), registry=CollectorRegistry())
        return await aiohttp_client(app)  # type: ignore[no-any-return]

    return go


async def call(client: TestClient[Any, Any], method: str, path: str,
               body: dict[str, Any] | None = None, status: int = 200) -> Any:
    resp = await client.request(method, path, json=body, headers=AUTH)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def attempts(client: TestClient[Any, Any], state: str) -> list[dict[str, Any]]:
    return (await call(client, "GET", f"/api/v1/attempts?state={state}"))[  # type: ignore[no-any-return]
        "attempts"]


def retries(argo: FakeArgoServer, wf: str) -> list[Any]:  # noqa: F811
    return argo.calls("PUT", RETRY.format(ns=NS, wf=wf))


# -- pauses ------------------------------------------------------------------------------
async def test_a_scoped_pause_holds_matching_actions_until_it_is_lifted(
        start: Start, argo: FakeArgoServer) -> None:  # noqa: F811
    argo.add_workflow(NS, "etl-1", phase="Failed")
    argo.add_workflow("other", "etl-2", phase="Failed")
    client = await start()
    pause = (await call(client, "POST", "/api/v1/pause", {
        "matchers": [f'namespace="{NS}"'], "reason": "maintenance", "by": "alice"}))["pause"]
    assert pause["matchers"] == [f'namespace="{NS}"'] and pause["by"] == "alice"
    other = {**alert("etl-2"), "fingerprint": "fp-other"}
    other["labels"] = {**other["labels"], "namespace": "other"}
    await post(client, payload(alert("etl-1"), other))
    await eventually(lambda: asyncio.sleep(0, argo.calls("PUT", RETRY.format(ns="other",
                                                                                wf="etl-2"))))
    (held,) = await eventually(lambda: attempts(client, "held"))
    assert (held["target"], held["labels"]["workflow"]) == (f"workflow:{NS}/etl-1", "etl-1")
    assert retries(argo, "etl-1") == []
    listed = (await call(client, "GET", "/api/v1/pauses"))["pauses"]
    assert [p["reason"] for p in listed] == ["maintenance"]
    await call(client, "DELETE", f"/api/v1/pauses/{pause['id']}")
    await eventually(lambda: asyncio.sleep(0, retries(argo, "etl-1")))
    assert len(retries(argo, "etl-1")) == 1
    assert await attempts(client, "held") == []
    await call(client, "DELETE", f"/api/v1/pauses/{pause['id']}", status=404)


async def test_a_pause_expires_by_itself_and_its_held_action_runs(
        start: Start, argo: FakeArgoServer) -> None:  # noqa: F811
    argo.add_workflow(NS, "etl-3", phase="Failed")
    client = await start()
    await call(client, "POST", "/api/v1/pause", {"until": "700ms"})
    await post(client, payload(alert("etl-3")))
    await eventually(lambda: attempts(client, "held"))
    assert (await call(client, "GET", "/api/v1/status"))["paused"] is True
    await eventually(lambda: asyncio.sleep(0, retries(argo, "etl-3")))
    assert (await call(client, "GET", "/api/v1/pauses"))["pauses"] == []


async def test_a_held_action_can_be_cancelled_and_is_not_run_after_resume(
        start: Start, argo: FakeArgoServer) -> None:  # noqa: F811
    argo.add_workflow(NS, "etl-4", phase="Failed")
    client = await start()
    await call(client, "POST", "/api/v1/pause", {})
    await post(client, payload(alert("etl-4")))
    (held,) = await eventually(lambda: attempts(client, "held"))
    done = await call(client, "POST", f"/api/v1/attempts/{held['id']}/cancel", {"by": "bob"})
    assert done["state"] == "cancelled"
    again = await call(client, "POST", f"/api/v1/attempts/{held['id']}/cancel", status=409)
    assert "is cancelled" in again["error"]
    await call(client, "POST", "/api/v1/attempts/99999/cancel", status=404)
    assert "'bogus' is not one of approval, held" in (
        await call(client, "GET", "/api/v1/attempts?state=held,bogus", status=400))["error"]
    assert [a["id"] for a in await attempts(client, "cancelled,done")] == [held["id"]]
    huge = "9" * 23       # past what the journal stores: no such row, not a 500
    for method, path in (("POST", f"/api/v1/attempts/{huge}/cancel"),
                         ("DELETE", f"/api/v1/pauses/{huge}"),
                         ("POST", f"/api/v1/approvals/{huge}/approve"),
                         ("POST", f"/api/v1/approvals/{huge}/reject"),
                         ("POST", f"/api/v1/alerts/{huge}/category")):
        body = await call(client, method, path, {"category": "Network"}, status=404)
        assert huge in body["error"], (path, body)
    assert (await call(client, "POST", "/api/v1/resume"))["lifted"] == 1
    (row,) = await attempts(client, "cancelled")
    assert (row["id"], row["detail"]) == (held["id"], "cancelled by bob")
    assert await attempts(client, "scheduled,held") == []
    assert retries(argo, "etl-4") == []


async def test_cancelling_an_action_that_waits_for_approval_closes_it(
        start: Start, argo: FakeArgoServer) -> None:  # noqa: F811
    argo.add_workflow(NS, "etl-5", phase="Failed")
    client = await start({"timeout": "1h", "on_timeout": "escalate"})
    await post(client, payload(alert("etl-5")))
    (waiting,) = await eventually(lambda: attempts(client, "approval"))
    await call(client, "POST", f"/api/v1/attempts/{waiting['id']}/cancel")
    assert (await call(client, "GET", "/api/v1/approvals"))["approvals"] == []


async def test_bad_pauses_are_refused_with_the_reason(start: Start) -> None:
    client = await start()
    bad = await call(client, "POST", "/api/v1/pause", {"matchers": ["namespace=~\"(\""]},
                     status=400)
    assert "bad regex" in bad["error"]
    bad = await call(client, "POST", "/api/v1/pause", {"until": "tomorrow"}, status=400)
    assert "until: expected a duration" in bad["error"]
    bad = await call(client, "POST", "/api/v1/pause", {"until": "2020-01-01T00:00:00Z"},
                     status=400)
    assert "in the past" in bad["error"]
    ok = await call(client, "POST", "/api/v1/pause", {"until": "2999-01-01T00:00:00Z"})
    assert ok["pause"]["until"] == 32472144000.0


# -- approvals -----------------------------------------------------------------------------
ASK = {"timeout": "1h", "on_timeout": "escalate", "notify": [{"channel": "oncall"}]}


async def test_an_approved_action_runs_once_and_a_second_decision_is_409(
        start: Start, argo: FakeArgoServer) -> None:  # noqa: F811
    argo.add_workflow(NS, "etl-6", phase="Failed")
    client = await start(ASK)
    await post(client, payload(alert("etl-6")))
    (asked,) = await eventually(lambda: _approvals(client))
    assert (asked["runbook"], asked["action"], asked["on_timeout"]) == (
        "retry-transient", "argo.retry", "escalate")
    assert retries(argo, "etl-6") == []
    answers = await asyncio.gather(*(
        client.post(f"/api/v1/approvals/{asked['id']}/approve",
                    json={"by": name, "comment": "go"}, headers=AUTH)
        for name in ("alice", "bob", "carol")))
    assert sorted(r.status for r in answers) == [200, 409, 409]
    (winner,) = [await r.json() for r in answers if r.status == 200]
    await eventually(lambda: asyncio.sleep(0, retries(argo, "etl-6")))
    audit = (await call(client, "GET", "/api/v1/audit?kind=approval"))["events"]
    assert [(e["outcome"], e["detail"]["by"]) for e in audit if e["outcome"] != "asked"] == [
        ("approved", winner["by"])]
    assert len(retries(argo, "etl-6")) == 1
    assert await metric(client, 'responder_approvals_total{decision="approved"}') == 1.0
    await call(client, "POST", f"/api/v1/approvals/{asked['id']}/approve", status=409)
    await call(client, "POST", "/api/v1/approvals/424242/approve", status=404)


async def _approvals(client: TestClient[Any, Any]) -> list[dict[str, Any]]:
    return (await call(client, "GET", "/api/v1/approvals"))["approvals"]  # type: ignore[no-any-return]


async def test_approve_wins_and_the_retry_runs_once(start: Start, argo: FakeArgoServer) -> None:  # noqa: F811
    argo.add_workflow(NS, "etl-7", phase="Failed")
    client = await start(ASK)
    await post(client, payload(alert("etl-7")))
    (asked,) = await eventually(lambda: _approvals(client))
    body = await call(client, "POST", f"/api/v1/approvals/{asked['id']}/approve",
                      {"by": "alice", "comment": "looks transient"})
    assert (body["decision"], body["by"], body["comment"]) == ("approved", "alice",
                                                               "looks transient")
    await eventually(lambda: asyncio.sleep(0, retries(argo, "etl-7")))
    assert len(retries(argo, "etl-7")) == 1
    assert await metric(client, 'responder_approvals_total{decision="approved"}') == 1.0


async def test_a_rejected_action_never_runs(start: Start, argo: FakeArgoServer) -> None:  # noqa: F811
    argo.add_workflow(NS, "etl-8", phase="Failed")
    client = await start(ASK)
    await post(client, payload(alert("etl-8")))
    (asked,) = await eventually(lambda: _approvals(client))
    await call(client, "POST", f"/api/v1/approvals/{asked['id']}/reject", {"comment": "no"})
    (row,) = await attempts(client, "cancelled")
    assert (row["outcome"], row["detail"]) == ("rejected", "rejected by webhook-credential")
    assert await attempts(client, "scheduled,waiting,held,approval") == []
    assert retries(argo, "etl-8") == []
    assert await metric(client, 'responder_approvals_total{decision="rejected"}') == 1.0


async def test_approved_after_the_workflow_recovered_is_nothing_to_do(
        start: Start, argo: FakeArgoServer) -> None:  # noqa: F811
    argo.add_workflow(NS, "etl-9", phase="Failed")
    client = await start(ASK)
    await post(client, payload(alert("etl-9")))
    (asked,) = await eventually(lambda: _approvals(client))
    set_phase(argo, "etl-9", "Succeeded")
    await call(client, "POST", f"/api/v1/approvals/{asked['id']}/approve")

    async def outcome() -> Any:
        body = await (await client.get("/api/v1/events", headers=AUTH)).json()
        return [e for a in body["alerts"] for e in a["events"]
                if e.get("outcome") == "nothing_to_do"]
    await eventually(outcome)
    assert retries(argo, "etl-9") == []


async def test_an_approval_survives_a_restart(start: Start, argo: FakeArgoServer) -> None:  # noqa: F811
    argo.add_workflow(NS, "etl-10", phase="Failed")
    client = await start(ASK)
    await post(client, payload(alert("etl-10")))
    await eventually(lambda: _approvals(client))
    await client.close()
    client = await start(ASK)
    (asked,) = await _approvals(client)
    await call(client, "POST", f"/api/v1/approvals/{asked['id']}/approve")
    await eventually(lambda: asyncio.sleep(0, retries(argo, "etl-10")))


async def test_no_decision_in_time_escalates(start: Start, argo: FakeArgoServer) -> None:  # noqa: F811
    argo.add_workflow(NS, "etl-11", phase="Failed")
    client = await start({"timeout": "300ms", "on_timeout": "escalate"})
    await post(client, payload(alert("etl-11")))
    await eventually(lambda: attempts(client, "cancelled"))
    (row,) = await attempts(client, "cancelled")
    assert row["outcome"] == "timeout"

    async def escalated() -> Any:
        body = await (await client.get("/api/v1/events", headers=AUTH)).json()
        return [e for a in body["alerts"] for e in a["events"] if e["kind"] == "escalation"]
    (event,) = await eventually(escalated)
    assert event["detail"]["reason"] == "no decision on the approval in time"
    assert retries(argo, "etl-11") == []
    assert await metric(client, 'responder_approvals_total{decision="timeout"}') == 1.0


async def test_no_decision_in_time_proceeds_when_configured(
        start: Start, argo: FakeArgoServer) -> None:  # noqa: F811
    argo.add_workflow(NS, "etl-12", phase="Failed")
    client = await start({"timeout": "300ms", "on_timeout": "proceed"})
    await post(client, payload(alert("etl-12")))
    await eventually(lambda: asyncio.sleep(0, retries(argo, "etl-12")))
    assert len(retries(argo, "etl-12")) == 1
