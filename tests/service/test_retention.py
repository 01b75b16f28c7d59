"""Retention through HTTP: finished alerts leave the audit log once older than
``state.retention``, the log says how far back it reaches, and the journal's size is a
metric."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from responder.app import create_app
from responder.errors import ConfigErrors
from responder.load import load_runtime
from tests.conftest import eventually
from tests.service.test_webhook import AUTH, alert, payload, post


def quiet(i: int) -> dict[str, Any]:
    """An alert no shipped runbook matches: finished once processed, nothing left to do."""
    return alert(i, alertname="DiskAlmostFull")


async def test_finished_alerts_older_than_the_retention_are_deleted_and_the_log_says_since(
        aiohttp_client: Callable[..., Any], write_config: Callable[..., Path]) -> None:
    now = [1_800_000_000.0]
    runtime = load_runtime(write_config({"state": {"path": "state.db", "retention": "10s"}}))
    client = await aiohttp_client(create_app(runtime, registry=CollectorRegistry(),
                                             clock=lambda: now[0]))

    async def audit() -> dict[str, Any]:
        resp = await client.get("/api/v1/events?limit=100", headers=AUTH)
        assert resp.status == 200
        return await resp.json()  # type: ignore[no-any-return]

    assert (await post(client, payload([quiet(1), quiet(2)])))[0] == 200
    first = await eventually(lambda: _done(audit(), 2))
    assert first["retention"] == {"period": "10s", "seconds": 10.0, "since": None}
    now[0] += 60
    assert (await post(client, payload([quiet(3)])))[0] == 200
    await eventually(lambda: _done(audit(), 1))
    later = await eventually(lambda: _pruned(audit()), within=5)
    assert [a["alert"]["labels"]["workflow"] for a in later["alerts"]] == ["wf-3"]
    assert later["retention"]["since"] == now[0] - 10
    metrics = await (await client.get("/metrics")).text()
    size = re.search(r"^responder_journal_bytes ([0-9.e+]+)$", metrics, re.M)
    assert size is not None and float(size.group(1)) > 0


async def _done(audit: Any, n: int) -> dict[str, Any] | None:
    data: dict[str, Any] = await audit
    states = [a["state"] for a in data["alerts"]]
    return data if states.count("done") >= n and "pending" not in states else None


async def _pruned(audit: Any) -> dict[str, Any] | None:
    data: dict[str, Any] = await audit
    return data if len(data["alerts"]) == 1 else None


@pytest.mark.parametrize("value, error", [("0s", "must be longer than 0s"),
                                          ("a week", "invalid duration")])
def test_a_bad_retention_is_a_config_error_at_its_line(
        write_config: Callable[..., Path], value: str, error: str) -> None:
    path = write_config({"state": {"path": "state.db", "retention": value}})
    with pytest.raises(ConfigErrors) as exc:
        load_runtime(path)
    (line,) = [str(e) for e in exc.value.errors]
    assert re.match(rf"{re.escape(str(path))}:\d+: state.retention: .*{error}", line), line
