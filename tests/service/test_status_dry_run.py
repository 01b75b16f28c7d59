"""``/api/v1/status`` and the console say whether actions really run: ``dry_run: false``
with no cluster to act on is still a dry run, and they say so, with the reason."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from responder.app import create_app
from responder.load import load_runtime
from tests.fakes.argo_server import FakeArgoServer


@pytest.fixture
async def argo() -> AsyncIterator[FakeArgoServer]:
    async with FakeArgoServer(token="argo-token") as server:
        yield server


async def test_no_cluster_configured_is_a_dry_run_in_status_and_console(
        write_config: Callable[..., Path], aiohttp_client: Callable[..., Any]) -> None:
    config = write_config({"dry_run": False}, token=None)
    client = await aiohttp_client(create_app(load_runtime(config), registry=CollectorRegistry()))
    status = await (await client.get("/api/v1/status")).json()
    assert (status["dry_run"], status["backend"]) == (True, "dry-run")
    assert "no Argo Server and no Kubernetes API" in status["dry_run_reason"]
    page = await (await client.get("/ui/config")).text()
    assert "dry run" in page


async def test_an_argo_server_to_act_on_is_no_dry_run(
        tmp_path: Path, write_config: Callable[..., Path], argo: FakeArgoServer,
        aiohttp_client: Callable[..., Any]) -> None:
    (tmp_path / "argo-token").write_text("argo-token")
    config = write_config({"argo": {"server": argo.url, "token_file": "argo-token"}},
                          token=None)
    client = await aiohttp_client(create_app(load_runtime(config), registry=CollectorRegistry()))
    status = await (await client.get("/api/v1/status")).json()
    assert (status["dry_run"], status["dry_run_reason"]) == (False, None)
    assert "dry run" not in await (await client.get("/ui/config")).text()


async def test_dry_run_set_says_so_even_with_a_cluster(
        tmp_path: Path, write_config: Callable[..., Path], argo: FakeArgoServer,
        aiohttp_client: Callable[..., Any]) -> None:
    (tmp_path / "argo-token").write_text("argo-token")
    config = write_config({"dry_run": True,
                           "argo": {"server": argo.url, "token_file": "argo-token"}}, token=None)
    client = await aiohttp_client(create_app(load_runtime(config), registry=CollectorRegistry()))
    status = await (await client.get("/api/v1/status")).json()
    assert (status["dry_run"], status["dry_run_reason"]) == (True, "dry_run is set")
