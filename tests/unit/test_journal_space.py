"""The SQLite journal's file under retention: a storm's pages go back to the filesystem, so
wave after wave of the same load leaves the file as small as it was (SPEC §14)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from responder.journal import Event, SqliteJournal
from responder.journal.retention import Retention
from responder.model import decode_group

TEXT = "step build failed: " + "x" * 2000   # a long failure text, as real alerts carry


def payload(wave: int, group: int) -> bytes:
    alerts = [{"status": "firing",
               "labels": {"alertname": "WorkflowFailed", "workflow": f"w{wave}-{group}-{i}"},
               "annotations": {"description": TEXT},
               "startsAt": "2026-01-01T00:00:00Z"} for i in range(25)]
    return json.dumps({"version": "4", "status": "firing", "groupKey": f"g{wave}-{group}",
                       "alerts": alerts}).encode()


def pages(db: Path) -> tuple[int, int]:
    """(pages in the file, of them free), as another process reads them."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        count, free = (int(conn.execute(f"PRAGMA {p}").fetchone()[0])
                       for p in ("page_count", "freelist_count"))
    return count, free


async def no_pause(seconds: float) -> None:
    pass


async def test_retention_gives_a_storms_pages_back_so_the_file_does_not_grow_wave_over_wave(
        tmp_path: Path) -> None:
    now = [1_000_000.0]
    db = tmp_path / "state.db"
    journal = SqliteJournal(db, clock=lambda: now[0])
    await journal.open()
    sizes: list[int] = []
    retention = Retention(journal, retention=lambda: 60.0, clock=lambda: now[0],
                          report_size=sizes.append, sleep=no_pause)
    peaks, after = [], []
    try:
        for wave in range(3):
            for group in range(24):
                await journal.record_delivery(*decode_group(payload(wave, group)))
            while batch := await journal.claim_deliveries(limit=50, max_alerts=500):
                for d in batch:
                    await journal.finish_delivery(
                        d.id, [(r.id, "done", {"category": "CodeDefect"}, []) for r in d.new],
                        [Event(kind="alert", receipt_id=r.id, instance=r.instance,
                               detail={"text": TEXT}) for r in d.new])
            peaks.append(pages(db)[0])
            now[0] += 3600
            assert await retention.prune_once() > 0
            after.append(pages(db))
    finally:
        await journal.close()
    peak = peaks[0]
    assert peak > 1200, peaks                     # the storm took a few MiB
    for count, free in after:
        assert count < peak / 3, (after, peaks)   # ... and gave them back
        assert free <= max(256, (count - free) // 4), after
    assert all(c <= after[0][0] for c, _ in after[1:]), after   # flat, wave over wave
    assert db.stat().st_size <= after[0][0] * 4096


async def test_a_journal_made_before_auto_vacuum_is_still_pruned_and_keeps_its_pages(
        tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    with sqlite3.connect(db) as conn:          # as an earlier release created it
        conn.execute("PRAGMA auto_vacuum=NONE")
        conn.execute("CREATE TABLE filler (x BLOB)")
    now = [1_000_000.0]
    journal = SqliteJournal(db, clock=lambda: now[0])
    await journal.open()
    try:
        await journal.record_delivery(*decode_group(payload(0, 0)))
        (d,) = await journal.claim_deliveries()
        await journal.finish_delivery(d.id, [(r.id, "done", {}, []) for r in d.new], [])
        now[0] += 3600
        assert await journal.prune(now[0] - 60) > 0
        assert await journal.release_space() == 0
    finally:
        await journal.close()
