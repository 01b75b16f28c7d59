"""What an operator reads in the log while the journal's disk is full.

A full disk is not one failure but a state that lasts until someone frees space, and every
writer (pipeline, scheduler, outbox, approvals, retention) meets it once a second. The
journal reports it, not each writer: one error when the disk fills, one warning if the
disk reserve is used up too and webhooks are answered 503, then a reminder at most every
``REMIND`` seconds with how long it has been full and how many writes were held, and one
info line when there is room again. The writers log a ``JournalFull`` at debug level only;
every other journal error they still log as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from responder.journal.records import JournalFull

log = logging.getLogger("responder.journal")


def failure_level(exc: BaseException) -> int:
    """The level a writer logs a journal failure at: debug for a full disk (the journal
    reports that itself), error for anything else."""
    return logging.DEBUG if isinstance(exc, JournalFull) else logging.ERROR


class DiskFullReport:
    REMIND = 60.0   # seconds between two reminders while the disk stays full

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.since: float | None = None      # when the disk filled; None: it has room
        self.held = 0                        # writes held back since then
        self.refused = 0                     # webhooks answered 503 since then
        self._reminded_at = 0.0

    def filled(self, error: BaseException) -> None:
        """A write failed for lack of space (logged once per full episode)."""
        if self.since is not None:
            return
        self.since = self._reminded_at = self.clock()
        self.held = self.refused = 0
        log.error("journal: the disk is full (%s); webhooks are answered from the reserve, "
                  "processing waits for free space", error)

    def hold(self) -> None:
        """A write of the pipeline, the scheduler or the outbox was held back."""
        self.held += 1
        self.remind()

    def refuse(self, webhooks: int) -> None:
        """Webhooks could not be stored (the reserve is used up too): answered 503."""
        if not self.refused:
            log.warning("journal: the disk reserve is used up too: webhooks are answered "
                        "503 until there is space (Alertmanager sends them again)")
        self.refused += webhooks
        self.remind()

    def remind(self) -> None:
        """While full: the reminder, once every ``REMIND`` seconds."""
        now = self.clock()
        if self.since is None or now - self._reminded_at < self.REMIND:
            return
        self._reminded_at = now
        log.error("journal: the disk is still full, for %s now (writes held: %d%s); free "
                  "space on the journal's volume", _duration(now - self.since), self.held,
                  f", webhooks answered 503: {self.refused}" if self.refused else "")

    def cleared(self) -> None:
        """Room again: one line, with what the episode cost."""
        if self.since is None:
            return
        log.info("journal: free space again after %s (writes held: %d%s); processing resumes",
                 _duration(self.clock() - self.since), self.held,
                 f", webhooks answered 503: {self.refused}" if self.refused else "")
        self.since = None


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
