"""Refused credentials are logged, at most once per interval with a count, never echoed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from responder.access import FailedLogins
from responder.app import create_app
from responder.load import load_runtime


def test_a_burst_of_failures_is_one_line_then_one_with_the_count(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    report = FailedLogins(every=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="responder.auth"):
        for _ in range(50):
            report.note("POST /webhook", "10.0.0.7")
            now[0] += 0.1
        now[0] += 10.0
        report.note("console login", "10.0.0.8")
    assert [r.getMessage() for r in caplog.records] == [
        "authentication failed: POST /webhook from 10.0.0.7",
        "authentication failed: console login from 10.0.0.8 (49 more refused since the "
        "last report)"]


async def test_a_wrong_token_is_logged_without_the_token(
        write_config: Callable[..., Path], aiohttp_client: Callable[..., Any],
        caplog: pytest.LogCaptureFixture) -> None:
    client = await aiohttp_client(create_app(load_runtime(write_config()),
                                             registry=CollectorRegistry()))
    with caplog.at_level(logging.WARNING, logger="responder.auth"):
        resp = await client.post("/webhook", data=b"{}",
                                 headers={"Authorization": "Bearer guessed-s3cret"})
    assert resp.status == 401
    assert "authentication failed: POST /webhook from 127.0.0.1" in caplog.text
    assert "guessed-s3cret" not in caplog.text
