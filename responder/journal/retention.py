"""Retention: finished work older than ``state.retention`` leaves the journal (SPEC §14).

A pass deletes in small batches (``Journal.prune``), each its own short transaction with a
pause between, so webhook commits are never stuck behind a long delete; it runs every
``interval`` seconds, off the hot path. Pending work is never deleted: the journal keeps
every receipt whose alert still has an attempt to run, and every message not yet sent.
Each pass then gives the deleted rows' space back to the filesystem, in small steps too
(``Journal.release_space``: SQLite cuts free pages off its file, keeping some for the next
writes), so a storm's rows leave the disk with the storm instead of holding the file at its
high-water mark. Each pass also reports the journal's size (``responder_journal_bytes``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from responder.journal.base import Journal
from responder.journal.fullness import failure_level
from responder.journal.records import JournalUnavailable

log = logging.getLogger("responder.journal")


class Retention:
    BATCH = 500          # rows per table per transaction
    PAUSE = 0.05         # seconds between two batches
    PAGES = 1024         # free pages given back to the filesystem per transaction

    def __init__(self, journal: Journal, *, retention: Callable[[], float],
                 clock: Callable[[], float], report_size: Callable[[int], None],
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.journal = journal
        self.retention = retention
        self.clock = clock
        self.report_size = report_size
        self.sleep = sleep

    def interval(self) -> float:
        """A tenth of the retention, between 1 s and 5 min: prompt for short retentions."""
        return min(300.0, max(1.0, self.retention() / 10))

    async def run(self) -> None:
        while True:
            try:
                await self.prune_once()
            except JournalUnavailable as exc:
                log.log(min(logging.WARNING, failure_level(exc)),
                        "retention pass stopped: %s", exc)
            await self.sleep(self.interval())

    async def prune_once(self) -> int:
        """Delete everything past retention, batch by batch; returns the rows deleted."""
        before = self.clock() - self.retention()
        total = 0
        while deleted := await self.journal.prune(before, batch=self.BATCH):
            total += deleted
            await self.sleep(self.PAUSE)
        released = 0
        while pages := await self.journal.release_space(pages=self.PAGES):
            released += pages
            await self.sleep(self.PAUSE)
        self.report_size(await self.journal.size_bytes())
        if total or released:
            log.info("retention: %d rows older than %.0fs deleted%s", total, self.retention(),
                     f", {released} free pages given back" if released else "")
        return total
