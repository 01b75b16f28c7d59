"""Notification delivery through HTTP: what Slack, a real SMTP server and PagerDuty receive.

Each test runs the whole service in-process (``create_app`` + ``aiohttp_client``) with its
channels pointed at the fakes in ``tests/fakes`` (Slack and PagerDuty answer and refuse like
the real APIs; email goes to aiosmtpd with STARTTLS on a ``trustme`` certificate and AUTH),
posts Alertmanager webhooks and asserts at the boundaries: the requests the upstreams
received, metric samples and the audit log of ``/api/v1/events``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry

from responder.app import create_app
from responder.journal import JournalUnavailable, SqliteJournal
from responder.load import load_runtime
from tests.conftest import TOKEN, eventually
from tests.fakes import Reply
from tests.fakes.clock import FakeTime
from tests.fakes.pagerduty import FakePagerDuty
from tests.fakes.slack import FakeSlack
from tests.fakes.smtp import SmtpServer, tls_files
from tests.fakes.webhook_sink import FakeWebhookSink

AUTH = {"Authorization": f"Bearer {TOKEN}"}
NS = "taskmaster"
ROUTING_KEY = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY42"
SMTP_USER, SMTP_PASSWORD = "responder", "correct horse battery staple"
OOM = "OOMKilled (exit code 137)"

Client = TestClient[Any, Any]


class TimedSlack(FakeSlack):
    """The fake Slack, noting when each answer left and its status (pacing, Retry-After)."""

    def __init__(self) -> None:
        super().__init__()
        self.answered: list[tuple[float, int]] = []
        self.app.on_response_prepare.append(self._note)

    async def _note(self, request: web.Request, response: web.StreamResponse) -> None:
        self.answered.append((time.monotonic(), response.status))


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture
async def slack() -> AsyncIterator[TimedSlack]:
    async with TimedSlack() as fake:
        yield fake


@pytest.fixture
async def pagerduty() -> AsyncIterator[FakePagerDuty]:
    async with FakePagerDuty(routing_keys={ROUTING_KEY}) as fake:
        yield fake


@pytest.fixture
async def smtp(tmp_path: Path) -> AsyncIterator[SmtpServer]:
    async with SmtpServer(tls_files(tmp_path), mode="starttls",
                          users={SMTP_USER: SMTP_PASSWORD}) as server:
        yield server


@pytest.fixture
async def sink() -> AsyncIterator[FakeWebhookSink]:
    async with FakeWebhookSink() as fake:
        yield fake


Configure = Callable[..., Path]


@pytest.fixture
def configure(tmp_path: Path, write_config: Callable[..., Path]) -> Configure:
    """responder.yaml with the given channels and runbooks (written next to it)."""

    def write(channels: dict[str, Any], runbooks: list[dict[str, Any]]) -> Path:
        (tmp_path / "runbooks.yaml").write_text(
            yaml.safe_dump({"runbooks": runbooks}, sort_keys=False))
        return write_config({"rules": [str(tmp_path / "runbooks.yaml")]}, channels=channels)

    return write


Start = Callable[[Path], Awaitable[Client]]


@pytest.fixture
def start(aiohttp_client: Callable[..., Awaitable[Client]]) -> Start:
    async def go(config: Path) -> Client:
        return await aiohttp_client(create_app(load_runtime(config), registry=CollectorRegistry()))

    return go


def slack_channel(tmp_path: Path, fake: FakeSlack, name: str = "oncall",
                  **extra: Any) -> dict[str, Any]:
    (tmp_path / f"{name}-url").write_text(fake.webhook_url + "\n")
    return {"type": "slack", "url_file": f"{name}-url", **extra}


def email_channel(tmp_path: Path, server: SmtpServer) -> dict[str, Any]:
    (tmp_path / "smtp-pw").write_text(SMTP_PASSWORD + "\n")
    return {"type": "email", "host": "127.0.0.1", "port": server.port, "starttls": True,
            "username": SMTP_USER, "password_file": "smtp-pw", "ca_file": "smtp-ca.pem",
            "from": "responder@example.com", "to": ["oncall@example.com"]}


def pagerduty_channel(tmp_path: Path, fake: FakePagerDuty) -> dict[str, Any]:
    (tmp_path / "pd-key").write_text(ROUTING_KEY + "\n")
    return {"type": "pagerduty", "routing_key_file": "pd-key", "url": fake.events_url}


def runbook(name: str, notify: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"name": name, "description": f"{name} for the notification tests.",
            "match": ['alertname="WorkflowFailed"'], "notify": notify, **extra}


RETRY_ACTION = {"argo.retry": {"namespace": "{{ labels.namespace }}",
                               "workflow": "{{ labels.workflow }}"}}


# -- payloads ---------------------------------------------------------------------------------
def alert(wf: str, status: str = "firing", description: str = OOM,
          severity: str = "critical", starts: str = "2026-11-28T10:00:00Z") -> dict[str, Any]:
    return {"status": status,
            "labels": {"alertname": "WorkflowFailed", "namespace": NS, "workflow": wf,
                       "severity": severity},
            "annotations": {"summary": f"Workflow {NS}/{wf} failed",
                            "description": description},
            "startsAt": starts,
            "endsAt": "2026-11-28T10:05:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=argo_workflow_failed",
            "fingerprint": f"fp-{wf}"}


def payload(*alerts: dict[str, Any], group: str = "wf") -> bytes:
    status = "resolved" if all(a["status"] == "resolved" for a in alerts) else "firing"
    return json.dumps({
        "version": "4", "groupKey": f'{{}}:{{alertname="WorkflowFailed", group="{group}"}}',
        "truncatedAlerts": 0, "status": status, "receiver": "responder",
        "groupLabels": {"alertname": "WorkflowFailed", "group": group},
        "commonLabels": {"alertname": "WorkflowFailed"}, "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093", "alerts": list(alerts)}).encode()


# -- helpers ----------------------------------------------------------------------------------
async def post(client: Client, body: bytes) -> dict[str, Any]:
    resp = await client.post("/webhook", data=body, headers=AUTH)
    assert resp.status == 200, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def audit_events(client: Client, kind: str, outcome: str | None = None,
                       action: str | None = None) -> list[dict[str, Any]]:
    """Events of the audit log, oldest first (a firing alert and its resolution share
    their events, so each is kept once)."""
    body = await (await client.get("/api/v1/events?limit=1000", headers=AUTH)).json()
    events = {e["id"]: e for a in body["alerts"] for e in a["events"]
              if e["kind"] == kind
              and (outcome is None or e.get("outcome") == outcome)
              and (action is None or e.get("action") == action)}
    return [events[k] for k in sorted(events)]


async def notification_events(client: Client, outcome: str | None = None,
                              channel: str | None = None) -> list[dict[str, Any]]:
    return await audit_events(client, "notification", outcome, channel)


async def delivered(client: Client, count: int, channel: str | None = None,
                    within: float = 10.0) -> list[dict[str, Any]]:
    """The journal's ``sent`` events once there are ``count`` of them (for ``channel``).

    Waiting on the fakes alone would race: an upstream records a request before its answer
    reaches the responder and the delivery is journaled.
    """
    async def check() -> list[dict[str, Any]] | None:
        events = await notification_events(client, "sent", channel)
        return events if len(events) >= count else None

    return await eventually(check, within)  # type: ignore[no-any-return]


async def settled(client: Client) -> bool:
    """Nothing left to do: every delivery processed, every message sent or given up (a
    test that then sees nothing more was sent has proved it without sleeping)."""
    status = await (await client.get("/api/v1/status", headers=AUTH)).json()
    return bool(status["journal_pending"] == 0)


async def metric(client: Client, sample: str) -> float:
    text = await (await client.get("/metrics")).text()
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def mrkdwn_texts(message: dict[str, Any]) -> str:
    """Every text Slack shows for ``message``, joined: header, sections, fields, context."""
    blocks = list(message.get("blocks", []))
    for attachment in message.get("attachments", []):
        blocks.extend(attachment.get("blocks", []))
    texts = [message["text"]]
    for block in blocks:
        if isinstance(block.get("text"), dict):
            texts.append(block["text"]["text"])
        texts.extend(f["text"] for f in block.get("fields", []))
        texts.extend(e["text"] for e in block.get("elements", []) if "text" in e
                     and isinstance(e["text"], str))
    return "\n".join(texts)


def parts(message: EmailMessage) -> dict[str, str]:
    return {part.get_content_type(): str(part.get_content())
            for part in message.walk() if not part.is_multipart()}


# -- a firing alert, everywhere --------------------------------------------------------------
ESCALATING = runbook("retry-or-escalate", [{"channel": "oncall"}, {"channel": "mail"}],
                     actions=[RETRY_ACTION], on_exhausted={"notify": [{"channel": "pager"}]})


async def test_a_firing_alert_reaches_slack_and_email_and_its_escalation_pages(
        tmp_path: Path, configure: Configure, start: Start, slack: TimedSlack,
        smtp: SmtpServer, pagerduty: FakePagerDuty) -> None:
    config = configure(
        {"oncall": slack_channel(tmp_path, slack), "mail": email_channel(tmp_path, smtp),
         "pager": pagerduty_channel(tmp_path, pagerduty)}, [ESCALATING])
    client = await start(config)
    await post(client, payload(alert("train-1")))
    sent = await delivered(client, 3)

    (message,) = slack.messages
    assert message["text"] == ("🔥 WorkflowFailed firing: taskmaster/train-1 — "
                               "Workflow taskmaster/train-1 failed")
    assert message["blocks"][0]["type"] == "header"
    assert message["attachments"][0]["color"] == "#D0021B"     # critical
    shown = mrkdwn_texts(message)
    for expected in ("*Workflow*\ntrain-1", "*Namespace*\ntaskmaster", "*Severity*\ncritical",
                     "*Category*\nResourceExhaustion", "*Runbook*\nretry-or-escalate",
                     OOM, "*Analysis*: ResourceExhaustion (confidence",
                     "raise resources.limits.memory",          # a recommendation
                     "*What was done*\n• argo.retry workflow:taskmaster/train-1: not_retryable"):
        assert expected in shown, expected

    (mail,) = smtp.messages
    assert smtp.logins == [(SMTP_USER, True)]                  # AUTH, after STARTTLS
    assert (mail.mail_from, mail.rcpt_tos) == ("responder@example.com", ["oncall@example.com"])
    assert mail.message["Subject"] == ("[FIRING critical] WorkflowFailed: taskmaster/train-1 - "
                                       "Workflow taskmaster/train-1 failed")
    assert mail.message.get_content_type() == "multipart/alternative"
    bodies = parts(mail.message)
    assert set(bodies) == {"text/plain", "text/html"}
    for body in bodies.values():
        for expected in ("train-1", "taskmaster", "ResourceExhaustion",
                         "raise resources.limits.memory", "not_retryable"):
            assert expected in body, expected
    assert "<html" in bodies["text/html"].lower()

    (page,) = pagerduty.events                                 # the fake validated it
    assert page["routing_key"] == ROUTING_KEY
    assert page["event_action"] == "trigger"
    assert page["dedup_key"].startswith("responder-")
    assert page["payload"]["summary"] == "Escalated: WorkflowFailed: Workflow taskmaster/train-1 failed"
    assert (page["payload"]["source"], page["payload"]["severity"]) == ("taskmaster/train-1",
                                                                        "critical")
    details = page["payload"]["custom_details"]
    assert details["escalation"] == "analysis says ResourceExhaustion is not retryable"
    assert details["analysis"]["category"] == "ResourceExhaustion"
    assert pagerduty.incidents == {page["dedup_key"]: "triggered"}

    assert sorted(e["action"] for e in sent) == ["mail", "oncall", "pager"]
    for channel in ("oncall", "mail", "pager"):
        assert await metric(client, f'responder_notifications_sent_total{{channel="{channel}"}}') == 1.0
    events = json.dumps(await notification_events(client))
    for secret in (ROUTING_KEY, SMTP_PASSWORD, slack.path):
        assert secret not in events


async def test_a_spent_retry_budget_pages_through_on_exhausted(
        tmp_path: Path, configure: Configure, pagerduty: FakePagerDuty,
        aiohttp_client: Callable[..., Awaitable[Client]]) -> None:
    # No cluster configured: the retry runs dry, and Alertmanager's re-send of the
    # still-firing alert after the backoff is what confirms the failure.
    rb = runbook("retry-then-page", [{"channel": "console"}], actions=[RETRY_ACTION],
                 retry={"limit": 1, "backoff": {"duration": "100ms", "factor": 1}},
                 on_exhausted={"notify": [{"channel": "pager"}]})
    config = configure({"console": {"type": "log"},
                        "pager": pagerduty_channel(tmp_path, pagerduty)}, [rb])
    time = FakeTime()
    client = await aiohttp_client(create_app(load_runtime(config), registry=CollectorRegistry(),
                                             clock=time.clock, sleep=time.sleep))
    await time.asleep()
    firing = payload(alert("etl-3", description="dial tcp 10.0.0.7:5432: connection refused"))
    await post(client, firing)
    await eventually(lambda: audit_events(client, "action", "scheduled"))
    await time.advance(0.1)                     # attempt 1 of 1 runs (dry)
    assert await audit_events(client, "action", "dry_run")
    await time.advance(0.1)                     # past the backoff: the re-send confirms
    await post(client, firing)
    await delivered(client, 1, "pager")
    (page,) = pagerduty.events
    assert page["event_action"] == "trigger"
    assert page["payload"]["summary"].startswith("Escalated: WorkflowFailed")
    assert page["payload"]["custom_details"]["runbook"] == "retry-then-page"
    assert await metric(client, 'responder_retry_budget_exhausted_total{runbook="retry-then-page"}') == 1.0
    await post(client, payload(alert("etl-3", status="resolved")))
    await delivered(client, 2, "pager")
    assert pagerduty.events[1]["event_action"] == "resolve"
    assert pagerduty.incidents == {page["dedup_key"]: "resolved"}


async def test_firing_then_resolved_triggers_then_resolves_one_pagerduty_incident(
        tmp_path: Path, configure: Configure, start: Start, pagerduty: FakePagerDuty) -> None:
    config = configure({"oncall": {"type": "log"}, "mail": {"type": "log"},
                        "pager": pagerduty_channel(tmp_path, pagerduty)}, [ESCALATING])
    client = await start(config)
    await post(client, payload(alert("train-2")))
    await delivered(client, 1, "pager")
    await post(client, payload(alert("train-2", status="resolved")))
    await delivered(client, 2, "pager")
    trigger, resolve = pagerduty.events
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert resolve["dedup_key"] == trigger["dedup_key"]
    assert resolve["routing_key"] == ROUTING_KEY
    assert pagerduty.incidents == {trigger["dedup_key"]: "resolved"}
    assert await metric(client, 'responder_notifications_sent_total{channel="pager"}') == 2.0


async def test_escalations_of_one_group_page_once_and_resolve_with_the_last_alert(
        tmp_path: Path, configure: Configure, start: Start, pagerduty: FakePagerDuty) -> None:
    config = configure({"oncall": {"type": "log"}, "mail": {"type": "log"},
                        "pager": pagerduty_channel(tmp_path, pagerduty)}, [ESCALATING])
    client = await start(config)
    storm = [alert(f"train-{i}") for i in range(5)]           # all out of memory: no retry
    await post(client, payload(*storm))
    await delivered(client, 1, "pager")
    assert len(await audit_events(client, "escalation", "escalated")) == 5
    assert await metric(client, "responder_manual_interventions_total") == 5.0
    await eventually(lambda: settled(client))
    (page,) = pagerduty.events                                # one page for the group
    assert page["event_action"] == "trigger"
    escalated = page["payload"]["custom_details"]["actions"]
    assert sorted(a["target"] for a in escalated) == sorted(
        f"fp-train-{i}@2026-11-28T10:00:00+00:00" for i in range(5))

    # Alertmanager re-sends the group: nothing is escalated or paged again.
    await post(client, payload(*storm))
    await eventually(lambda: settled(client))
    assert len(pagerduty.events) == 1

    # The incident stays open while any escalated alert of the group still fires.
    for i in range(4):
        await post(client, payload(alert(f"train-{i}", status="resolved"), *storm[i + 1:]))
    await eventually(lambda: audit_events(client, "escalation", "resolve_deferred"))
    await eventually(lambda: settled(client))
    assert len(pagerduty.events) == 1
    assert pagerduty.incidents == {page["dedup_key"]: "triggered"}
    await post(client, payload(alert("train-4", status="resolved")))
    await delivered(client, 2, "pager")
    assert pagerduty.events[1]["event_action"] == "resolve"
    assert pagerduty.incidents == {page["dedup_key"]: "resolved"}


async def test_a_delivery_processed_again_after_a_failed_commit_still_pages_once(
        tmp_path: Path, configure: Configure, start: Start, pagerduty: FakePagerDuty,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The escalation markers are written while the delivery is processed, its messages
    # with the delivery's last commit: when that commit fails, the delivery runs again
    # and must still page, once.
    finish = SqliteJournal.finish_deliveries
    failures: list[int] = []

    async def failing_once(self: SqliteJournal, *args: Any, **kwargs: Any) -> list[int]:
        if not failures:
            failures.append(1)
            raise JournalUnavailable("disk I/O error")
        return await finish(self, *args, **kwargs)

    monkeypatch.setattr(SqliteJournal, "finish_deliveries", failing_once)
    client = await start(configure({"oncall": {"type": "log"}, "mail": {"type": "log"},
                                    "pager": pagerduty_channel(tmp_path, pagerduty)},
                                   [ESCALATING]))
    await post(client, payload(alert("train-a"), alert("train-b")))
    await delivered(client, 1, "pager", within=15)
    await eventually(lambda: settled(client))
    assert failures == [1]
    (page,) = pagerduty.events
    assert len(page["payload"]["custom_details"]["actions"]) == 2
    assert len(await audit_events(client, "escalation", "escalated")) == 2


# -- delivery: retries, Retry-After, fallback -------------------------------------------------
NOTIFY_ONCALL = runbook("tell-oncall", [{"channel": "oncall"}])
SENT_ONCALL = 'responder_notifications_sent_total{channel="oncall"}'


async def test_slack_429_is_delivered_after_its_retry_after(
        tmp_path: Path, configure: Configure, start: Start, slack: TimedSlack) -> None:
    slack.script("POST", slack.path, [Reply(429, headers={"Retry-After": "1"})])
    client = await start(configure({"oncall": slack_channel(tmp_path, slack)}, [NOTIFY_ONCALL]))
    await post(client, payload(alert("etl-4")))
    await delivered(client, 1)
    (first, limited), (second, ok) = slack.answered
    assert (limited, ok) == (429, 200)
    assert second - first >= 1.0
    assert [e["outcome"] for e in await notification_events(client)] == [
        "queued", "retrying", "sent"]
    (retrying,) = await notification_events(client, "retrying")
    assert retrying["detail"]["retry_in"] == 1.0 and "rate_limited" in retrying["detail"]["error"]
    assert await metric(client, 'responder_notifications_sent_total{channel="oncall"}') == 1.0
    assert await metric(client, 'responder_notification_delivery_failed_total{channel="oncall"}') == 0.0


async def test_a_slack_5xx_is_retried_with_the_default_backoff(
        tmp_path: Path, configure: Configure, start: Start, slack: TimedSlack,
        sink: FakeWebhookSink) -> None:
    slack.script("POST", slack.path, [503])
    client = await start(configure(
        {"oncall": slack_channel(tmp_path, slack),
         "backup": {"type": "webhook", "url": sink.hook_url}},
        [runbook("tell-oncall", [{"channel": "oncall", "fallback": "backup"}])]))
    await post(client, payload(alert("etl-5")))
    await delivered(client, 1)
    (first, unavailable), (second, ok) = slack.answered
    assert (unavailable, ok) == (503, 200)
    assert second - first >= 1.0                   # the first retry waits 1s by default
    assert sink.received == []
    assert await metric(client, 'responder_notifications_sent_total{channel="oncall"}') == 1.0


async def test_slack_500_three_times_goes_to_the_fallback_channel(
        tmp_path: Path, configure: Configure, start: Start, slack: TimedSlack,
        sink: FakeWebhookSink) -> None:
    # Three tries in all: the default (ten, doubling from 1s) would take minutes.
    slack.script("POST", slack.path, [500, 500, 500])
    client = await start(configure(
        {"oncall": slack_channel(tmp_path, slack, retry={"max_tries": 3, "backoff": "100ms"}),
         "backup": {"type": "webhook", "url": sink.hook_url}},
        [runbook("tell-oncall", [{"channel": "oncall", "fallback": "backup"}])]))
    await post(client, payload(alert("etl-6")))
    await delivered(client, 1, "backup")
    (fallback,) = sink.received
    assert [status for _, status in slack.answered] == [500, 500, 500]
    times = [t for t, _ in slack.answered]
    assert times[1] - times[0] >= 0.1 and times[2] - times[1] >= 0.2   # doubling backoff
    assert slack.messages == []
    assert fallback["event"] == "firing"
    assert fallback["labels"]["workflow"] == "etl-6"
    assert fallback["runbook"]["name"] == "tell-oncall"
    assert await metric(client, 'responder_notification_delivery_failed_total{channel="oncall"}') == 1.0
    assert await metric(client, 'responder_notifications_sent_total{channel="oncall"}') == 0.0
    assert await metric(client, 'responder_notifications_sent_total{channel="backup"}') == 1.0
    outcomes = [(e["action"], e["outcome"]) for e in await notification_events(client)]
    assert outcomes == [("oncall", "queued"), ("oncall", "retrying"), ("oncall", "retrying"),
                        ("oncall", "failed"), ("backup", "queued"), ("backup", "sent")]
    (failed,) = await notification_events(client, "failed")
    assert failed["detail"]["fallback"] == "backup" and failed["detail"]["tries"] == 3
    assert "gave up after 3 tries" in failed["detail"]["error"]


async def test_a_refused_slack_message_goes_to_the_fallback_at_once(
        tmp_path: Path, configure: Configure, start: Start, slack: TimedSlack,
        sink: FakeWebhookSink) -> None:
    slack.script("POST", slack.path, [400])     # invalid_payload: retrying cannot help
    client = await start(configure(
        {"oncall": slack_channel(tmp_path, slack),
         "backup": {"type": "webhook", "url": sink.hook_url}},
        [runbook("tell-oncall", [{"channel": "oncall", "fallback": "backup"}])]))
    await post(client, payload(alert("etl-7")))
    await delivered(client, 1, "backup")
    assert len(sink.received) == 1
    assert [status for _, status in slack.answered] == [400]
    (failed,) = await notification_events(client, "failed")
    assert "HTTP 400: invalid_payload" in failed["detail"]["error"]
    assert await metric(client, 'responder_notification_delivery_failed_total{channel="oncall"}') == 1.0


# -- durability and storms --------------------------------------------------------------------
async def test_an_undelivered_message_is_delivered_once_after_a_restart(
        tmp_path: Path, configure: Configure, start: Start, slack: TimedSlack) -> None:
    slack.script("POST", slack.path, [500])
    config = configure({"oncall": slack_channel(tmp_path, slack)}, [NOTIFY_ONCALL])
    client = await start(config)
    await post(client, payload(alert("etl-8")))
    await eventually(lambda: notification_events(client, "retrying"))
    await client.close()                        # before the 1s backoff is over
    assert slack.messages == []
    again = await start(config)
    (sent,) = await delivered(again, 1)
    await eventually(lambda: settled(again))
    assert len(slack.messages) == 1
    assert [status for _, status in slack.answered] == [500, 200]
    assert sent["detail"]["try"] == 2
    assert await metric(again, 'responder_notifications_sent_total{channel="oncall"}') == 1.0
    await again.close()


async def test_an_alert_storm_is_grouped_rate_limited_and_nothing_is_lost(
        tmp_path: Path, configure: Configure, start: Start, slack: TimedSlack) -> None:
    groups, per_group, rate, burst = 20, 50, 8.0, 4
    client = await start(configure(
        {"oncall": slack_channel(tmp_path, slack, rate_limit={"rate": rate, "burst": burst})},
        [NOTIFY_ONCALL]))
    answers = await asyncio.gather(*(
        post(client, payload(*(alert(f"storm-{g}-{i}", severity="warning")
                               for i in range(per_group)), group=f"g{g}"))
        for g in range(groups)))
    assert sum(a["accepted"] for a in answers) == groups * per_group

    async def all_sent() -> bool:
        return await metric(client, SENT_ONCALL) == groups

    await eventually(all_sent, within=15)

    seen = set()
    for message in slack.messages:                 # one per group, every alert counted
        shown = mrkdwn_texts(message)
        assert message["text"].startswith(f"⚠️ WorkflowFailed firing: {per_group} alerts")
        assert f"*Alerts* ({per_group})" in shown and f"… and {per_group - 20} more" in shown
        (group,) = set(re.findall(r"storm-(\d+)-\d+", shown))
        seen.add(group)
    assert len(seen) == groups

    times = sorted(t for t, _ in slack.answered)    # the token bucket's pace
    for k in range(burst, groups):
        assert times[k] - times[0] >= (k + 1 - burst) / rate - 0.05, k
    await eventually(lambda: settled(client))
    assert len(slack.requests) == groups           # nothing twice
    assert await metric(client, 'responder_alerts_received_total{status="firing"}') == groups * per_group
    assert await metric(client, SENT_ONCALL) == groups
    status = await (await client.get("/api/v1/status", headers=AUTH)).json()
    assert status["journal_pending"] == 0
    assert len(await notification_events(client, "queued")) == groups
    assert len(await notification_events(client, "sent")) == groups


async def test_log_messages_sent_right_after_their_delivery_still_keep_the_channels_pace(
        configure: Configure, start: Start, caplog: pytest.LogCaptureFixture) -> None:
    # A `log` channel's messages are queued claimed and sent by the pipeline itself once
    # their delivery is written; the ones its token bucket holds back go back to the
    # outbox, which sends them when their turn comes. Each goes out once.
    groups, rate, burst = 6, 20.0, 2
    caplog.set_level(logging.INFO, logger="responder.notify")
    client = await start(configure(
        {"oncall": {"type": "log", "rate_limit": {"rate": rate, "burst": burst}}},
        [NOTIFY_ONCALL]))
    for g in range(groups):
        await post(client, payload(alert(f"paced-{g}"), group=f"g{g}"))
    await eventually(lambda: settled(client))
    lines = [(r.created, json.loads(r.getMessage())) for r in caplog.records
             if r.name == "responder.notify" and r.getMessage().startswith("{")]
    assert sorted(b["subject"] for _, b in lines) == sorted(f"{NS}/paced-{g}" for g in range(groups))
    times = sorted(t for t, _ in lines)
    for k in range(burst, groups):
        assert times[k] - times[0] >= (k + 1 - burst) / rate - 0.05, k
    assert await metric(client, SENT_ONCALL) == groups
    assert len(await notification_events(client, "queued")) == groups
    assert len(await notification_events(client, "sent")) == groups
