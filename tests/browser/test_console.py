"""The console in a real browser: Debian's chromium driven by playwright.

One responder (with operators, a fake Argo Server and runbooks that ask for approval or
open a breaker) and one browser serve the whole module; the responder runs on its own
event loop in a thread so the tests can drive the browser synchronously. With
``RESPONDER_SCREENSHOTS=DIR`` the main pages are also saved there, at laptop and phone
widths (``make screenshots`` writes the README's into docs/).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from aiohttp import web
from playwright.sync_api import Browser, Page, expect, sync_playwright
from prometheus_client import CollectorRegistry

from responder.app import create_app
from responder.load import load_runtime
from tests.conftest import REPO, TOKEN, require_binary
from tests.fakes.argo_server import FakeArgoServer

OPERATOR = "alice-console-t0ken"
NS = "taskmaster"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
RUNBOOKS = {"runbooks": [
    {"name": "retry-with-approval",
     "description": "Retry a transient failure once a person says so.",
     "match": ['alertname="WorkflowFailed"'],
     "when": {"retryable": True},
     "actions": [{"argo.retry": {"namespace": "{{ labels.namespace }}",
                                 "workflow": "{{ labels.workflow }}"}}],
     "retry": {"limit": 2, "backoff": {"duration": "100ms", "factor": 2, "max_duration": "1s"}},
     "approval": {"timeout": "1h", "on_timeout": "escalate", "notify": [{"channel": "oncall"}]},
     "notify": [{"channel": "console"}]},
    {"name": "cron-breaker",
     "description": "Stop retrying a cron that keeps failing.",
     "match": ['alertname="CronFailing"'],
     "actions": [{"argo.retry": {"namespace": "{{ labels.namespace }}",
                                 "workflow": "{{ labels.workflow }}"}}],
     "breaker": {"key": "{{ labels.namespace }}/{{ labels.cronworkflow }}", "threshold": 1,
                 "window": "1h", "cooldown": "1h"},
     "notify": [{"channel": "console"}]},
]}


def alert(wf: str, name: str = "WorkflowFailed", **labels: str) -> dict[str, Any]:
    return {"status": "firing",
            "labels": {"alertname": name, "namespace": NS, "workflow": wf,
                       "severity": "warning", **labels},
            "annotations": {"description": "dial tcp 10.0.0.7:5432: connect: connection refused",
                            "summary": f"Workflow {wf} failed"},
            "startsAt": "2026-11-28T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus/graph", "fingerprint": f"fp-{wf}"}


class Stack:
    """The responder and a fake Argo Server on their own loop in a thread."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.argo = FakeArgoServer(token="argo-token")
        self.url = ""

    def __enter__(self) -> Stack:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    async def _start(self) -> None:
        await self.argo.__aenter__()
        tmp = self.tmp
        (tmp / "runbooks.yaml").write_text(yaml.safe_dump(RUNBOOKS, sort_keys=False))
        for name, value in (("token", TOKEN), ("alice", OPERATOR), ("argo-token", "argo-token")):
            (tmp / name).write_text(value)
        (tmp / "responder.yaml").write_text(yaml.safe_dump({
            "listen": "127.0.0.1:0", "state": {"path": str(tmp / "state.db")},
            "auth": {"bearer_token_file": "token",
                     "operators": [{"name": "alice", "bearer_token_file": "alice"}]},
            "rules": [str(tmp / "runbooks.yaml")],
            "patterns": [str(REPO / "rules/patterns.yaml")],
            "templates": str(REPO / "templates"),
            "argo": {"server": self.argo.url, "token_file": "argo-token"},
            "channels": {"console": {"type": "log"}, "oncall": {"type": "log"}}}))
        app = create_app(load_runtime(tmp / "responder.yaml"), registry=CollectorRegistry())
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def _stop(self) -> None:
        await self.runner.cleanup()
        await self.argo.__aexit__(None, None, None)

    def post_alerts(self, *alerts: dict[str, Any]) -> None:
        body = json.dumps({"version": "4", "groupKey": "g", "status": "firing", "receiver": "r",
                           "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
                           "externalURL": "http://am", "alerts": list(alerts)}).encode()
        request = urllib.request.Request(self.url + "/webhook", data=body, method="POST",
                                         headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def api(self, path: str) -> Any:
        request = urllib.request.Request(self.url + path,
                                         headers={"Authorization": f"Bearer {OPERATOR}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def retries(self, wf: str) -> list[Any]:
        return self.argo.calls("PUT", f"/api/v1/workflows/{NS}/{wf}/retry")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack(tmp_path_factory.mktemp("console")) as running:
        for wf in ("etl-approve", "etl-reject", "etl-cron"):
            running.argo.add_workflow(NS, wf, phase="Failed")
        running.post_alerts(alert("etl-approve"), alert("etl-reject"))
        running.post_alerts(alert("etl-cron", name="CronFailing", cronworkflow="nightly"))
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_binary("chromium")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def page(browser: Browser, stack: Stack) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860},
                                  timezone_id="Europe/Berlin")
    context.set_default_timeout(10_000)
    opened = context.new_page()
    opened.goto(stack.url + "/")
    expect(opened).to_have_url(stack.url + "/login")
    opened.fill("input[name=token]", OPERATOR)
    opened.click("button:has-text('Log in')")
    expect(opened.locator("header .who")).to_have_text("alice")
    yield opened
    context.close()


def shoot(page: Page, name: str) -> None:
    folder = os.environ.get("RESPONDER_SCREENSHOTS")
    if not folder:
        return
    for width, height, suffix in ((1280, 860, "laptop"), (390, 844, "phone")):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(Path(folder) / f"console-{name}-{suffix}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 860})


def approval_id(stack: Stack, wf: str) -> int:
    for _ in range(100):
        for a in stack.api("/api/v1/approvals")["approvals"]:
            if a["labels"].get("workflow") == wf:
                return int(a["id"])
        threading.Event().wait(0.05)
    raise AssertionError(f"no approval asked for {wf}")


def test_an_operator_logs_in_and_sees_the_alert_and_its_category(page: Page,
                                                                 stack: Stack) -> None:
    page.goto(stack.url + "/?namespace=" + NS)
    card = page.locator("details.alert", has_text="etl-approve")
    expect(card.locator(".category")).to_have_text("Network")
    card.locator("summary").click()
    expect(card.locator(".analysis")).to_contain_text("retryable")
    shown = card.locator("time").first
    utc = datetime.fromisoformat(str(shown.get_attribute("datetime")))
    local = utc.astimezone(ZoneInfo("Europe/Berlin")).strftime("%Y-%m-%d %H:%M:%S")
    expect(shown).to_contain_text(local)   # in the browser's own zone, not UTC
    shoot(page, "alerts")


def test_approving_runs_the_retry_once(page: Page, stack: Stack) -> None:
    approval_id(stack, "etl-approve")
    page.goto(stack.url + "/ui/actions")
    shoot(page, "actions")
    card = page.locator("section.approval", has_text="etl-approve")
    card.locator("input[name=comment]").fill("transient, go")
    card.locator("button:has-text('Approve')").click()
    expect(page.locator(".banner.ok")).to_contain_text("approved")
    expect(page.locator("table", has_text="Recent decisions").or_(
        page.locator("td", has_text="alice")).first).to_be_visible()
    for _ in range(200):
        if stack.retries("etl-approve"):
            break
        threading.Event().wait(0.05)
    assert len(stack.retries("etl-approve")) == 1


def test_rejecting_does_nothing(page: Page, stack: Stack) -> None:
    approval_id(stack, "etl-reject")
    page.goto(stack.url + "/ui/actions")
    page.locator("section.approval", has_text="etl-reject").locator(
        "button:has-text('Reject')").click()
    expect(page.locator(".banner.ok")).to_contain_text("rejected")
    attempts = stack.api("/api/v1/attempts?state=cancelled")["attempts"]
    (rejected,) = [a for a in attempts if a["labels"]["workflow"] == "etl-reject"]
    assert rejected["outcome"] == "rejected"
    assert not [a for a in stack.api("/api/v1/attempts")["attempts"]
                if a["labels"].get("workflow") == "etl-reject"]
    assert stack.retries("etl-reject") == []


def test_pause_and_resume(page: Page, stack: Stack) -> None:
    page.goto(stack.url + "/ui/pauses")
    page.fill("textarea[name=matchers]", f'namespace="{NS}"')
    page.fill("input[name=reason]", "database upgrade")
    page.fill("input[name=until]", "2h")
    page.click("button:has-text('Pause')")
    expect(page.locator(".banner.ok")).to_contain_text("holds the actions of")
    row = page.locator("tr", has_text="database upgrade")
    expect(row).to_contain_text(f'namespace="{NS}"')
    (pause,) = stack.api("/api/v1/pauses")["pauses"]
    assert (pause["by"], pause["reason"]) == ("alice", "database upgrade")
    shoot(page, "pauses")
    row.locator("button:has-text('Lift')").click()
    expect(page.locator(".empty")).to_contain_text("No pause")
    assert stack.api("/api/v1/pauses")["pauses"] == []


def test_resetting_an_open_breaker_closes_it(page: Page, stack: Stack) -> None:
    page.goto(stack.url + "/ui/breakers")
    row = page.locator("tr", has_text=f"{NS}/nightly")
    expect(row.locator(".state")).to_have_text("open")
    shoot(page, "breakers")
    row.locator("button:has-text('Reset')").click()
    expect(page.locator(".banner.ok")).to_contain_text("reset (closed)")
    # closed with no failure left in its window: the same as a breaker never seen
    expect(page.locator("tr", has_text=f"{NS}/nightly")).to_have_count(0)
    assert stack.api("/api/v1/breakers")["breakers"] == []


def test_the_config_page_shows_runbooks_and_channels(page: Page, stack: Stack) -> None:
    page.goto(stack.url + "/ui/config")
    expect(page.locator("table").first).to_contain_text("retry-with-approval")
    expect(page.locator("body")).to_contain_text("oncall")
    shoot(page, "config")


def test_a_form_without_csrf_token_and_a_request_without_session_are_refused(
        page: Page, browser: Browser, stack: Stack) -> None:
    forged = page.request.post(stack.url + "/ui/resume", form={"next": "/"})
    assert forged.status == 403 and "CSRF" in forged.text()
    stranger = browser.new_context()
    try:
        visit = stranger.new_page()
        visit.goto(stack.url + "/ui/actions")
        expect(visit).to_have_url(stack.url + "/login?next=/ui/actions")
        assert stranger.request.post(stack.url + "/ui/resume", form={"csrf": "x"}).status == 401
        webhook_only = stranger.request.get(stack.url + "/ui/actions",
                                            headers={"Authorization": f"Bearer {TOKEN}"})
        assert webhook_only.status == 403
    finally:
        stranger.close()
