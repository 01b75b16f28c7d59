"""The SQLite journal's held commits (the pipeline's batches) and the event loop's turns.

Inside ``holding_commits`` the holder's writes are one transaction: nobody else sees them,
or writes, until ``commit_held`` (or the end of the scope, or ``HOLD_AT_MOST``); a write
that raises is undone alone; leaving the scope by an exception rolls back what is held."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from responder.journal import Event, SqliteJournal
from responder.journal.records import Breaker
from responder.model import decode_group
from responder.turns import Turns

WEBHOOK = (b'{"version":"4","status":"firing","alerts":[{"status":"firing","labels":'
           b'{"alertname":"A","i":"1"},"startsAt":"2026-01-01T00:00:00Z"}]}')


def committed_events(path: Path) -> list[str]:
    """What another process sees: the events committed to the file."""
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return [r[0] for r in db.execute("SELECT outcome FROM events ORDER BY id")]
    finally:
        db.close()


async def test_held_writes_are_seen_by_nobody_else_until_committed(
        journal: SqliteJournal) -> None:
    async with journal.holding_commits():
        await journal.add_events([Event(kind="test", outcome="one")])
        await journal.add_events([Event(kind="test", outcome="two")])
        assert committed_events(journal.path) == []
        await journal.set_flag("paused", True)
        assert await journal.get_flag("paused") is True     # the holder reads its own
        await journal.commit_held()
        assert committed_events(journal.path) == ["one", "two"]
        await journal.add_events([Event(kind="test", outcome="three")])
    assert committed_events(journal.path) == ["one", "two", "three"]   # the end commits


async def test_a_webhook_waits_for_the_held_transaction_and_is_stored_after_it(
        journal: SqliteJournal) -> None:
    async with journal.holding_commits():
        await journal.add_events([Event(kind="test", outcome="held")])
        webhook = asyncio.create_task(journal.record_delivery(*decode_group(WEBHOOK)))
        await asyncio.sleep(0.05)
        assert not webhook.done()            # its rows need the journal's lock
        await journal.commit_held()
        result = await asyncio.wait_for(webhook, 5)
    assert result.accepted == 1
    assert committed_events(journal.path) == ["held"]
    assert len(await journal.pending_deliveries()) == 1


async def test_another_task_cannot_commit_what_the_holder_holds(
        journal: SqliteJournal) -> None:
    async with journal.holding_commits():
        await journal.add_events([Event(kind="test", outcome="held")])
        await asyncio.create_task(journal.commit_held())
        assert committed_events(journal.path) == []


async def test_an_exception_leaving_the_scope_rolls_back_what_is_held(
        journal: SqliteJournal) -> None:
    with pytest.raises(RuntimeError):
        async with journal.holding_commits():
            await journal.add_events([Event(kind="test", outcome="committed")])
            await journal.commit_held()
            await journal.add_events([Event(kind="test", outcome="lost")])
            raise RuntimeError("the pipeline was cancelled")
    assert committed_events(journal.path) == ["committed"]
    await journal.add_events([Event(kind="test", outcome="after")])   # the lock is free
    assert committed_events(journal.path) == ["committed", "after"]


async def test_a_write_that_raises_inside_is_undone_alone(journal: SqliteJournal) -> None:
    def broken(row: Breaker | None) -> tuple[Breaker, list[Event]] | None:
        raise ValueError("a bug in a breaker step")

    async with journal.holding_commits():
        await journal.add_events([Event(kind="test", outcome="before")])
        with pytest.raises(ValueError):
            await journal.change_breakers([
                ("k", lambda row: (Breaker("k", {"state": "open"}, None),
                                   [Event(kind="test", outcome="undone")])),
                ("k2", broken)])
        await journal.add_events([Event(kind="test", outcome="after")])
    assert committed_events(journal.path) == ["before", "after"]
    assert await journal.load_breakers() == []


async def test_a_transaction_held_too_long_is_committed_by_the_next_write(
        journal: SqliteJournal) -> None:
    journal.HOLD_AT_MOST = 0.0
    async with journal.holding_commits():
        await journal.add_events([Event(kind="test", outcome="one")])
        assert committed_events(journal.path) == []
        await journal.add_events([Event(kind="test", outcome="two")])
        assert committed_events(journal.path) == ["one"]


async def test_a_turn_is_taken_only_when_the_last_was_long_enough_ago() -> None:
    now = [100.0]
    turns = Turns(every=0.001, clock=lambda: now[0])
    ran: list[float] = []

    async def turned() -> bool:
        asyncio.get_running_loop().call_soon(ran.append, now[0])
        before = len(ran)
        await turns.take()
        return len(ran) > before

    assert await turned()                 # the first one
    ran.clear()
    now[0] += 0.0005
    assert not await turned()             # too soon: no turn, the callback waits
    await asyncio.sleep(0)
    now[0] += 0.0006
    assert await turned()
