"""What an operator reads in the log while the journal's disk is full.

A full disk is not one failure but a state that lasts until someone frees space, and every
writer (pipeline, scheduler, outbox, approvals, retention) meets it once a second. The
journal reports it, not each writer: one error when the disk fills, one warning if the
disk reserve is used up too and webhooks are answered 503, then a reminder at most every
``REMIND`` seconds with how long it has been full and how many writes were held, and one
info line when there is room again (a disk that refills at once is the same episode). The
writers log a ``JournalFull`` at debug level only; every other journal error they still
log as before.
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
    """The full-disk state as the log tells it. A disk that fills again within ``REMIND``
    of the line saying it had room (space freed, then taken again at once) continues the
    episode silently: the reminder, due a minute after that line, says it is full again
    and how often it refilled, so a flapping disk is not two lines a second either."""

    REMIND = 60.0   # seconds between two lines while the disk stays full

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.since: float | None = None      # when the disk filled; None: it has room
        self.started = 0.0                   # when this episode's first fill was
        self.held = 0                        # writes held back in this episode
        self.refused = 0                     # webhooks answered 503 in this episode
        self.refills = 0                     # times it filled again soon after room came
        self._told_full = False              # what the last line said
        self._told_at: float | None = None   # when it said it

    def filled(self, error: BaseException) -> None:
        """A write failed for lack of space."""
        if self.since is not None:
            return
        now = self.since = self.clock()
        if self._told_at is not None and now - self._told_at < self.REMIND:
            self.refills += 1
            log.debug("journal: the disk is full again (%s)", error)
            return
        self.started, self.held, self.refused, self.refills = now, 0, 0, 0
        self._tell(True, now)
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
        """While full: a reminder, once ``REMIND`` has passed since the last line."""
        now = self.clock()
        if self.since is None or (self._told_at is not None
                                  and now - self._told_at < self.REMIND):
            return
        self._tell(True, now)
        log.error("journal: the disk is still full, for %s now (%s); free space on the "
                  "journal's volume", _duration(now - self.started), self._counts())

    def cleared(self) -> None:
        """Room again: one line, with what the episode cost (unless the last line already
        said there is room: then the disk only refilled for a moment)."""
        if self.since is None:
            return
        self.since = None
        if not self._told_full:
            log.debug("journal: free space again")
            return
        now = self.clock()
        self._tell(False, now)
        log.info("journal: free space again after %s (%s); processing resumes",
                 _duration(now - self.started), self._counts())

    def _tell(self, full: bool, now: float) -> None:
        self._told_full, self._told_at = full, now

    def _counts(self) -> str:
        parts = [f"writes held: {self.held}"]
        if self.refused:
            parts.append(f"webhooks answered 503: {self.refused}")
        if self.refills:
            parts.append(f"filled again {self.refills} times after room came back")
        return ", ".join(parts)


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
