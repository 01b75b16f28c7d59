"""Schema versions: a journal of schema version 1 (the committed fixture) is migrated in one
transaction with its work intact; a newer journal stops ``responder serve`` with a clear
error and no traceback."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from responder.journal import JournalUnavailable, SqliteJournal
from responder.journal.migrations import SCHEMA_VERSION
from responder.model import decode_group
from tests.conftest import REPO
from tests.unit.test_cli import RESPONDER

V1 = REPO / "tests/data/journal/v1.db"
T0 = 1_767_225_600.0


def rows(path: Path, sql: str) -> list[Any]:
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


@pytest.fixture
def v1(tmp_path: Path) -> Path:
    path = tmp_path / "state.db"
    shutil.copyfile(V1, path)
    return path


async def test_a_version_1_journal_is_migrated_with_its_work(v1: Path) -> None:
    journal = SqliteJournal(v1, clock=lambda: T0 + 120, owner="new")
    await journal.open()
    try:
        assert rows(v1, "SELECT value FROM meta WHERE name = 'schema'") == [(str(SCHEMA_VERSION),)]
        (pending,) = await journal.claim_deliveries()
        assert [r.alert["labels"]["workflow"] for r in pending.new] == ["etl-c"]
        running, scheduled = sorted(await journal.due_attempts(T0 + 120), key=lambda a: a.id)
        assert running.state == "running" and await journal.claim_attempt(running.id)
        assert scheduled.context["_tries"] == 1
        (breaker,) = await journal.load_breakers()
        assert (breaker.state["state"], breaker.spec) == ("open", {
            "threshold": 2, "window": 600.0, "cooldown": 300.0, "runbook": "workflow-retry"})
        assert await journal.get_flag("paused") is True
        assert await journal.next_outbox_due() == T0 + 600
        messages = dict(rows(v1, "SELECT state, message FROM outbox"))
        assert '"context"' not in str(messages["sent"])  # what was sent
        assert messages["pending"] == b'{"text":"etl-b failed"}'          # left as it was
        again = await journal.record_delivery(*decode_group(V1_BODY))
        assert again.delivery_id == 3                      # the sequence continues
        assert len((await journal.recent(10))["alerts"]) == 4
    finally:
        await journal.close()


V1_BODY = (b'{"version":"4","status":"firing","alerts":[{"status":"firing","labels":'
           b'{"alertname":"X"},"startsAt":"2026-01-01T00:00:00Z"}]}')


async def test_a_migration_that_fails_leaves_the_journal_as_it_was(v1: Path) -> None:
    with sqlite3.connect(v1) as db:                        # version 2's table, in the way
        db.execute("CREATE TABLE rates (x INTEGER)")
    with pytest.raises(JournalUnavailable, match="rates already exists"):
        await SqliteJournal(v1).open()
    assert rows(v1, "SELECT value FROM meta WHERE name = 'schema'") == [("1",)]
    assert "owner" not in {c[1] for c in rows(v1, "PRAGMA table_info(deliveries)")}
    assert rows(v1, "SELECT name FROM sqlite_master WHERE name = 'sequences'") == []


def test_serve_refuses_a_newer_journal_with_a_clear_error(tmp_path: Path, v1: Path) -> None:
    with sqlite3.connect(v1) as db:
        db.execute("UPDATE meta SET value = ? WHERE name = 'schema'", (str(SCHEMA_VERSION + 1),))
    config = tmp_path / "responder.yaml"
    config.write_text(yaml.safe_dump({
        "listen": "127.0.0.1:0", "state": {"path": str(v1)},
        "rules": [str(REPO / "rules/runbooks/*.yaml")],
        "patterns": [str(REPO / "rules/patterns.yaml")], "templates": str(REPO / "templates"),
        "channels": {"console": {"type": "log"}, "oncall": {"type": "log"},
                     "pager": {"type": "log"}}}))
    done = subprocess.run([RESPONDER, "serve", "-c", str(config)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert f"schema version {SCHEMA_VERSION + 1}, newer than {SCHEMA_VERSION}" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
