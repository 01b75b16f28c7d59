"""The console's correction form through HTTP: the same path as the API's (journaled with
its event, used at once), its CSRF token, and a clear message for what cannot be corrected."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry

from responder.analyze import CATEGORIES
from responder.app import create_app
from responder.load import load_runtime
from tests.conftest import eventually
from tests.service.test_console_http import csrf_of
from tests.service.test_feedback import payload
from tests.service.test_operators import ALICE, WEBHOOK, with_operators


async def start(aiohttp_client: Callable[..., Any], config: Path) -> TestClient[Any, Any]:
    app = create_app(load_runtime(config), registry=CollectorRegistry())
    return await aiohttp_client(app)  # type: ignore[no-any-return]


async def analysed(client: TestClient[Any, Any], body: dict[str, Any],
                   headers: dict[str, str]) -> dict[str, Any]:
    """Post ``body`` and return its (first) alert once the pipeline has analysed it."""
    assert (await client.post("/webhook", data=json.dumps(body), headers=WEBHOOK)).status == 200
    fingerprint = body["alerts"][0]["fingerprint"]

    async def done() -> dict[str, Any] | None:
        events = await (await client.get("/api/v1/events?limit=50", headers=headers)).json()
        return next((a for a in events["alerts"]
                     if a["alert"]["fingerprint"] == fingerprint and a["analysis"]), None)

    return await eventually(done)  # type: ignore[no-any-return]


def banner(response_location: str) -> dict[str, str]:
    """The redirect's one-line message: {"done": ...} or {"error": ...}."""
    return {k: v[0] for k, v in parse_qs(urlsplit(response_location).query).items()}


async def test_the_console_form_corrects_like_the_api_and_refuses_what_it_cannot(
        write_config: Callable[..., Path], aiohttp_client: Callable[..., Any]) -> None:
    client = await start(aiohttp_client, write_config(token=None))
    first = await analysed(client, payload(1, "reconcile-7c9f5d8b4-x2k8d", 12), {})
    silent = payload(2, "x", 0)
    silent["alerts"][0]["annotations"] = {}
    quiet = await analysed(client, silent, {})
    page = await (await client.get("/")).text()
    assert f'action="/ui/alerts/{first["id"]}/category"' in page
    assert '<option selected>Unknown</option>' in page
    token = csrf_of(page)

    async def post(alert_id: object, form: dict[str, str]) -> tuple[int, str]:
        resp = await client.post(f"/ui/alerts/{alert_id}/category", data=form,
                                 allow_redirects=False)
        return resp.status, resp.headers.get("Location", "")

    async def corrections() -> list[tuple[int, str, str, str]]:
        events = await (await client.get("/api/v1/events?limit=50")).json()
        return [(a["id"], e["outcome"], e["detail"]["by"], e["detail"]["previous"])
                for a in events["alerts"] for e in a["events"] if e["kind"] == "correction"]

    forged = await client.post(f"/ui/alerts/{first['id']}/category",
                               data={"category": "Infrastructure"}, allow_redirects=False)
    assert forged.status == 403 and "CSRF" in await forged.text()
    status, location = await post(first["id"], {"csrf": token, "category": "Cosmic",
                                                "next": "/"})
    assert status == 303 and banner(location) == {"error": (
        f"category: expected one of {', '.join(CATEGORIES)}, got 'Cosmic'")}
    assert banner((await post(999_999, {"csrf": token, "category": "Network"}))[1]) == {
        "error": "no alert with id 999999"}
    assert banner((await post("abc", {"csrf": token, "category": "Network"}))[1]) == {
        "error": "no alert with id 'abc'"}
    huge = "9" * 23       # past what the journal stores: no such alert, not a 500
    assert banner((await post(huge, {"csrf": token, "category": "Network"}))[1]) == {
        "error": f"no alert with id {huge!r}"}
    for form in (f"/ui/approvals/{huge}/approve", f"/ui/attempts/{huge}/cancel",
                 f"/ui/pauses/{huge}/lift"):
        resp = await client.post(form, data={"csrf": token}, allow_redirects=False)
        assert resp.status == 303 and banner(resp.headers["Location"])["error"].startswith(
            "no "), form
    assert "no failure text" in banner((await post(quiet["id"], {
        "csrf": token, "category": "Network"}))[1])["error"]
    assert await corrections() == []

    status, location = await post(first["id"], {"csrf": token, "category": "Infrastructure",
                                                "next": "/?namespace=batch"})
    assert status == 303 and location.startswith("/?done=")
    shown = await (await client.get(location)).text()
    assert f"alert {first['id']} corrected to Infrastructure (was Unknown)" in shown
    assert await corrections() == [(first["id"], "Infrastructure", "anonymous", "Unknown")]
    again = await analysed(client, payload(3, "reconcile-5d2a1f9c3-q9w1z", 40), {})
    assert (again["analysis"]["category"], again["analysis"]["source"]) == (
        "Infrastructure", "feedback")


async def test_with_operators_the_form_records_the_operators_name(
        tmp_path: Path, write_config: Callable[..., Path],
        aiohttp_client: Callable[..., Any]) -> None:
    client = await start(aiohttp_client, with_operators(tmp_path, write_config))
    first = await analysed(client, payload(1, "reconcile-7c9f5d8b4-x2k8d", 12), ALICE)
    refused = await client.post(f"/ui/alerts/{first['id']}/category",
                                data={"category": "Network"}, allow_redirects=False)
    assert refused.status == 401     # no session: no correction
    webhook_only = await client.post(f"/ui/alerts/{first['id']}/category",
                                     data={"category": "Network"}, headers=WEBHOOK)
    assert webhook_only.status == 403
    login = csrf_of(await (await client.get("/login")).text())
    assert (await client.post("/login", data={"csrf": login, "token": "alice-t0ken"},
                              allow_redirects=False)).status == 303
    token = csrf_of(await (await client.get("/")).text())
    done = await client.post(f"/ui/alerts/{first['id']}/category",
                             data={"csrf": token, "category": "Conflict"}, allow_redirects=False)
    assert done.status == 303 and "corrected to Conflict" in banner(done.headers["Location"])["done"]
    # the API records the operator's own name too, whatever "by" it claims
    api = await client.post(f"/api/v1/alerts/{first['id']}/category",
                            data=json.dumps({"category": "Timeout", "by": "mallory"}),
                            headers=ALICE)
    assert api.status == 200
    events = await (await client.get("/api/v1/events?limit=50", headers=ALICE)).json()
    (corrected,) = [a for a in events["alerts"] if a["id"] == first["id"]]
    assert [(e["outcome"], e["detail"]["by"]) for e in corrected["events"]
            if e["kind"] == "correction"] == [("Conflict", "alice"), ("Timeout", "alice")]
