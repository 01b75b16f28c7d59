"""The console's guard through HTTP: open without auth (forms still need their CSRF
token), login with an operator's credential only, a signed session cookie, logout."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry

from responder.app import create_app
from responder.load import load_runtime
from tests.conftest import TOKEN
from tests.service.test_operators import with_operators


async def start(aiohttp_client: Callable[..., Any], config: Path) -> TestClient[Any, Any]:
    app = create_app(load_runtime(config), registry=CollectorRegistry())
    return await aiohttp_client(app)  # type: ignore[no-any-return]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


async def test_without_auth_the_console_is_open_and_its_forms_still_need_the_csrf_token(
        write_config: Callable[..., Path], aiohttp_client: Callable[..., Any]) -> None:
    client = await start(aiohttp_client, write_config(token=None))
    page = await client.get("/ui/pauses")
    assert page.status == 200 and "Log out" not in await page.text()
    assert page.headers["X-Frame-Options"] == "DENY"
    assert (await client.post("/ui/pause", data={"reason": "x"})).status == 403
    token = csrf_of(await page.text())
    done = await client.post("/ui/pause", data={"csrf": token, "reason": "upgrade",
                                                "next": "/ui/pauses"}, allow_redirects=False)
    assert done.status == 303 and done.headers["Location"].startswith("/ui/pauses?done=")
    (pause,) = (await (await client.get("/api/v1/pauses")).json())["pauses"]
    assert (pause["reason"], pause["by"], pause["matchers"]) == ("upgrade", "anonymous", [])
    assert (await client.get("/login", allow_redirects=False)).status == 303


async def test_only_an_operator_logs_in_and_the_session_cookie_is_strict(
        tmp_path: Path, write_config: Callable[..., Path],
        aiohttp_client: Callable[..., Any]) -> None:
    client = await start(aiohttp_client, with_operators(tmp_path, write_config))
    assert (await client.get("/", allow_redirects=False)).headers["Location"] == "/login"
    login = csrf_of(await (await client.get("/login")).text())
    wrong = await client.post("/login", data={"csrf": login, "token": "guess"})
    assert wrong.status == 401 and "not a valid operator token" in await wrong.text()
    webhook = await client.post("/login", data={"csrf": login, "token": TOKEN})
    assert webhook.status == 401 and "may only post webhooks" in await webhook.text()
    assert (await client.post("/login", data={"token": "alice-t0ken"})).status == 403
    ok = await client.post("/login", data={"csrf": login, "token": "alice-t0ken",
                                           "next": "/ui/config"}, allow_redirects=False)
    assert ok.status == 303 and ok.headers["Location"] == "/ui/config"
    cookie = ok.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "alice-t0ken" not in cookie
    page = await client.get("/ui/config")
    assert page.status == 200 and "alice" in await page.text()
    out = await client.post("/logout", data={"csrf": csrf_of(await page.text())},
                            allow_redirects=False)
    assert out.status == 303 and 'responder_session=""' in out.headers["Set-Cookie"]
    client.session.cookie_jar.clear()
    assert (await client.get("/ui/config", allow_redirects=False)).status == 303


async def test_after_login_and_forms_the_browser_only_goes_back_to_this_server(
        tmp_path: Path, write_config: Callable[..., Path],
        aiohttp_client: Callable[..., Any]) -> None:
    client = await start(aiohttp_client, with_operators(tmp_path, write_config))
    login = csrf_of(await (await client.get("/login")).text())
    for target in ("//evil.example/", "/\\evil.example/", "https://evil.example/"):
        ok = await client.post("/login", data={"csrf": login, "token": "alice-t0ken",
                                               "next": target}, allow_redirects=False)
        assert (ok.status, ok.headers["Location"]) == (303, "/")


async def test_the_alerts_page_says_when_its_filters_cover_only_the_latest_alerts(
        write_config: Callable[..., Path], aiohttp_client: Callable[..., Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from responder.console import views
    from tests.service.test_webhook import alert, payload

    monkeypatch.setattr(views, "ALERTS_SEARCHED", 3)
    client = await start(aiohttp_client, write_config(token=None))
    page = await (await client.get("/")).text()
    assert "among the latest" not in page
    for i in range(5):
        assert (await client.post("/webhook", json=payload([alert(i)]))).status == 200
    page = await (await client.get("/?status=firing")).text()
    assert "among the latest 3 received" in page and "cover those only" in page
