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
# a failure neither the patterns nor the model can place (no runbook matches OddFailure);
# the summary is part of the failure text too, so it names no workflow
ODD = "reconciler gave up: the flux capacitor in rack 12 made a noise"
ODD_SUMMARY = "Workflow failed"
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


def alert(wf: str, name: str = "WorkflowFailed",
          text: str = "dial tcp 10.0.0.7:5432: connect: connection refused",
          summary: str = "", **labels: str) -> dict[str, Any]:
    return {"status": "firing",
            "labels": {"alertname": name, "namespace": NS, "workflow": wf,
                       "severity": "warning", **labels},
            "annotations": {"description": text, "summary": summary or f"Workflow {wf} failed"},
            "startsAt": "2026-11-28T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus/graph", "fingerprint": f"fp-{wf}"}


class Stack:
    """The responder and a fake Argo Server on their own loop in a thread."""

    def __init__(self, tmp: Path, *, auth: bool = True) -> None:
        self.tmp = tmp
        self.auth = auth
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
            **({"auth": {"bearer_token_file": "token",
                         "operators": [{"name": "alice", "bearer_token_file": "alice"}]}}
               if self.auth else {}),
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

    def analysed(self, wf: str) -> dict[str, Any]:
        """The journaled alert of workflow ``wf`` once the pipeline has analysed it."""
        for _ in range(200):
            for a in self.api("/api/v1/events?limit=200")["alerts"]:
                if a["alert"]["labels"].get("workflow") == wf and a["analysis"]:
                    return a  # type: ignore[no-any-return]
            threading.Event().wait(0.05)
        raise AssertionError(f"no analysis of {wf}")

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
def open_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A responder without auth: its console is open, its forms still carry CSRF tokens."""
    with Stack(tmp_path_factory.mktemp("open-console"), auth=False) as running:
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


def correct_in_console(page: Page, stack: Stack, wf: str, category: str) -> dict[str, Any]:
    """Post an alert of ``wf`` with the odd failure text, and correct its category in the
    console; its journaled alert as it was before."""
    stack.post_alerts(alert(wf, name="OddFailure", text=ODD, summary=ODD_SUMMARY))
    first = stack.analysed(wf)
    assert first["analysis"]["category"] == "Unknown"
    page.goto(stack.url + "/?namespace=" + NS)
    card = page.locator("details.alert", has_text=wf)
    expect(card.locator(".category")).to_have_text("Unknown")
    card.locator("summary").click()
    choice = card.locator("form.correct select[name=category]")
    expect(choice).to_have_value("Unknown")
    choice.select_option(category)
    card.locator("form.correct button:has-text('Correct')").click()
    expect(page.locator(".banner.ok")).to_contain_text(
        f"alert {first['id']} corrected to {category} (was Unknown)")
    return first


def corrections_of(stack: Stack, alert_id: int) -> list[tuple[str, str]]:
    (found,) = [a for a in stack.api("/api/v1/events?limit=200")["alerts"]
                if a["id"] == alert_id]
    return [(e["outcome"], e["detail"]["by"]) for e in found["events"]
            if e["kind"] == "correction"]


def test_an_operator_corrects_a_category_and_the_same_text_gets_it_next_time(
        page: Page, stack: Stack) -> None:
    first = correct_in_console(page, stack, "odd-first", "Infrastructure")
    assert corrections_of(stack, first["id"]) == [("Infrastructure", "alice")]
    card = page.locator("details.alert", has_text="odd-first")   # the page after the form
    expect(card.locator(".category")).to_have_text("Infrastructure")
    expect(card.locator(".category")).to_have_attribute(
        "title", "corrected by alice; analysed as Unknown")
    card.locator("summary").click()
    expect(card.locator("dd.corrected")).to_contain_text("Infrastructure, by alice")
    expect(card.locator("form.correct select[name=category]")).to_have_value("Infrastructure")
    stack.post_alerts(alert("odd-again", name="OddFailure", text=ODD, summary=ODD_SUMMARY))
    again = stack.analysed("odd-again")["analysis"]
    assert (again["category"], again["source"], again["retryable"]) == (
        "Infrastructure", "feedback", True)


def test_without_auth_the_console_corrects_a_category_too(browser: Browser,
                                                          open_stack: Stack) -> None:
    context = browser.new_context()
    context.set_default_timeout(10_000)
    try:
        first = correct_in_console(context.new_page(), open_stack, "odd-open", "Conflict")
        assert corrections_of(open_stack, first["id"]) == [("Conflict", "anonymous")]
        open_stack.post_alerts(alert("odd-open-again", name="OddFailure", text=ODD, summary=ODD_SUMMARY))
        assert open_stack.analysed("odd-open-again")["analysis"]["category"] == "Conflict"
    finally:
        context.close()


def test_after_logging_out_a_copy_of_the_session_cookie_is_refused(
        browser: Browser, stack: Stack) -> None:
    context = browser.new_context()
    context.set_default_timeout(10_000)
    try:
        visit = context.new_page()
        visit.goto(stack.url + "/login")
        visit.fill("input[name=token]", OPERATOR)
        visit.click("button:has-text('Log in')")
        expect(visit.locator("header .who")).to_have_text("alice")
        copied = context.cookies()
        assert [c["name"] for c in copied] == ["responder_session"]
        visit.click("button:has-text('Log out')")
        expect(visit).to_have_url(stack.url + "/login")
        assert context.cookies() == []
    finally:
        context.close()
    thief = browser.new_context()
    try:
        thief.add_cookies(copied)  # type: ignore[arg-type]  # a Cookie is what it sets
        replay = thief.new_page()
        replay.goto(stack.url + "/ui/actions")
        expect(replay).to_have_url(stack.url + "/login?next=/ui/actions")
        assert thief.request.post(stack.url + "/ui/resume", form={"csrf": "x"}).status == 401
    finally:
        thief.close()
