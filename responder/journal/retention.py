"""Retention: finished work older than ``state.retention`` leaves the journal (SPEC §14).

A pass deletes in small batches (``Journal.prune``), each its own short transaction with a
pause between, so webhook commits are never stuck behind a long delete; it runs every
``interval`` seconds, off the hot path. Pending work is never deleted: the journal keeps
every receipt whose alert still has an attempt to run, and every message not yet sent.
Each pass also reports the journal's size (``responder_journal_bytes``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from responder.journal.base import Journal
from responder.journal.records import JournalUnavailable

log = logging.getLogger("responder.journal")


class Retention:
    BATCH = 500          # rows per table per transaction
    PAUSE = 0.05         # seconds between two batches

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
                log.warning("retention pass stopped: %s", exc)
            await self.sleep(self.interval())

    async def prune_once(self) -> int:
        """Delete everything past retention, batch by batch; returns the rows deleted."""
        before = self.clock() - self.retention()
        total = 0
        while deleted := await self.journal.prune(before, batch=self.BATCH):
            total += deleted
            await self.sleep(self.PAUSE)
        self.report_size(await self.journal.size_bytes())
        if total:
            log.info("retention: %d rows older than %.0fs deleted", total, self.retention())
        return total
