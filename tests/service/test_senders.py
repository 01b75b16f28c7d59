"""Senders against fakes that answer like Slack, PagerDuty and a webhook receiver, and a real
SMTP server (aiosmtpd) with STARTTLS, implicit TLS and AUTH."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from responder.config.channels import ChannelSpec, parse_channels
from responder.config.reader import Section
from responder.config.yamlmarks import load_text
from responder.errors import ConfigError, PermanentError, TemporaryError
from responder.model import sample_group
from responder.notify.email import EmailSender
from responder.notify.log import LogSender
from responder.notify.pagerduty import PagerDutySender
from responder.notify.render import Message, Templates, build_context
from responder.notify.senders import build_senders
from responder.notify.slack import SlackSender
from responder.notify.webhook import WebhookSender
from tests.fakes import Reply
from tests.fakes.pagerduty import FakePagerDuty
from tests.fakes.slack import FakeSlack
from tests.fakes.smtp import SmtpServer, TLSFiles, tls_files
from tests.fakes.webhook_sink import FakeWebhookSink

REPO = Path(__file__).resolve().parents[2]
ROUTING_KEY = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY42"
SMTP_PASSWORD = "correct horse battery staple"


def channels(text: str, base_dir: Path) -> dict[str, ChannelSpec]:
    errors: list[ConfigError] = []
    specs = parse_channels(Section(load_text(text, "responder.yaml"), errors,
                                   where="channels", base_dir=base_dir))
    assert errors == []
    return specs


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture(scope="module")
def templates() -> Templates:
    return Templates.load(REPO / "templates")


def firing_context(event: str = "firing") -> Any:
    group = sample_group("resolved") if event == "resolved" else sample_group("firing")
    return build_context(group, runbook={"name": "retry-transient"},
                         argo_ui_url="https://argo.example.com", event=event)


# -- Slack ----------------------------------------------------------------------------------
@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


def slack_sender(slack: FakeSlack, session: aiohttp.ClientSession, tmp_path: Path,
                 timeout: str = "5s") -> SlackSender:
    (tmp_path / "slack-url").write_text(slack.webhook_url + "\n")
    spec = channels(f"oncall: {{type: slack, url_file: slack-url, timeout: {timeout}}}",
                    tmp_path)["oncall"]
    return SlackSender(spec, session)


async def test_slack_receives_the_rendered_message_as_json(
        slack: FakeSlack, session: aiohttp.ClientSession, tmp_path: Path,
        templates: Templates) -> None:
    sender = slack_sender(slack, session, tmp_path)
    spec = channels("oncall: {type: slack, url: https://hooks.slack.com/x}", tmp_path)["oncall"]
    message = templates.render(spec, firing_context())
    await sender.send(message)
    (call,) = slack.calls("POST", slack.path)
    assert call.content_type == "application/json"
    assert slack.messages == [message.body]


async def test_slack_429_is_temporary_with_the_retry_after_delay(
        slack: FakeSlack, session: aiohttp.ClientSession, tmp_path: Path) -> None:
    slack.script("POST", slack.path, [Reply(429, headers={"Retry-After": "2"})])
    sender = slack_sender(slack, session, tmp_path)
    with pytest.raises(TemporaryError) as caught:
        await sender.send(Message("oncall", "slack", {"text": "hello"}))
    assert caught.value.delay == 2
    assert "rate_limited" in str(caught.value)


async def test_slack_500_is_temporary(slack: FakeSlack, session: aiohttp.ClientSession,
                                      tmp_path: Path) -> None:
    slack.script("POST", slack.path, [500])
    with pytest.raises(TemporaryError) as caught:
        await slack_sender(slack, session, tmp_path).send(
            Message("oncall", "slack", {"text": "hello"}))
    assert caught.value.delay is None


async def test_slack_invalid_payload_is_permanent(
        slack: FakeSlack, session: aiohttp.ClientSession, tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="HTTP 400: invalid_payload"):
        await slack_sender(slack, session, tmp_path).send(Message("oncall", "slack", {}))
    assert slack.messages == []


async def test_slack_refuses_more_than_fifty_blocks(
        slack: FakeSlack, session: aiohttp.ClientSession, tmp_path: Path) -> None:
    blocks = [{"type": "divider"}] * 51
    with pytest.raises(PermanentError, match="invalid_payload"):
        await slack_sender(slack, session, tmp_path).send(
            Message("oncall", "slack", {"text": "t", "blocks": blocks}))


async def test_an_unreachable_slack_is_temporary(session: aiohttp.ClientSession,
                                                 tmp_path: Path) -> None:
    async with FakeSlack() as gone:
        pass
    with pytest.raises(TemporaryError, match="cannot connect"):
        await slack_sender(gone, session, tmp_path).send(
            Message("oncall", "slack", {"text": "hello"}))


async def test_a_slow_slack_times_out_as_temporary(
        slack: FakeSlack, session: aiohttp.ClientSession, tmp_path: Path) -> None:
    slack.script("POST", slack.path, [Reply(delay=0.5)])
    with pytest.raises(TemporaryError, match=r"no answer within 0\.1s"):
        await slack_sender(slack, session, tmp_path, timeout="100ms").send(
            Message("oncall", "slack", {"text": "hello"}))


async def test_the_slack_url_is_in_no_error_and_no_repr(
        slack: FakeSlack, session: aiohttp.ClientSession, tmp_path: Path) -> None:
    secret = slack.path.rsplit("/", 1)[1]
    sender = slack_sender(slack, session, tmp_path)
    slack.script("POST", slack.path, [Reply(500, body={"echo": slack.webhook_url})])
    errors: list[Exception] = []
    for body in ({"text": "x"}, {}):
        try:
            await sender.send(Message("oncall", "slack", body))
        except (TemporaryError, PermanentError) as exc:
            errors.append(exc)
    async with FakeSlack() as gone:
        pass
    try:
        await slack_sender(gone, session, tmp_path).send(Message("oncall", "slack", {"text": "x"}))
    except TemporaryError as exc:
        errors.append(exc)
    assert len(errors) == 3
    shown = [str(e) for e in errors] + [repr(e) for e in errors] + [
        repr(sender), repr(sender.settings), str(sender.settings)]
    assert all(secret not in text for text in shown), shown


# -- PagerDuty ------------------------------------------------------------------------------
@pytest.fixture
async def pagerduty() -> AsyncIterator[FakePagerDuty]:
    async with FakePagerDuty(routing_keys={ROUTING_KEY}) as fake:
        yield fake


def pd_sender(fake: FakePagerDuty, session: aiohttp.ClientSession, tmp_path: Path,
              key: str = ROUTING_KEY) -> PagerDutySender:
    (tmp_path / "pd-key").write_text(key)
    spec = channels(f"pager: {{type: pagerduty, routing_key_file: pd-key, "
                    f"url: '{fake.events_url}'}}", tmp_path)["pager"]
    return PagerDutySender(spec, session)


async def test_pagerduty_trigger_then_resolve_share_the_dedup_key(
        pagerduty: FakePagerDuty, session: aiohttp.ClientSession, tmp_path: Path,
        templates: Templates) -> None:
    sender = pd_sender(pagerduty, session, tmp_path)
    spec = channels("pager: {type: pagerduty, routing_key: k}", tmp_path)["pager"]
    trigger = templates.render(spec, firing_context("escalation"))
    resolve = templates.render(spec, firing_context("resolved"))
    assert "routing_key" not in json.dumps([trigger.body, resolve.body])
    await sender.send(trigger)
    key = trigger.body["dedup_key"]
    assert pagerduty.incidents == {key: "triggered"}
    await sender.send(resolve)
    assert pagerduty.incidents == {key: "resolved"}
    first, second = pagerduty.events
    assert (first["event_action"], second["event_action"]) == ("trigger", "resolve")
    assert first["routing_key"] == second["routing_key"] == ROUTING_KEY
    assert first["dedup_key"] == second["dedup_key"] == key


async def test_pagerduty_invalid_event_is_permanent_and_says_why(
        pagerduty: FakePagerDuty, session: aiohttp.ClientSession, tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match=r"payload.summary' is missing"):
        await pd_sender(pagerduty, session, tmp_path).send(Message("pager", "pagerduty", {
            "event_action": "trigger", "payload": {"source": "s", "severity": "info"}}))
    assert pagerduty.events == []


async def test_pagerduty_429_is_temporary(pagerduty: FakePagerDuty,
                                          session: aiohttp.ClientSession, tmp_path: Path) -> None:
    pagerduty.script("POST", pagerduty.path, [Reply(429, headers={"Retry-After": "30"})])
    with pytest.raises(TemporaryError) as caught:
        await pd_sender(pagerduty, session, tmp_path).send(Message("pager", "pagerduty", {
            "event_action": "resolve", "dedup_key": "k"}))
    assert caught.value.delay == 30


async def test_the_routing_key_is_scrubbed_from_what_pagerduty_echoes(
        pagerduty: FakePagerDuty, session: aiohttp.ClientSession, tmp_path: Path) -> None:
    pagerduty.script("POST", pagerduty.path, [Reply(400, body={
        "status": "invalid event", "message": "Event object is invalid",
        "errors": [f"routing key {ROUTING_KEY} is disabled"]})])
    sender = pd_sender(pagerduty, session, tmp_path)
    with pytest.raises(PermanentError) as caught:
        await sender.send(Message("pager", "pagerduty", {"event_action": "resolve",
                                                         "dedup_key": "k"}))
    assert "is disabled" in str(caught.value)
    for text in (str(caught.value), repr(caught.value), repr(sender), repr(sender.settings)):
        assert ROUTING_KEY not in text


async def test_a_wrong_routing_key_is_permanent(
        pagerduty: FakePagerDuty, session: aiohttp.ClientSession, tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="Invalid routing key"):
        await pd_sender(pagerduty, session, tmp_path, key="W" * 32).send(
            Message("pager", "pagerduty", {"event_action": "resolve", "dedup_key": "k"}))


# -- webhook --------------------------------------------------------------------------------
async def test_webhook_posts_json_with_bearer_token_and_hmac_signature(
        session: aiohttp.ClientSession, tmp_path: Path) -> None:
    async with FakeWebhookSink(bearer_token="tok-123", hmac_secret="shh") as sink:
        spec = channels(f"audit: {{type: webhook, url: '{sink.hook_url}', bearer_token: "
                        f"tok-123, hmac_secret: shh}}", tmp_path)["audit"]
        await WebhookSender(spec, session).send(Message("audit", "webhook", {"a": "é"}))
        assert sink.received == [{"a": "é"}]
        (call,) = sink.calls("POST", sink.path)
        assert call.headers["x-responder-signature"].startswith("sha256=")


async def test_webhook_with_basic_auth_is_accepted(session: aiohttp.ClientSession,
                                                   tmp_path: Path) -> None:
    async with FakeWebhookSink(basic_auth=("am", "pw")) as sink:
        spec = channels(f"audit: {{type: webhook, url: '{sink.hook_url}', "
                        f"basic_auth: {{username: am, password: pw}}}}", tmp_path)["audit"]
        await WebhookSender(spec, session).send(Message("audit", "webhook", {"n": 1}))
        assert sink.received == [{"n": 1}]


async def test_webhook_with_a_wrong_hmac_secret_is_refused_permanently(
        session: aiohttp.ClientSession, tmp_path: Path) -> None:
    async with FakeWebhookSink(hmac_secret="right") as sink:
        spec = channels(f"audit: {{type: webhook, url: '{sink.hook_url}', "
                        f"hmac_secret: wrong-secret}}", tmp_path)["audit"]
        with pytest.raises(PermanentError, match="HTTP 401") as caught:
            await WebhookSender(spec, session).send(Message("audit", "webhook", {"n": 1}))
        assert "wrong-secret" not in str(caught.value)
        assert sink.received == []


# -- email ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return tls_files(tmp_path_factory.mktemp("tls"))


def email_spec(server: SmtpServer, tls: TLSFiles, tmp_path: Path, *, mode: str = "starttls",
               password: str = SMTP_PASSWORD) -> ChannelSpec:
    (tmp_path / "smtp-pw").write_text(password)
    flag = "starttls: true" if mode == "starttls" else "tls: true"
    return channels(
        f"admins: {{type: email, host: 127.0.0.1, port: {server.port}, {flag}, "
        f"ca_file: '{tls.ca_file}', username: responder, password_file: smtp-pw, "
        f"from: responder@example.com, to: [oncall@example.com, sre@example.com], "
        f"timeout: 5s}}", tmp_path)["admins"]


async def test_email_goes_out_over_starttls_with_auth_as_text_and_html(
        tls: TLSFiles, tmp_path: Path, templates: Templates) -> None:
    async with SmtpServer(tls, mode="starttls", users={"responder": SMTP_PASSWORD}) as server:
        spec = email_spec(server, tls, tmp_path)
        message = templates.render(spec, firing_context())
        await EmailSender(spec).send(message)
    (received,) = server.messages
    assert server.logins == [("responder", True)]
    assert received.rcpt_tos == ["oncall@example.com", "sre@example.com"]
    msg = received.message
    assert msg["Subject"] == message.body["subject"]
    assert msg["From"] == "responder@example.com"
    assert msg["To"] == "oncall@example.com, sre@example.com"
    assert msg["Message-ID"] and msg["Date"]
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    assert "taskmaster/nightly-etl-x7k2p" in text.get_content()
    assert "<html>" in html.get_content()


async def test_email_goes_out_over_implicit_tls(tls: TLSFiles, tmp_path: Path,
                                                templates: Templates) -> None:
    async with SmtpServer(tls, mode="implicit", users={"responder": SMTP_PASSWORD}) as server:
        spec = email_spec(server, tls, tmp_path, mode="implicit")
        await EmailSender(spec).send(templates.render(spec, firing_context("resolved")))
    (received,) = server.messages
    assert received.message["Subject"].startswith("[RESOLVED]")


async def test_a_wrong_smtp_password_is_permanent_and_not_quoted(
        tls: TLSFiles, tmp_path: Path, templates: Templates) -> None:
    async with SmtpServer(tls, users={"responder": SMTP_PASSWORD}) as server:
        spec = email_spec(server, tls, tmp_path, password="not-the-password")
        with pytest.raises(PermanentError, match="SMTP 535") as caught:
            await EmailSender(spec).send(templates.render(spec, firing_context()))
    assert server.logins and all(not ok for _, ok in server.logins)   # PLAIN, then LOGIN
    assert server.messages == []
    assert "not-the-password" not in str(caught.value) + repr(caught.value) + repr(spec)


async def test_an_smtp_server_that_is_down_is_temporary(
        tls: TLSFiles, tmp_path: Path, templates: Templates) -> None:
    async with SmtpServer(tls) as server:
        pass
    spec = email_spec(server, tls, tmp_path)
    with pytest.raises(TemporaryError):
        await EmailSender(spec).send(templates.render(spec, firing_context()))


@pytest.mark.parametrize(("reply", "error"), [("451 4.3.0 try again later", TemporaryError),
                                              ("554 5.7.1 rejected as spam", PermanentError)])
async def test_smtp_4xx_is_temporary_and_5xx_permanent(
        tls: TLSFiles, tmp_path: Path, templates: Templates, reply: str,
        error: type[Exception]) -> None:
    async with SmtpServer(tls, users={"responder": SMTP_PASSWORD}) as server:
        server.reply_to_data.append(reply)
        spec = email_spec(server, tls, tmp_path)
        with pytest.raises(error, match=reply.split()[0]):
            await EmailSender(spec).send(templates.render(spec, firing_context()))


# -- log, factory, backoff ------------------------------------------------------------------
async def test_the_log_channel_writes_one_json_line(caplog: pytest.LogCaptureFixture,
                                                    tmp_path: Path, templates: Templates) -> None:
    spec = channels("console: {type: log}", tmp_path)["console"]
    with caplog.at_level(logging.INFO, logger="responder.notify"):
        await LogSender(spec).send(templates.render(spec, firing_context()))
    (record,) = [r for r in caplog.records if r.name == "responder.notify"]
    line = json.loads(record.getMessage())
    assert line["notification"] == "console"
    assert line["event"] == "firing" and line["alertname"] == "WorkflowFailed"


async def test_build_senders_makes_one_sender_per_channel(session: aiohttp.ClientSession,
                                                          tmp_path: Path) -> None:
    specs = channels("""
