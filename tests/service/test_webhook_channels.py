"""Webhook channels with their own headers and body templates, and outbound HTTP through a
proxy: Opsgenie's ``Authorization: GenieKey ...``, a Teams card, ``HTTPS_PROXY``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client import CollectorRegistry

from responder.app import create_app
from responder.config.channels import ChannelSpec, parse_channels
from responder.config.reader import Section
from responder.config.yamlmarks import load_file, load_text
from responder.errors import ConfigError, PermanentError
from responder.load import load_runtime
from responder.model import sample_group
from responder.notify.render import Templates, build_context
from responder.notify.webhook import WebhookSender
from tests.conftest import REPO, TOKEN, eventually
from tests.fakes import Reply
from tests.fakes.proxy import ForwardProxy
from tests.fakes.webhook_sink import FakeWebhookSink

GENIE_KEY = "GenieKey 0f3c2b9e-7d41-4a3e-9c55-2be1f0d7a9c4"
EXAMPLE = REPO / "examples/channels-opsgenie-teams.yaml"


def example_channels(tmp_path: Path, sink: FakeWebhookSink) -> dict[str, ChannelSpec]:
    """The shipped example, pointed at the sink instead of Opsgenie and Teams."""
    data = load_file(EXAMPLE, str(EXAMPLE))["channels"]
    data["opsgenie"]["url"] = sink.hook_url
    (tmp_path / "opsgenie-authorization").write_text(GENIE_KEY + "\n")
    (tmp_path / "teams-webhook-url").write_text(sink.hook_url + "\n")
    errors: list[ConfigError] = []
    specs = parse_channels(Section(data, errors, where="channels", base_dir=tmp_path))
    assert errors == []
    return specs


def context(event: str = "firing") -> Any:
    group = sample_group("resolved" if event == "resolved" else "firing")
    return build_context(group, runbook={"name": "retry-transient"},
                         argo_ui_url="https://argo.example.com", event=event)


@pytest.fixture
async def sink() -> AsyncIterator[FakeWebhookSink]:
    async with FakeWebhookSink() as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture(scope="module")
def templates() -> Templates:
    return Templates.load(REPO / "templates")


async def test_opsgenie_gets_its_genie_key_header_and_an_alert_api_body(
        sink: FakeWebhookSink, session: aiohttp.ClientSession, tmp_path: Path,
        templates: Templates) -> None:
    spec = example_channels(tmp_path, sink)["opsgenie"]
    await WebhookSender(spec, session).send(templates.render(spec, context("escalation")))
    (call,) = sink.calls("POST")
    assert call.headers["authorization"] == GENIE_KEY
    assert call.content_type == "application/json"
    body = call.json
    assert body["message"].startswith("Escalated: WorkflowFailed") and len(body["message"]) <= 130
    assert body["alias"] == context().dedup_key and body["priority"] == "P3"
    assert all(isinstance(v, str) for v in body["details"].values())


async def test_a_template_that_renders_nothing_sends_nothing(
        sink: FakeWebhookSink, session: aiohttp.ClientSession, tmp_path: Path,
        templates: Templates) -> None:
    spec = example_channels(tmp_path, sink)["opsgenie"]
    await WebhookSender(spec, session).send(templates.render(spec, context("resolved")))
    assert sink.calls() == []


async def test_teams_gets_an_adaptive_card(
        sink: FakeWebhookSink, session: aiohttp.ClientSession, tmp_path: Path,
        templates: Templates) -> None:
    spec = example_channels(tmp_path, sink)["teams"]
    await WebhookSender(spec, session).send(templates.render(spec, context()))
    (call,) = sink.calls("POST")
    assert call.json["type"] == "message"
    (attachment,) = call.json["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["body"][0]["text"].startswith("Firing: WorkflowFailed")
    assert {"title": "Namespace", "value": "taskmaster"} in card["body"][2]["facts"]
    assert {a["title"] for a in card["actions"]} >= {"Argo", "Runbook"}
    assert "authorization" not in call.headers


async def test_a_header_echoed_back_in_an_error_is_scrubbed(
        sink: FakeWebhookSink, session: aiohttp.ClientSession, tmp_path: Path,
        templates: Templates) -> None:
    spec = example_channels(tmp_path, sink)["opsgenie"]
    sink.script("POST", sink.path, [Reply(422, body={"message": f"key {GENIE_KEY} refused"})])
    with pytest.raises(PermanentError) as refused:
        await WebhookSender(spec, session).send(templates.render(spec, context()))
    assert GENIE_KEY not in str(refused.value) and "422" in str(refused.value)
    assert GENIE_KEY not in repr(spec)


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("{Content-Type: text/plain}", "channels.hook.headers.Content-Type: set by the responder "
                                   "itself, not by a channel"),
    ("{'Bad Name': x}", "channels.hook.headers.Bad Name: not a valid HTTP header name"),
    ("{X-Key: x, X-Key_file: k}", "channels.hook.headers.X-Key: give X-Key or X-Key_file, "
                                  "not both"),
    ("{X-Key_file: missing}", "channels.hook.headers.X-Key_file: cannot read"),
    ("{X-Key: [a]}", "channels.hook.headers.X-Key: expected string, got list"),
])
def test_bad_headers_are_refused_at_their_line(tmp_path: Path, yaml_text: str,
                                               message: str) -> None:
    text = f"hook:\n  type: webhook\n  url: https://h.example.com/x\n  headers: {yaml_text}\n"
    errors: list[ConfigError] = []
    parse_channels(Section(load_text(text, "responder.yaml"), errors, where="channels",
                           base_dir=tmp_path))
    assert [str(e) for e in errors if message in str(e)], [str(e) for e in errors]
    assert all(str(e).startswith("responder.yaml:4: ") for e in errors), errors


def test_an_authorization_header_and_a_bearer_token_are_refused_together(
        tmp_path: Path) -> None:
    text = ("hook:\n  type: webhook\n  url: https://h.example.com/x\n  bearer_token: t\n"
            "  headers:\n    Authorization: GenieKey x\n")
    errors: list[ConfigError] = []
    parse_channels(Section(load_text(text, "responder.yaml"), errors, where="channels",
                           base_dir=tmp_path))
    assert [str(e) for e in errors] == [
        "responder.yaml:6: channels.hook.headers.Authorization: give bearer_token, basic_auth "
        "or an Authorization header, not two"]
    assert "GenieKey" not in str(errors)


# -- outbound through a proxy ----------------------------------------------------------------
RUNBOOKS = {"runbooks": [{"name": "tell", "match": ['alertname="WorkflowFailed"'],
                          "notify": [{"channel": "hook"}]}]}


async def start(tmp_path: Path, write_config: Callable[..., Path],
                aiohttp_client: Callable[..., Any], url: str) -> Any:
    (tmp_path / "runbooks.yaml").write_text(yaml.safe_dump(RUNBOOKS))
    config = write_config({"rules": [str(tmp_path / "runbooks.yaml")]},
                          channels={"hook": {"type": "webhook", "url": url}})
    client = await aiohttp_client(create_app(load_runtime(config), registry=CollectorRegistry()))
    body = (REPO / "examples/workflow-failed.json").read_bytes()
    resp = await client.post("/webhook", data=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status == 200
    return client


async def test_notifications_go_through_the_proxy_the_environment_names(
        tmp_path: Path, write_config: Callable[..., Path], aiohttp_client: Callable[..., Any],
        sink: FakeWebhookSink, monkeypatch: pytest.MonkeyPatch) -> None:
    async with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        await start(tmp_path, write_config, aiohttp_client, sink.hook_url)
        await eventually(lambda: asyncio.sleep(0, sink.received))
        assert proxy.requests[0] == f"POST {sink.hook_url} HTTP/1.1"


async def test_https_goes_through_https_proxy_as_a_tunnel(
        tmp_path: Path, write_config: Callable[..., Path], aiohttp_client: Callable[..., Any],
        sink: FakeWebhookSink, monkeypatch: pytest.MonkeyPatch) -> None:
    async with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        target = sink.url.replace("http://", "https://")
        await start(tmp_path, write_config, aiohttp_client, target + sink.path)
        await eventually(lambda: asyncio.sleep(0, proxy.requests))
        assert proxy.requests[0] == f"CONNECT {target.removeprefix('https://')} HTTP/1.1"


async def test_no_proxy_hosts_are_reached_directly(
        tmp_path: Path, write_config: Callable[..., Path], aiohttp_client: Callable[..., Any],
        sink: FakeWebhookSink, monkeypatch: pytest.MonkeyPatch) -> None:
    async with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        await start(tmp_path, write_config, aiohttp_client, sink.hook_url)
        await eventually(lambda: asyncio.sleep(0, sink.received))
        assert proxy.requests == []
        assert json.loads(sink.calls("POST")[0].raw)["event"] == "firing"
