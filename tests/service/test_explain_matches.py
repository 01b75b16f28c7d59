"""``responder explain`` shows the messages the service sends: the same payload, explained
and then processed, gives the same bodies (what the actions did included)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from responder.app import create_app
from responder.explain import explain
from responder.load import load_runtime
from responder.model import decode_group
from tests.conftest import REPO, TOKEN, eventually


def sent(db: Path) -> dict[str, Any]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT channel, message FROM outbox WHERE state = 'sent'").fetchall()
    return {channel: json.loads(message)["body"] for channel, message in rows}


async def test_explain_renders_the_bodies_the_service_sends(
        tmp_path: Path, write_config: Callable[..., Path],
        aiohttp_client: Callable[..., Any]) -> None:
    body = (REPO / "examples/workflow-failed.json").read_bytes()
    runtime = load_runtime(write_config())
    explained = {n["channel"]: n["body"] for n in explain(runtime, decode_group(body)[0])
                 ["notifications"] if n["runbook"] == "retry-transient-workflow-failure"}
    assert explained["oncall"]["outcomes"] == ["scheduled"]
    client = await aiohttp_client(create_app(runtime, registry=CollectorRegistry()))
    resp = await client.post("/webhook", data=body,
                             headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status == 200
    async def oncall_sent() -> dict[str, Any] | None:
        bodies = sent(tmp_path / "state.db")
        return bodies if "oncall" in bodies else None

    got = await eventually(oncall_sent)
    assert got["oncall"] == explained["oncall"]
