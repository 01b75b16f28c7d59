"""Logging out ends the session on the server: a copy of its cookie is refused afterwards,
by this process, by another replica on the same journal, and after a restart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry

from responder.app import create_app
from responder.console.session import ConsoleState
from responder.load import load_runtime
from tests.service.test_console_http import csrf_of
from tests.service.test_operators import OPERATORS, with_operators


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "postgres"])
def config(request: pytest.FixtureRequest, tmp_path: Path,
           write_config: Callable[..., Path]) -> Path:
    """Operators, on a SQLite journal or on a PostgreSQL database the replicas share."""
    with_operators(tmp_path, write_config)
    if request.param == "sqlite":
        return write_config({"auth": {"bearer_token_file": "token", "operators": OPERATORS}})
    (tmp_path / "pg-dsn").write_text(request.getfixturevalue("pg_server").create_schema())
    return write_config({"auth": {"bearer_token_file": "token", "operators": OPERATORS},
                         "state": {"postgres": {"dsn_file": "pg-dsn"}}})


async def login(client: TestClient[Any, Any]) -> str:
    """A fresh session's cookie (the client's jar is left empty: cookies go by hand)."""
    token = csrf_of(await (await client.get("/login")).text())
    done = await client.post("/login", data={"csrf": token, "token": "alice-t0ken"},
                             allow_redirects=False)
    assert done.status == 303
    client.session.cookie_jar.clear()
    return done.cookies["responder_session"].value


async def visit(client: TestClient[Any, Any], cookie: str) -> tuple[int, str]:
    page = await client.get("/ui/config", headers={"Cookie": f"responder_session={cookie}"},
                            allow_redirects=False)
    return page.status, page.headers.get("Location", "") or await page.text()


async def test_a_copied_cookie_is_refused_after_logout_everywhere_and_after_a_restart(
        config: Path, aiohttp_client: Callable[..., Any]) -> None:
    clock = Clock()

    async def replica() -> TestClient[Any, Any]:
        app = create_app(load_runtime(config), registry=CollectorRegistry(), clock=clock)
        return await aiohttp_client(app)  # type: ignore[no-any-return]

    a, b = await replica(), await replica()
    copied, other = await login(a), await login(a)
    assert copied != other
    status, page = await visit(b, copied)
    assert status == 200 and "alice" in page
    token = csrf_of(page)
    headers = {"Cookie": f"responder_session={copied}"}
    out = await a.post("/logout", data={"csrf": token}, headers=headers, allow_redirects=False)
    assert out.status == 303 and out.headers["Location"] == "/login"

    assert await visit(a, copied) == (303, "/login?next=/ui/config")
    refused = await a.post("/ui/resume", data={"csrf": token}, headers=headers)
    assert refused.status == 401 and "log in" in await refused.text()
    clock.now += ConsoleState.REFRESH        # another replica reads the revocations again
    assert await visit(b, copied) == (303, "/login?next=/ui/config")
    assert (await b.post("/ui/resume", data={"csrf": token}, headers=headers)).status == 401
    # only that session ended: the operator's other login goes on
    assert (await visit(a, other))[0] == 200 and (await visit(b, other))[0] == 200

    await a.close()
    await b.close()
    restarted = await replica()
    assert await visit(restarted, copied) == (303, "/login?next=/ui/config")
    assert (await visit(restarted, other))[0] == 200


async def test_without_auth_logging_out_changes_nothing(
        write_config: Callable[..., Path], aiohttp_client: Callable[..., Any]) -> None:
    app = create_app(load_runtime(write_config(token=None)), registry=CollectorRegistry())
    client = await aiohttp_client(app)
    token = csrf_of(await (await client.get("/ui/pauses")).text())
    out = await client.post("/logout", data={"csrf": token}, allow_redirects=False)
    assert out.status == 303
    assert (await client.get("/", allow_redirects=False)).status == 200
