"""Slack's Approve / Reject buttons end to end: the approval message reaches the fake
Slack with buttons, a click signed as Slack signs decides, the message is updated through
``response_url``; unsigned, stale, replayed or unlisted clicks change nothing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
import yaml
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry

from responder.app import create_app
from responder.load import load_runtime
from tests.conftest import eventually
from tests.fakes.argo_server import FakeArgoServer
from tests.fakes.slack import FakeSlack, sign
from tests.service.test_actions import NS, RETRY, alert, argo, payload, post  # noqa: F401
from tests.service.test_controls import runbook

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"   # Slack's documentation example's shape


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        yield server


Start = Callable[..., Any]


@pytest.fixture
def start(tmp_path: Path, write_config: Callable[..., Path], argo: FakeArgoServer,  # noqa: F811
          slack: FakeSlack, aiohttp_client: Callable[..., Any]) -> Start:
    (tmp_path / "argo-token").write_text("argo-token")
    (tmp_path / "slack-url").write_text(slack.webhook_url)
    (tmp_path / "signing").write_text(SECRET + "\n")

    async def go(approvers: list[str] | None = None) -> TestClient[Any, Any]:
        ask = {"timeout": "1h", "on_timeout": "escalate", "notify": [{"channel": "oncall"}]}
        (tmp_path / "runbooks.yaml").write_text(yaml.safe_dump(runbook(ask)))
        oncall: dict[str, Any] = {"type": "slack", "url_file": "slack-url",
                                  "signing_secret_file": "signing"}
        if approvers is not None:
            oncall["approvers"] = approvers
        config = write_config({"rules": [str(tmp_path / "runbooks.yaml")],
                               "argo": {"server": argo.url, "token_file": "argo-token"}},
                              channels={"console": {"type": "log"}, "oncall": oncall,
                                        "pager": {"type": "log"}})
        app = create_app(load_runtime(config), registry=CollectorRegistry())
        return await aiohttp_client(app)  # type: ignore[no-any-return]

    return go


def asking(slack: FakeSlack) -> dict[str, Any] | None:
    for message in slack.messages:
        if "needs approval" in message["text"]:
            return message
    return None


async def asked(client: TestClient[Any, Any], slack: FakeSlack, workflow: str) -> dict[str, Any]:
    """Post a failure of ``workflow``; the Slack message asking for its approval."""
    await post(client, payload(alert(workflow)))
    return await eventually(lambda: asyncio.sleep(0, asking(slack)))  # type: ignore[no-any-return]


async def click(client: TestClient[Any, Any], body: bytes, headers: dict[str, str]) -> int:
    resp = await client.post("/slack/interactions", data=body, headers=headers)
    return resp.status


async def test_an_approve_click_signed_by_slack_runs_the_retry_and_updates_the_message(
        start: Start, slack: FakeSlack, argo: FakeArgoServer) -> None:  # noqa: F811
    argo.add_workflow(NS, "etl-30", phase="Failed")
    client = await start()
    message = await asked(client, slack, "etl-30")
    body = slack.interaction(message, "approve")
    headers = sign(SECRET, body, int(time.time()))
    assert await click(client, body, headers) == 200
    await eventually(lambda: asyncio.sleep(0, argo.calls("PUT", RETRY.format(ns=NS, wf="etl-30"))))
    (update,) = slack.responses
    assert update["replace_original"] is True and "Approved by alice" in update["text"]
    assert await click(client, body, headers) == 401          # the same request again: replay
    again = slack.interaction(message, "reject")
    assert await click(client, again, sign(SECRET, again, int(time.time()))) == 200
    assert "already decided: approved by alice (Slack)" in slack.responses[-1]["text"]
    assert len(argo.calls("PUT", RETRY.format(ns=NS, wf="etl-30"))) == 1


async def test_unsigned_stale_or_wrongly_signed_clicks_are_401_and_change_nothing(
        start: Start, slack: FakeSlack) -> None:
    client = await start()
    message = await asked(client, slack, "etl-31")
    body = slack.interaction(message, "approve")
    now = int(time.time())
    assert await click(client, body, {"Content-Type": "application/x-www-form-urlencoded"}) == 401
    assert await click(client, body, sign(SECRET, body, now - 301)) == 401
    assert await click(client, body, sign("not-the-secret", body, now)) == 401
    forged = body.replace(b"approve", b"reject")
    headers = sign(SECRET, body, now)
    assert await click(client, forged, headers) == 401
    approvals = await (await client.get("/api/v1/approvals", headers={
        "Authorization": "Bearer s3cret-t0ken-for-tests"})).json()
    assert len(approvals["approvals"]) == 1 and slack.responses == []


async def test_a_user_who_is_not_an_approver_cannot_decide(
        start: Start, slack: FakeSlack) -> None:
    client = await start(approvers=["U0BOB"])
    message = await asked(client, slack, "etl-32")
    body = slack.interaction(message, "reject", user="U0MALLORY", username="mallory")
    assert await click(client, body, sign(SECRET, body, int(time.time()))) == 200
    assert "mallory is not among this channel's approvers" in slack.responses[-1]["text"]
    approvals = await (await client.get("/api/v1/approvals", headers={
        "Authorization": "Bearer s3cret-t0ken-for-tests"})).json()
    assert len(approvals["approvals"]) == 1
    body = slack.interaction(message, "reject", user="U0BOB", username="bob")
    assert await click(client, body, sign(SECRET, body, int(time.time()))) == 200
    assert "Rejected by bob" in slack.responses[-1]["text"]


async def test_a_signed_click_naming_no_approval_the_journal_can_hold_is_400_not_500(
        start: Start, slack: FakeSlack) -> None:
    client = await start()
    message = await asked(client, slack, "etl-33")
    body = slack.interaction(message, "approve")
    payload_json = json.loads(parse_qs(body.decode())["payload"][0])
    huge = dict(payload_json, actions=[dict(payload_json["actions"][0], value="9" * 23)])
    flat = dict(payload_json, user="bob")
    for changed in (huge, flat):
        forged = urlencode({"payload": json.dumps(changed)}).encode()
        resp = await client.post("/slack/interactions", data=forged,
                                 headers=sign(SECRET, forged, int(time.time())))
        assert resp.status == 400
        assert "not an Approve / Reject interaction" in await resp.text()
    assert slack.responses == []
