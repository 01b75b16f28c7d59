"""Shared fixtures: a configuration directory per test, built from the shipped files."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.pg import PostgresServer, postgres_server

REPO = Path(__file__).resolve().parent.parent
TOKEN = "s3cret-t0ken-for-tests"


def require_binary(name: str) -> str:
    """The path of a binary a test needs; under CI a missing one fails instead of skipping."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed (make test installs it)")
        pytest.skip(f"{name} is not installed")
    return path


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a responder.yaml in tmp_path using the shipped rules/patterns/templates."""

    def write(extra: dict[str, Any] | None = None, *, token: str | None = TOKEN,
              channels: dict[str, Any] | None = None) -> Path:
        config: dict[str, Any] = {
            "listen": "127.0.0.1:0",
            "state": {"path": str(tmp_path / "state.db")},
            "rules": [str(REPO / "rules/runbooks/*.yaml")],
            "patterns": [str(REPO / "rules/patterns.yaml")],
            "templates": str(REPO / "templates"),
            "channels": channels or {"console": {"type": "log"}, "oncall": {"type": "log"},
                                     "pager": {"type": "log"}},
        }
        if token is not None:
            (tmp_path / "token").write_text(token + "\n")
            config["auth"] = {"bearer_token_file": "token"}
        config.update(extra or {})
        path = tmp_path / "responder.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    return write


async def eventually(check: Callable[[], Any], within: float = 10.0) -> Any:
    """``check()`` (a value or an awaitable) once it is truthy; fails after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {within}s: {result!r}")
        await asyncio.sleep(0.02)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole session (see tests/pg.py)."""
    with postgres_server() as server:
        yield server


@pytest.fixture
def pg_dsn(pg_server: PostgresServer) -> str:
    """The DSN (with its password) of a fresh, empty database on the session's server."""
    return pg_server.create_database()
