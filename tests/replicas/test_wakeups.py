"""A replica that did not receive the webhook learns of the work at once (LISTEN/NOTIFY),
and the poll floor wakes it even when no notification comes."""

from __future__ import annotations

import asyncio

from responder.journal.postgres import PostgresJournal
from tests.contract.helpers import attempt, deliver


async def test_work_journaled_by_one_replica_wakes_the_other_through_notify(pg_dsn: str) -> None:
    sender = PostgresJournal(pg_dsn, owner="a", pool_size=2)
    # only a NOTIFY can wake it within the test
    listener = PostgresJournal(pg_dsn, owner="b", pool_size=2, poll=3600.0)
    woken: asyncio.Queue[str] = asyncio.Queue()
    listener.on_wake = woken.put_nowait
    await sender.open()
    await listener.open()
    try:
        await _listening(listener)
        await deliver(sender, "etl-notify")
        assert await asyncio.wait_for(woken.get(), 10) == "delivery"
        await attempt(sender, "fp@notify")
        assert await asyncio.wait_for(_next_not(woken, "delivery"), 10) == "attempt"
    finally:
        await sender.close()
        await listener.close()


async def test_the_poll_floor_wakes_every_worker_without_a_notification(pg_dsn: str) -> None:
    journal = PostgresJournal(pg_dsn, owner="a", pool_size=2, poll=0.05)
    woken: asyncio.Queue[str] = asyncio.Queue()
    journal.on_wake = woken.put_nowait
    await journal.open()
    try:
        kinds = {await asyncio.wait_for(woken.get(), 10) for _ in range(3)}
        assert kinds == {"delivery", "attempt", "outbox"}
    finally:
        await journal.close()


async def _listening(journal: PostgresJournal) -> None:
    """Until the listener's connection has run LISTEN (it connects in the background)."""
    for _ in range(200):
        if journal.listening:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the journal never started listening")


async def _next_not(queue: asyncio.Queue[str], skip: str) -> str:
    while (kind := await queue.get()) == skip:
        pass
    return kind