oncall: {type: slack, url: https://hooks.slack.com/services/T/B/X}
pager: {type: pagerduty, routing_key: k}
audit: {type: webhook, url: https://hooks.example.com/x}
admins: {type: email, host: smtp.example.com, from: a@example.com, to: [b@example.com]}
console: {type: log}
""", tmp_path)
    senders = build_senders(specs, session)
    assert {name: type(s).__name__ for name, s in senders.items()} == {
        "oncall": "SlackSender", "pager": "PagerDutySender", "audit": "WebhookSender",
        "admins": "EmailSender", "console": "LogSender"}


async def test_starttls_against_a_server_without_it_is_permanent(
        tls: TLSFiles, tmp_path: Path, templates: Templates) -> None:
    async with SmtpServer(None) as server:
        spec = email_spec(server, tls, tmp_path)
        with pytest.raises(PermanentError, match="STARTTLS"):
            await EmailSender(spec).send(templates.render(spec, firing_context()))
    assert server.messages == []


async def test_the_fake_slack_takes_legacy_attachments_as_slack_does(
        slack: FakeSlack, session: aiohttp.ClientSession, tmp_path: Path) -> None:
    # Alertmanager's slack_configs send no top-level text, only an attachment.
    legacy = {"channel": "#oncall", "attachments": [
        {"title": "[FIRING:1] CircuitBreakerOpen", "text": "breaker open", "fallback": "x"}]}
    await slack_sender(slack, session, tmp_path).send(Message("oncall", "slack", legacy))
    assert slack.messages == [legacy]
    with pytest.raises(PermanentError, match="invalid_payload"):
        await slack_sender(slack, session, tmp_path).send(
            Message("oncall", "slack", {"attachments": [{"color": "danger"}]}))
