"""Disk space held back for webhooks, so a full disk recovers with acknowledgements first.

When the journal's filesystem fills up, every write fails and webhooks are answered 503
(never a 200 for an alert that is not stored). Once space is freed, whoever writes first
takes it: without a reserve that is the pipeline catching up and the WAL checkpoint, and
the space is gone again before a single webhook is stored. So the SQLite journal keeps a
file of ``size`` bytes next to the database. On the first webhook that fails for lack of
space the file is deleted and the webhook is written into the room it leaves; from then
until the filesystem has room for the reserve again, only webhooks write (the pipeline,
the scheduler and the outbox back off, checkpoints wait), and ``/-/ready`` is back as
soon as a webhook is stored.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
from pathlib import Path

log = logging.getLogger("responder.journal")
_CHUNK = 64 * 1024


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the filesystem (or the database) has no room left."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(exc, sqlite3.Error):
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            return True
        return "disk is full" in str(exc) or "disk full" in str(exc)
    return False


class DiskReserve:
    """A file of ``size`` bytes whose space is given to webhooks when the disk is full."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size

    @property
    def held(self) -> bool:
        try:
            return self.path.stat().st_size >= self.size
        except FileNotFoundError:
            return False

    def room(self) -> int:
        """Bytes an unprivileged writer can still use on the reserve's filesystem."""
        stat = os.statvfs(self.path.parent)
        return stat.f_bavail * stat.f_frsize

    def take(self) -> bool:
        """Hold the reserve (written out, so the space is really allocated); False when
        the filesystem has no room for it."""
        if self.held:
            return True
        try:
            with self.path.open("wb") as f:
                chunk = b"\0" * _CHUNK
                for _ in range(0, self.size, _CHUNK):
                    f.write(chunk)
                f.flush()   # written, the blocks are allocated: ENOSPC shows here
        except OSError as exc:
            self.path.unlink(missing_ok=True)
            if not disk_full(exc):
                log.warning("journal: cannot write the disk reserve %s: %s", self.path, exc)
            return False
        return True

    def release(self) -> bool:
        """Give the reserve's space up; True when there was one to give."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True
