"""The SQLite journal: the embedded backend of ``responder.journal.base.Journal``.

Every alert is in the journal before Alertmanager gets its 200, and everything that is
still to do (processing, a retry waiting out its backoff, a notification not yet
delivered) is a row here, so a restart or ``kill -9`` resumes exactly where it stopped.

SQLite (WAL) is the embedded backend. The event loop's thread owns the connection; only
the fsync of a webhook commit and the WAL checkpoints wait on the disk in other threads
(see ``SqliteJournal``). Writes that answer a webhook are group-committed: requests arriving
while a commit is in flight are written together in the next transaction, so the fsync
cost is shared under load while each request still waits for its own rows to be durable.
Those commits are ``synchronous=FULL`` (the 200 is a promise that survives power loss);
the pipeline's own bookkeeping commits with ``NORMAL``, which in WAL mode survives a
process crash or ``kill -9`` and is made durable by the next full commit. After a power
loss the pipeline may redo a step, which is safe because every step is idempotent on
journal keys. The SQL sticks to what PostgreSQL also speaks (``ON CONFLICT``,
``RETURNING``, no JSON functions outside migrations).

The WAL stays bounded: a passive checkpoint runs four times a second off the loop. Under
constant writes it never catches up with the last frames (more are committed while it
runs), so the WAL would only grow; once a quarter of ``WAL_LIMIT`` is in use, one more
passive checkpoint runs between two transactions, holding the writer's lock: with no
writer it catches up in a few milliseconds, and the next transaction writes the WAL from
its start again. Truncating instead (copy, fsync, shrink the file) holds the lock ten
times as long, which every webhook then waits for; it is kept for a WAL past
``WAL_LIMIT`` (a reader held it back) and for a WAL with nothing new for a second, so a
quiet journal's WAL takes no space.

The people's controls are journal records too. A pause is a row like an Alertmanager
silence (matchers, reason, author, expiry); an action it covers is held (a scheduled
attempt the gate holds). An approval is a row per alert instance and runbook whose
attempts wait in state ``approval``; deciding is a conditional update (``WHERE decision
IS NULL``) in the transaction that moves its attempts on, so however many replicas or
clicks race, one decision wins and the others see that it was taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from responder.journal.base import BreakerChange
from responder.journal.fullness import DiskFullReport
from responder.journal.migrations import SCHEMA_VERSION, STEPS
from responder.journal.records import (
    Approval,
    Attempt,
    Breaker,
    DecidedDelivery,
    DecidedReceipt,
    DeliveryResult,
    Event,
    FinishedDelivery,
    JournalFull,
    JournalOpenError,
    JournalUnavailable,
    JournalVersionError,
    OutboxItem,
    OutboxMessage,
    OutboxUpdate,
    Pause,
    PendingDelivery,
    Receipt,
)
from responder.journal.reserve import DiskReserve, disk_full
from responder.journal.rows import APPROVAL_COLS as _APPROVAL_COLS
from responder.journal.rows import ATTEMPT_COLS as _ATTEMPT_COLS
from responder.journal.rows import CANCELLABLE, attempts_in_states
from responder.journal.rows import EVENT_COLS as _EVENT_COLS
from responder.journal.rows import FINISHED_ATTEMPT as _FINISHED_ATTEMPT
from responder.journal.rows import OUTBOX_COLS as _OUTBOX_COLS
from responder.journal.rows import PAUSE_COLS as _PAUSE_COLS
from responder.journal.rows import approval_of as _approval
from responder.journal.rows import attempt_of as _attempt
from responder.journal.rows import event_dict as _event_dict
from responder.journal.rows import json_decode as _json_decode
from responder.journal.rows import json_encode as _json_encode
from responder.journal.rows import outbox_of as _outbox
from responder.journal.rows import pause_of as _pause
from responder.model import AlertGroup, Rejected
from responder.turns import Turns

T = TypeVar("T")
_INCREMENTAL = 2   # PRAGMA auto_vacuum: 0 none, 1 full, 2 incremental
log = logging.getLogger("responder.journal")


class SqliteJournal:
    """The SQLite journal. Open with ``await journal.open()``; every method is async.

    The connection belongs to the event loop's thread: statements run inline, because a
    statement takes microseconds and handing each one to a thread costs far more (the
    thread must win the GIL back from the loop after every statement). Only what waits on
    the disk leaves the loop: the ``COMMIT`` of a webhook batch (its fsync) runs on the
    commit thread while the loop serves other requests, and the connection's lock keeps
    everything else off the connection until it returns. WAL checkpoints run on a second
    connection in their own thread, and so do the long reads of the audit API.

    ``owner`` names this process in the leases it takes. A process that starts again
    under the same name (same host and port) takes its own leases back at once; leases
    of any other owner are claimable only once they expire.
    """

    CHECKPOINT_EVERY = 0.25   # seconds between passive WAL checkpoints
    WAL_LIMIT = 64 * 1024 * 1024   # past this, a truncating checkpoint between transactions
    IDLE_AFTER = 1.0   # seconds with no new WAL frame: the WAL is truncated
    KEEP_FREE = 1024 * 1024   # bytes of free pages ``release_space`` keeps, at least
    # The longest a held transaction (``holding_commits``) stays open before the holder's
    # next write commits it: the scheduler, the outbox and the API wait for it meanwhile.
    HOLD_AT_MOST = 0.02

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time,
                 synchronous: str = "FULL", owner: str | None = None,
                 reserve_bytes: int = 0, turns: Turns | None = None) -> None:
        self.path = path
        # Disk full: see responder.journal.reserve. ``full`` holds every write but the
        # webhooks' until the filesystem has room for the reserve again.
        self.reserve = (DiskReserve(path.with_name(path.name + "-reserve"), reserve_bytes)
                        if reserve_bytes > 0 else None)
        self.full = False
        self.disk_full_report = DiskFullReport(clock)
        self._wal_checked_at = 0.0
        # A turn of the event loop before a step of the pipeline, the scheduler or the
        # outbox, at most every half millisecond (not at every one of a storm's writes);
        # the budget is the event loop's, shared with the service's (``create_app``).
        self.turns = turns if turns is not None else Turns()
        self._holder: asyncio.Task[Any] | None = None   # see holding_commits
        self._held_since: float | None = None   # monotonic; None: no held transaction open
        self._to_release: set[int] = set()
        self.clock = clock
        self.synchronous = synchronous
        self.owner = owner or f"{os.uname().nodename}:{os.getpid()}"
        self._committer: ThreadPoolExecutor | None = None
        self._background: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        self._batch: list[tuple[AlertGroup, list[Rejected], asyncio.Future[DeliveryResult]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        self.healthy = False
        self._sync_now = synchronous
        self._frame_bytes = 4096 + 24   # a WAL frame: a page and its header (page_size at open)

    # -- lifecycle ---------------------------------------------------------------------
    async def open(self) -> None:
        try:
            self._open_sync()
        except (JournalVersionError, JournalUnavailable):
            raise
        except (OSError, sqlite3.Error) as exc:
            raise JournalOpenError(f"cannot open the journal {self.path}: "
                                   f"{getattr(exc, 'strerror', None) or exc}") from None
        if self.reserve is not None and not self.reserve.take():
            log.warning("journal: no room for the %d-byte disk reserve next to %s",
                        self.reserve.size, self.path)
        self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-commit")
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-read")
        loop = asyncio.get_running_loop()
        self._reader = await loop.run_in_executor(self._background, self._open_reader)
        self._checkpointer = asyncio.create_task(self._checkpoint_loop())
        self.healthy = True

    async def open_read_only(self) -> None:
        """Open to read only (``responder replay``): nothing is created, migrated or taken
        back, and a journal of another schema version is refused."""
        if not self.path.exists():
            raise JournalUnavailable(f"{self.path}: no such journal")
        db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                             isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA query_only=1")
            row = db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
        except sqlite3.Error as exc:
            db.close()
            raise JournalUnavailable(f"{self.path}: not a responder journal ({exc})") from None
        version = int(row[0]) if row else 0
        if version != SCHEMA_VERSION:
            db.close()
            raise JournalVersionError(
                f"{self.path}: the journal has schema version {version}, this version of the "
                f"responder reads {SCHEMA_VERSION}; run `responder serve` of this version on "
                "it once to migrate it, or use the matching version")
        self._db = self._reader = db
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-read")
        self.healthy = True

    def _open_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            # Set before the first table is created, so a new journal can give the pages
            # retention frees back to the filesystem (``release_space``).
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self.synchronous}")
            db.execute("PRAGMA busy_timeout=5000")
            # Checkpoints run on the reader connection, off the loop (see _checkpoint_loop).
            db.execute("PRAGMA wal_autocheckpoint=0")
            db.execute("PRAGMA journal_size_limit=67108864")
            self._frame_bytes = int(db.execute("PRAGMA page_size").fetchone()[0]) + 24
            self._sync_now = self.synchronous
            self._tx_on(db, self._migrate, self.synchronous)
            self._tx_on(db, self._recover, self.synchronous)
            if db.execute("PRAGMA auto_vacuum").fetchone()[0] != _INCREMENTAL:
                log.info("journal: %s keeps the pages retention frees for reuse (it was "
                         "created without auto_vacuum); to let it give them back to the "
                         "filesystem, run once while the responder is stopped: sqlite3 %s "
                         "'PRAGMA auto_vacuum=INCREMENTAL; VACUUM'", self.path, self.path)
        except BaseException:
            db.close()
            raise
        self._db = db

    def _migrate(self, db: sqlite3.Connection) -> None:
        """Bring the schema to ``SCHEMA_VERSION`` in this one transaction, or refuse."""
        has_meta = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
        row = db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone() \
            if has_meta else None
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise JournalVersionError(
                f"{self.path}: the journal has schema version {version}, newer than "
                f"{SCHEMA_VERSION} that this version of the responder knows; run the newer "
                "version, or start from an empty journal")
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in STEPS[step]:
                db.execute(statement)
        if version == 0:
            db.execute("INSERT INTO meta (name, value) VALUES ('schema', ?)",
                       (str(SCHEMA_VERSION),))
        elif version < SCHEMA_VERSION:
            db.execute("UPDATE meta SET value = ? WHERE name = 'schema'", (str(SCHEMA_VERSION),))
            log.info("journal migrated from schema version %d to %d", version, SCHEMA_VERSION)

    def _recover(self, db: sqlite3.Connection) -> None:
        """Give back what this owner held when it last stopped (it is not running it now)."""
        counts = [db.execute(sql, (self.owner,)).rowcount for sql in (
            "UPDATE deliveries SET owner = NULL, lease_until = NULL WHERE owner = ?",
            "UPDATE attempts SET state = 'scheduled', owner = NULL, lease_until = NULL "
            "WHERE state = 'running' AND owner = ?",
            "UPDATE outbox SET state = 'pending', owner = NULL, lease_until = NULL "
            "WHERE state = 'sending' AND owner = ?")]
        if any(counts):
            log.warning("taken back from the last run of %s: %d deliveries, %d attempts, "
                        "%d messages", self.owner, *counts)

    def _open_reader(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("PRAGMA query_only=1")
        return db

    async def _checkpoint_loop(self) -> None:
        """Move committed WAL frames into the database, without blocking writers; once a
        quarter of ``WAL_LIMIT`` is in use, catch up between two transactions so the WAL
        is reused from its start (``_catch_up_wal``); past ``WAL_LIMIT`` anyway, or idle,
        truncate it between two transactions."""
        loop = asyncio.get_running_loop()
        last_frames, changed_at = 0, time.monotonic()
        while True:
            await asyncio.sleep(self.CHECKPOINT_EVERY)
            reader = self._reader
            if reader is None or self._background is None:
                return
            if self.full:
                # Only webhooks write now, until there is room for the reserve again.
                await self._recover_space(checkpoint_anyway=True)
                self.disk_full_report.remind()
                continue
            try:
                _, frames, done = await loop.run_in_executor(
                    self._background, _checkpoint, reader, "PASSIVE")
                now = time.monotonic()
                if frames != last_frames:
                    last_frames, changed_at = frames, now
                # Past the limit, or idle (nothing committed for ``IDLE_AFTER`` and all of
                # it checkpointed): truncate, so a quiet journal's WAL takes no space.
                idle = frames == done and frames > 0 and now - changed_at >= self.IDLE_AFTER
                if idle or self._wal_bytes() > self._wal_limit():
                    await self._truncate_wal()
                    last_frames = 0
                elif frames * self._frame_bytes > self._wal_limit() // 4:
                    await self._catch_up_wal()
            except sqlite3.Error as exc:  # a failing disk also shows on the writes (503)
                log.warning("journal checkpoint failed: %s", exc)

    async def _recover_space(self, *, checkpoint_anyway: bool = False) -> None:
        """Once space is freed: first move the WAL into the database and truncate it (a
        journal that filled the disk before a checkpoint completed holds most of itself in
        the WAL, and the pipeline resuming first would fill the disk again with no way to
        checkpoint), then hold the reserve again and let every writer resume."""
        loop = asyncio.get_running_loop()
        if self._background is None:
            return
        room = await loop.run_in_executor(self._background, self._room_back)
        if room or checkpoint_anyway:
            # Without room yet, the WAL may be what holds the space (only webhooks write
            # while full): a checkpoint that fits gives it back, one that does not fails
            # harmlessly and is tried again on the next pass.
            await self._truncate_wal_if_room()
            room = room or await loop.run_in_executor(self._background, self._room_back)
            if not room and self.reserve is not None and self.reserve.held \
                    and self._wal_bytes() > self.reserve.size:
                # Still none, and the WAL holds the disk: its checkpoint needs room to move
                # pages into the database. It gets the reserve, which the truncated WAL
                # gives back many times over (the reserve is held again once it fits).
                log.warning("journal: the WAL holds the full disk; its checkpoint gets the "
                            "disk reserve")
                self.reserve.release()
                await self._truncate_wal_if_room()
                room = await loop.run_in_executor(self._background, self._room_back)
        if room:
            await loop.run_in_executor(self._background, self._recover_from_full)

    def _room_back(self) -> bool:
        reserve = self.reserve
        try:
            stat = os.statvfs(self.path.parent)
            room = stat.f_bavail * stat.f_frsize
        except OSError:
            return False
        margin = 512 * 1024     # beyond the reserve, for the pipeline to make progress
        return room >= (reserve.size if reserve is not None else 0) + margin

    def _recover_from_full(self) -> None:
        """Free space again (the reserve can be held once more): every writer resumes."""
        reserve = self.reserve
        if not self._room_back():
            return
        if reserve is not None and not reserve.take():
            return
        self.full = False
        self.healthy = True
        self.disk_full_report.cleared()

    async def _truncate_wal_if_room(self) -> None:
        if self._wal_bytes() == 0:
            return
        try:
            await self._truncate_wal()
        except sqlite3.Error as exc:
            log.debug("journal: checkpoint while the disk is full: %s", exc)

    async def _catch_up_wal(self) -> None:
        """A passive checkpoint between two transactions: with no writer it copies the
        last frames too, and the next transaction writes the WAL from its start (unless
        a reader still reads an older snapshot: then a later pass does)."""
        await self._between_transactions("PASSIVE")

    async def _truncate_wal(self) -> None:
        await self._between_transactions("TRUNCATE")

    async def _between_transactions(self, mode: str) -> None:
        """A checkpoint in ``mode`` on the writer's connection, holding its lock."""
        async with self._lock:
            await self._checkpoint_writer(mode)

    async def _checkpoint_writer(self, mode: str) -> None:
        """A checkpoint in ``mode`` on the writer's connection; the caller holds its lock."""
        db, committer = self._db, self._committer
        if db is None or committer is None:
            return
        await asyncio.get_running_loop().run_in_executor(committer, _checkpoint, db, mode)

    async def _keep_wal_small(self) -> None:
        """Before a write of the pipeline, the scheduler or the outbox: a WAL past its limit
        is truncated first. The checkpoint loop looks once a second, and a pipeline catching
        up on a small volume would fill it with WAL in less than that; then the WAL holds
        the space its own checkpoint needs, and nothing can be written any more."""
        now = time.monotonic()
        if now - self._wal_checked_at < 0.05:
            return
        self._wal_checked_at = now
        if self._wal_bytes() <= self._wal_limit():
            return
        try:
            await self._truncate_wal()
        except sqlite3.Error as exc:  # a failing disk also shows on the write that follows
            log.debug("journal: checkpoint before a write failed: %s", exc)

    def _wal_limit(self) -> int:
        """``WAL_LIMIT``, or a quarter of the free space when that is less: on a small
        volume the WAL must not be what fills it."""
        try:
            stat = os.statvfs(self.path.parent)
        except OSError:
            return self.WAL_LIMIT
        return min(self.WAL_LIMIT, max(1024 * 1024, stat.f_bavail * stat.f_frsize // 4))

    def _wal_bytes(self) -> int:
        try:
            return os.stat(f"{self.path}-wal").st_size
        except FileNotFoundError:
            return 0

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            await asyncio.gather(self._checkpointer, return_exceptions=True)
            self._checkpointer = None
        async with self._lock:
            if self._db is not None:
                if self._reader is self._db:   # opened read-only: one connection
                    self._reader = None
                elif not self.full:
                    # A clean stop leaves the WAL folded into the database, and the file
                    # only as large as its pages (what retention freed is given back).
                    try:
                        await self._checkpoint_writer("TRUNCATE")
                    except sqlite3.Error as exc:
                        log.warning("journal: checkpoint at close failed: %s", exc)
                self._db.close()
                self._db = None
        if self._background is not None:
            reader, self._reader = self._reader, None
            if reader is not None:
                await asyncio.get_running_loop().run_in_executor(self._background, reader.close)
        for pool in (self._committer, self._background):
            if pool is not None:
                pool.shutdown(wait=True)
        self._committer = self._background = None
        self.healthy = False

    # -- transactions (private: no connection leaves this class) ----------------------
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise JournalUnavailable("journal is closed")
        return self._db

    def _set_synchronous(self, db: sqlite3.Connection, synchronous: str) -> None:
        if synchronous != self._sync_now:
            db.execute(f"PRAGMA synchronous={synchronous}")
            self._sync_now = synchronous

    def _begin(self, db: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T],
               synchronous: str) -> T:
        """BEGIN, then ``fn(db)``; rolled back if it raises. The caller commits."""
        self._set_synchronous(db, synchronous)
        db.execute("BEGIN IMMEDIATE")
        try:
            return fn(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _write_failed(self, db: sqlite3.Connection, exc: sqlite3.Error) -> JournalUnavailable:
        if db.in_transaction:
            db.execute("ROLLBACK")
        if disk_full(exc):
            self.disk_full_report.filled(exc)
            self.full = True
            return JournalFull(f"journal write failed: {exc}")
        return JournalUnavailable(f"journal write failed: {exc}")

    def _tx_on(self, db: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T],
               synchronous: str = "NORMAL") -> T:
        try:
            result = self._begin(db, fn, synchronous)
            db.execute("COMMIT")
            return result
        except sqlite3.Error as exc:
            raise self._write_failed(db, exc) from exc

    async def _tx(self, fn: Callable[[sqlite3.Connection], T], *, give_way: bool = True) -> T:
        """Run ``fn(connection)`` in one transaction (``synchronous=NORMAL``); in the
        holder's, while one holds commits."""
        if self._holder is not None and self._holder is asyncio.current_task():
            return await self._held_tx(fn)
        if give_way:
            await self.turns.take()   # let waiting requests in between the pipeline's steps
        await self._before_write()
        async with self._lock:
            self._release_owed()
            return self._tx_on(self._conn(), fn)

    async def _before_write(self) -> None:
        """What every write but a webhook's does first: none while the disk is full, and
        a WAL past its limit truncated."""
        if self.full:
            self.disk_full_report.hold()
            raise JournalFull("journal full: waiting for free space (webhooks first)")
        await self._keep_wal_small()

    def _release_owed(self) -> None:
        """Give back the deliveries a failed release left held (``release_deliveries``),
        in a transaction of their own; the journal's lock is held."""
        if not self._to_release:
            return
        ids, self._to_release = sorted(self._to_release), set()
        try:
            self._tx_on(self._conn(), lambda db: self._release_on(db, ids))
        except JournalUnavailable:
            self._to_release.update(ids)   # still to give back, by the next write
            raise

    # -- held commits (the pipeline's batches) ----------------------------------------
    @contextlib.asynccontextmanager
    async def holding_commits(self) -> AsyncIterator[None]:
        """Inside, the calling task's writes join one transaction, committed by
        ``commit_held``, by its first write ``HOLD_AT_MOST`` after it began, or at the end;
        each write is a savepoint in it (one that raises is undone alone). While it is
        open, the journal's lock is the holder's: everyone else's writes and reads wait.
        Left by an exception, what is held is rolled back: a crash would have lost it too,
        and the pipeline re-runs what it did not finish."""
        if self._holder is not None:
            raise RuntimeError("commits are already held")
        self._holder = asyncio.current_task()
        try:
            yield
            await self.commit_held()
        finally:
            if self._held_since is not None:
                db = self._db
                if db is not None and db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                self._end_held()
            self._holder = None

    async def commit_held(self) -> None:
        """Commit what the holder wrote since the last commit (nothing open, or called by
        another task: nothing)."""
        if self._held_since is None or self._holder is not asyncio.current_task():
            return
        db = self._conn()
        try:
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._write_failed(db, exc) from exc
        finally:
            self._end_held()

    def _end_held(self) -> None:
        self._held_since = None
        self._lock.release()

    async def _held_tx(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if (self._held_since is not None
                and time.monotonic() - self._held_since >= self.HOLD_AT_MOST):
            await self.commit_held()
        await self.turns.take()
        if self._held_since is None:
            await self._before_write()
            await self._lock.acquire()
            try:
                self._release_owed()
                db = self._conn()
                self._set_synchronous(db, "NORMAL")
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                self._lock.release()
                raise self._write_failed(self._conn(), exc) from exc
            except BaseException:
                self._lock.release()
                raise
            self._held_since = time.monotonic()
        db = self._conn()
        try:
            db.execute("SAVEPOINT held")
            try:
                result = fn(db)
            except sqlite3.Error:
                raise
            except BaseException:
                db.execute("ROLLBACK TO held")
                db.execute("RELEASE held")
                raise
            db.execute("RELEASE held")
            return result
        except sqlite3.Error as exc:
            failed = self._write_failed(db, exc)   # the whole held transaction is undone
            self._end_held()
            raise failed from exc

    def _read_on(self, fn: Callable[[sqlite3.Connection], T], db: sqlite3.Connection | None) -> T:
        if db is None:
            raise JournalUnavailable("journal is closed")
        try:
            return fn(db)
        except sqlite3.Error as exc:
            raise JournalUnavailable(f"journal read failed: {exc}") from exc

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a short read on the journal's connection (it sees every committed write,
        and the holder its own held ones)."""
        await self.turns.take()
        if self._held_since is not None and self._holder is asyncio.current_task():
            return self._read_on(fn, self._db)
        async with self._lock:
            return self._read_on(fn, self._db)

    async def _snapshot(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a long read (the audit API) off the loop, on the reader connection."""
        if self._background is None:
            raise JournalUnavailable("journal is closed")
        return await asyncio.get_running_loop().run_in_executor(
            self._background, self._read_on, fn, self._reader)

    # -- receipts (group commit) -------------------------------------------------------
    async def record_delivery(self, group: AlertGroup, rejected: list[Rejected]) -> DeliveryResult:
        """Journal a webhook delivery; returns once its rows are committed."""
        future: asyncio.Future[DeliveryResult] = asyncio.get_running_loop().create_future()
        self._batch.append((group, rejected, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop())
        return await future

    async def _flush_loop(self) -> None:
        while self._batch:
            batch, self._batch = self._batch, []
            try:
                async with self._lock:
                    try:
                        results = await self._commit_deliveries(batch)
                    except JournalFull:
                        if self.reserve is None or not self.reserve.release():
                            raise
                        log.warning("journal: disk reserve released for webhooks")
                        results = await self._commit_deliveries(batch)
            except Exception as exc:  # the whole batch failed: every request answers 503
                self.healthy = False
                error = exc if isinstance(exc, JournalUnavailable) else JournalUnavailable(str(exc))
                if isinstance(exc, JournalFull):
                    self.disk_full_report.refuse(len(batch))
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            self.healthy = True
            for (_, _, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
            if self.full:
                # Stored while full: room may be back; the sooner the others know, the
                # sooner they resume (and the WAL is checkpointed, before webhooks fill it).
                await self._recover_space()

    async def _commit_deliveries(
        self, batch: list[tuple[AlertGroup, list[Rejected], asyncio.Future[DeliveryResult]]],
    ) -> list[DeliveryResult]:
        """Write the batch inline, then wait for its COMMIT (the fsync) on the commit thread."""
        db = self._conn()
        if self._committer is None:
            raise JournalUnavailable("journal is closed")
        try:
            results = self._begin(db, lambda db: self._write_deliveries(db, batch),
                                  self.synchronous)
            commit = asyncio.get_running_loop().run_in_executor(
                self._committer, db.execute, "COMMIT")
            try:
                await asyncio.shield(commit)
            except asyncio.CancelledError:
                # the connection is in use until COMMIT returns: keep the lock until then
                await asyncio.wait([commit])
                raise
            return results
        except sqlite3.Error as exc:
            raise self._write_failed(db, exc) from exc

    def _write_deliveries(
        self, db: sqlite3.Connection,
        batch: list[tuple[AlertGroup, list[Rejected], asyncio.Future[DeliveryResult]]],
    ) -> list[DeliveryResult]:
        now = self.clock()
        results = []
        # The batch's delivery ids are taken from the sequence first, so receipts are
        # written with their delivery's id and the delivery row once, knowing which are new.
        (last,) = db.execute("UPDATE sequences SET value = value + ? WHERE name = 'delivery' "
                             "RETURNING value", (len(batch),)).fetchone()
        delivery_id = int(last) - len(batch)
        for group, rejected, _ in batch:
            delivery_id += 1
            new: list[int] = []
            dup: list[int] = []
            # The same alert twice in one payload is one receipt: its copies are counted
            # duplicates and not written again (nor re-sent to the actor as still failing).
            seen: set[tuple[str, str]] = set()
            for alert in group.alerts:
                if (alert.instance, alert.status) in seen:
                    continue
                seen.add((alert.instance, alert.status))
                row = db.execute(
                    "INSERT INTO receipts (instance, status, fingerprint, alertname, alert, "
                    "delivery_id, received_at, last_delivery_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (instance, status) DO UPDATE SET "
                    "deliveries = receipts.deliveries + 1, last_delivery_at = excluded.received_at "
                    "RETURNING id, delivery_id",
                    (alert.instance, alert.status, alert.fingerprint, alert.alertname,
                     _json_encode(alert), delivery_id, now, now)).fetchone()
                (new if row[1] == delivery_id else dup).append(row[0])
            for item in rejected:
                db.execute(
                    "INSERT INTO events (ts, kind, outcome, detail) VALUES (?, 'rejected', "
                    "'invalid', ?)",
                    (now, _json_encode({"group_key": group.group_key, "index": item.index,
                                        "path": item.path, "error": item.error})))
            done = not (new or dup)
            db.execute(
                "INSERT INTO deliveries (id, group_key, envelope, received_at, new_receipts, "
                "dup_receipts, state, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (delivery_id, group.group_key, _json_encode(group.to_dict(with_alerts=False)),
                 now, _json_encode(new), _json_encode(dup), "done" if done else "pending",
                 now if done else None))
            results.append(DeliveryResult(delivery_id, len(new),
                                          len(dup) + len(group.alerts) - len(seen)))
        return results

    async def record_rejection(self, detail: dict[str, Any]) -> None:
        """A payload refused as a whole is still an audit event (best effort)."""
        now = self.clock()
        await self._tx(lambda db: db.execute(
            "INSERT INTO events (ts, kind, outcome, detail) VALUES (?, 'rejected', 'invalid', ?)",
            (now, _json_encode(detail))))

    def _load_pending(self, db: sqlite3.Connection, where: str, args: tuple[Any, ...],
                      limit: int, max_alerts: int) -> list[PendingDelivery]:
        out: list[PendingDelivery] = []
        loaded = 0
        rows = db.execute(
            "SELECT id, envelope, received_at, new_receipts, dup_receipts FROM deliveries "
            f"WHERE state = 'pending' AND {where} ORDER BY id LIMIT ?", (*args, limit)
        ).fetchall()
        for did, envelope, received_at, new_ids, dup_ids in rows:
            new_list, dup_list = _json_decode(new_ids), _json_decode(dup_ids)
            size = len(new_list) + len(dup_list)
            if out and loaded + size > max_alerts:
                break
            loaded += size
            out.append(PendingDelivery(
                did, _json_decode(envelope), received_at,
                tuple(self._receipts(db, new_list)), tuple(self._receipts(db, dup_list))))
        return out

    async def pending_deliveries(self, after_id: int = 0, limit: int = 100,
                                 max_alerts: int = 200) -> list[PendingDelivery]:
        """Pending deliveries in order: up to ``limit``, and once ``max_alerts`` receipts
        are loaded no more (the first delivery always comes whole). Loading runs on the
        event loop, so a backlog of large groups is taken in slices, not all at once."""
        return await self._read(lambda db: self._load_pending(
            db, "id > ?", (after_id,), limit, max_alerts))

    async def claim_deliveries(self, *, limit: int = 50, max_alerts: int = 50,
                               lease: float = 120.0) -> list[PendingDelivery]:
        now = self.clock()

        def claim(db: sqlite3.Connection) -> list[PendingDelivery]:
            out = self._load_pending(db, "(owner IS NULL OR lease_until < ?)", (now,),
                                     limit, max_alerts)
            db.executemany("UPDATE deliveries SET owner = ?, lease_until = ? WHERE id = ?",
                           [(self.owner, now + lease, d.id) for d in out])
            return out

        return await self._tx(claim)

    async def release_deliveries(self, delivery_ids: Sequence[int]) -> None:
        if self.full:
            # Given back by the first write once there is room (else they would wait out
            # their lease after the disk recovers).
            self._to_release.update(delivery_ids)
            return
        if delivery_ids:
            try:
                await self._tx(lambda db: self._release_on(db, delivery_ids))
            except JournalUnavailable:
                # The disk filled (or the journal failed) just now: the same, given back by
                # the first write that succeeds. Lost here, the pipeline would not see them
                # again until their lease ran out.
                self._to_release.update(delivery_ids)
                raise

    def _release_on(self, db: sqlite3.Connection, delivery_ids: Iterable[int]) -> None:
        db.executemany("UPDATE deliveries SET owner = NULL, lease_until = NULL "
                       "WHERE id = ? AND owner = ? AND state = 'pending'",
                       [(did, self.owner) for did in delivery_ids])

    @staticmethod
    def _receipts(db: sqlite3.Connection, ids: Sequence[int]) -> list[Receipt]:
        found: dict[int, Receipt] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for row in db.execute(
                    "SELECT id, instance, status, alert, deliveries, received_at, state "
                    f"FROM receipts WHERE id IN ({marks})", chunk):
                found[row[0]] = Receipt(row[0], row[1], row[2], _json_decode(row[3]), row[4],
                                        row[5], row[6])
        return [found[rid] for rid in ids if rid in found]

    async def finish_delivery(
        self, delivery_id: int, receipts: Iterable[tuple[int, str, Any, Any]],
        events: Iterable[Event], messages: Sequence[OutboxMessage] = (),
    ) -> int:
        (queued,) = await self.finish_deliveries([FinishedDelivery(
            delivery_id, tuple(receipts), tuple(events), tuple(messages))])
        return queued

    async def finish_deliveries(self, finished: Sequence[FinishedDelivery], *,
                                claimed: list[OutboxItem] | None = None,
                                lease: float = 120.0) -> list[int]:
        now = self.clock()
        mine: list[OutboxItem] = []

        def write(db: sqlite3.Connection) -> list[int | None]:
            mine.clear()
            return [self._finish(db, f, now, mine, now + lease) for f in finished]

        queued = await self._tx(write) if finished else []
        for f, n in zip(finished, queued, strict=True):
            if n is None:
                log.warning("delivery %d is no longer held by %s; its results are dropped",
                            f.delivery_id, self.owner)
        if claimed is not None:
            claimed.extend(mine)
        return [n or 0 for n in queued]

    def _finish(self, db: sqlite3.Connection, f: FinishedDelivery, now: float,
                claimed: list[OutboxItem], lease_until: float) -> int | None:
        # Only the delivery's holder finishes it (or anyone, when nobody holds it).
        if db.execute("UPDATE deliveries SET state = 'done', finished_at = ?, owner = NULL, "
                      "lease_until = NULL WHERE id = ? AND state = 'pending' AND "
                      "(owner IS NULL OR owner = ?)",
                      (now, f.delivery_id, self.owner)).rowcount != 1:
            return None
        db.executemany("UPDATE receipts SET state = ?, analysis = ?, runbooks = ? WHERE id = ?",
                       [(state, _json_encode(analysis), _json_encode(runbooks), rid)
                        for rid, state, analysis, runbooks in f.receipts])
        queued = 0
        written = list(f.events)
        for m in f.messages:
            item_id = self._enqueue(db, m.channel, m.dedup, m.message, m.fallback,
                                    m.receipt_id, now, now,
                                    (self.owner, lease_until) if m.claim else None)
            if item_id is not None and m.claim:
                claimed.append(OutboxItem(item_id, m.channel, m.dedup, m.message, m.fallback,
                                          m.receipt_id, "sending", 0, now, None))
            queued += item_id is not None
            written.append(m.event.but(
                outcome="queued" if item_id is not None else "duplicate"))
        self._insert_events(db, written, now)
        return queued

    # -- events ------------------------------------------------------------------------
    @staticmethod
    def _insert_events(db: sqlite3.Connection, events: Iterable[Event], now: float) -> None:
        db.executemany(
            "INSERT INTO events (ts, kind, receipt_id, instance, runbook, action, target, "
            "outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(now, e.kind, e.receipt_id, e.instance, e.runbook, e.action, e.target, e.outcome,
              _json_encode(e.detail) if e.detail is not None else None) for e in events])

    async def add_events(self, events: Iterable[Event]) -> None:
        events = list(events)
        if events:
            now = self.clock()
            await self._tx(lambda db: self._insert_events(db, events, now))

    async def decided(self, since: float, *, limit: int = 10_000) -> list[DecidedDelivery]:
        def fetch(db: sqlite3.Connection) -> list[DecidedDelivery]:
            out: list[DecidedDelivery] = []
            rows = db.execute(
                "SELECT id, envelope, received_at, new_receipts FROM deliveries "
                "WHERE state = 'done' AND received_at >= ? ORDER BY received_at, id LIMIT ?",
                (since, limit)).fetchall()
            for did, envelope, received_at, new_ids in rows:
                receipts = self._receipts(db, _json_decode(new_ids))
                decided = []
                for r in receipts:
                    analysis, runbooks = db.execute(
                        "SELECT analysis, runbooks FROM receipts WHERE id = ?", (r.id,)).fetchone()
                    events = [_event_dict(e) for e in db.execute(
                        f"SELECT {_EVENT_COLS} FROM events WHERE receipt_id = ? ORDER BY id",
                        (r.id,))]
                    decided.append(DecidedReceipt(
                        r, _json_decode(analysis) if analysis else None,
                        _json_decode(runbooks) if runbooks else [], events))
                out.append(DecidedDelivery(did, received_at, _json_decode(envelope),
                                           tuple(decided)))
            return out

        return await self._snapshot(fetch)

    async def recent(self, limit: int = 50) -> dict[str, Any]:
        """The audit log: recent receipts with their events, and recent rejections."""

        def fetch(db: sqlite3.Connection) -> dict[str, Any]:
            alerts = []
            rows = db.execute(
                "SELECT id, instance, status, alert, deliveries, received_at, last_delivery_at, "
                "state, analysis, runbooks FROM receipts ORDER BY last_delivery_at DESC, id DESC "
                "LIMIT ?", (limit,)).fetchall()
            for row in rows:
                events = [
                    _event_dict(e) for e in db.execute(
                        f"SELECT {_EVENT_COLS} FROM events WHERE receipt_id = ? OR "
                        "(instance = ? AND receipt_id IS NOT ?) ORDER BY id",
                        (row[0], row[1], row[0])).fetchall()
                ]
                alerts.append({
                    "id": row[0], "instance": row[1], "status": row[2],
                    "alert": _json_decode(row[3]), "deliveries": row[4],
                    "received_at": row[5], "last_delivery_at": row[6], "state": row[7],
                    "analysis": _json_decode(row[8]) if row[8] else None,
                    "runbooks": _json_decode(row[9]) if row[9] else [],
                    "events": events,
                })
            rejected = [
                _event_dict(e) for e in db.execute(
                    f"SELECT {_EVENT_COLS} FROM events WHERE kind = 'rejected' "
                    "ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
            ]
            since = db.execute("SELECT value FROM meta WHERE name = 'pruned_before'").fetchone()
            return {"alerts": alerts, "rejected": rejected,
                    "since": float(since[0]) if since else None}

        return await self._snapshot(fetch)

    async def events(self, *, kind: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        def fetch(db: sqlite3.Connection) -> list[dict[str, Any]]:
            sql = f"SELECT {_EVENT_COLS} FROM events"
            args: tuple[Any, ...] = ()
            if kind is not None:
                sql += " WHERE kind = ?"
                args = (kind,)
            sql += " ORDER BY id DESC LIMIT ?"
            return [_event_dict(r) for r in db.execute(sql, (*args, limit)).fetchall()]

        return await self._snapshot(fetch)

    # -- attempts ----------------------------------------------------------------------
    async def schedule_attempt(
        self, *, instance: str, runbook: str, target: str, n: int, action: str,
        params: dict[str, Any], due_at: float, receipt_id: int | None,
        context: dict[str, Any], state: str = "scheduled",
    ) -> Attempt | None:
        def write(db: sqlite3.Connection) -> Attempt | None:
            row = db.execute(
                "INSERT INTO attempts (instance, runbook, target, n, action, params, due_at, "
                "state, receipt_id, context) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                f"ON CONFLICT (instance, runbook, target, n) DO NOTHING RETURNING {_ATTEMPT_COLS}",
                (instance, runbook, target, n, action, _json_encode(params), due_at, state,
                 receipt_id, _json_encode(context))).fetchone()
            return _attempt(row) if row else None

        return await self._tx(write)

    async def due_attempts(self, now: float, limit: int = 50) -> list[Attempt]:
        return await self._read(lambda db: [_attempt(r) for r in db.execute(
            f"SELECT {_ATTEMPT_COLS} FROM attempts WHERE (state = 'scheduled' AND due_at <= ?) "
            "OR (state = 'running' AND lease_until < ?) ORDER BY due_at, id LIMIT ?",
            (now, now, limit)).fetchall()])

    async def next_attempt_due(self) -> float | None:
        row = await self._read(lambda db: db.execute(
            "SELECT MIN(CASE WHEN state = 'running' THEN lease_until ELSE due_at END) "
            "FROM attempts WHERE state = 'scheduled' OR (state = 'running' AND "
            "lease_until IS NOT NULL)").fetchone())
        return float(row[0]) if row and row[0] is not None else None

    async def attempts_for(self, instance: str, runbook: str | None = None) -> list[Attempt]:
        def fetch(db: sqlite3.Connection) -> list[Attempt]:
            if runbook is None:
                rows = db.execute(f"SELECT {_ATTEMPT_COLS} FROM attempts WHERE instance = ? "
                                  "ORDER BY runbook, target, n", (instance,)).fetchall()
            else:
                rows = db.execute(f"SELECT {_ATTEMPT_COLS} FROM attempts WHERE instance = ? AND "
                                  "runbook = ? ORDER BY target, n", (instance, runbook)).fetchall()
            return [_attempt(r) for r in rows]

        return await self._read(fetch)

    async def attempt(self, instance: str, runbook: str, target: str, n: int) -> Attempt | None:
        row = await self._read(lambda db: db.execute(
            f"SELECT {_ATTEMPT_COLS} FROM attempts WHERE instance = ? AND runbook = ? AND "
            "target = ? AND n = ?", (instance, runbook, target, n)).fetchone())
        return _attempt(row) if row else None

    async def open_escalations(self, runbook: str, *, other_than: str) -> list[Attempt]:
        return await self._read(lambda db: [_attempt(r) for r in db.execute(
            f"SELECT {_ATTEMPT_COLS} FROM attempts a WHERE a.target = 'escalation' AND "
            "a.action = 'notify' AND a.runbook = ? AND a.instance != ? AND NOT EXISTS ("
            "SELECT 1 FROM receipts r WHERE r.instance = a.instance AND "
            "r.status = 'resolved')", (runbook, other_than)).fetchall()])

    async def claim_attempt(self, attempt_id: int, *, lease: float = 300.0) -> bool:
        now = self.clock()
        return await self._tx(lambda db: db.execute(
            "UPDATE attempts SET state = 'running', owner = ?, lease_until = ? WHERE id = ? AND "
            "((state = 'scheduled' AND due_at <= ?) OR (state = 'running' AND lease_until < ?))",
            (self.owner, now + lease, attempt_id, now, now)).rowcount == 1)

    async def update_attempt(
        self, attempt_id: int, *, state: str, outcome: str | None = None,
        detail: str | None = None, executed_at: float | None = None,
        due_at: float | None = None, expect_state: str | None = None,
    ) -> bool:
        def write(db: sqlite3.Connection) -> bool:
            sql = ("UPDATE attempts SET state = ?, outcome = COALESCE(?, outcome), "
                   "detail = COALESCE(?, detail), executed_at = COALESCE(?, executed_at), "
                   "due_at = COALESCE(?, due_at), "
                   "owner = CASE WHEN ? = 'running' THEN owner END, "
                   "lease_until = CASE WHEN ? = 'running' THEN lease_until END WHERE id = ?")
            args: tuple[Any, ...] = (state, outcome, detail, executed_at, due_at, state, state,
                                     attempt_id)
            if expect_state is not None:
                sql += " AND state = ?"
                args = (*args, expect_state)
            return db.execute(sql, args).rowcount == 1

        return await self._tx(write)

    async def retry_attempt(self, attempt_id: int, *, due_at: float, tries: int) -> None:
        def write(db: sqlite3.Connection) -> None:
            row = db.execute("SELECT context FROM attempts WHERE id = ?", (attempt_id,)).fetchone()
            if row is None:
                return
            context = _json_decode(row[0]) if row[0] else {}
            context["_tries"] = tries
            db.execute("UPDATE attempts SET state = 'scheduled', due_at = ?, context = ?, "
                       "owner = NULL, lease_until = NULL WHERE id = ?",
                       (due_at, _json_encode(context), attempt_id))

        await self._tx(write)

    # -- breakers ----------------------------------------------------------------------
    async def load_breakers(self) -> list[Breaker]:
        return await self._read(lambda db: [
            Breaker(key, _json_decode(state), _json_decode(spec) if spec else None)
            for key, state, spec in db.execute("SELECT key, state, spec FROM breakers "
                                               "ORDER BY key")])

    async def change_breaker(self, key: str, change: BreakerChange) -> Breaker | None:
        (row,) = await self.change_breakers([(key, change)])
        return row

    async def change_breakers(self, changes: Sequence[tuple[str, BreakerChange]],
                              ) -> list[Breaker | None]:
        now = self.clock()

        def write(db: sqlite3.Connection) -> list[Breaker | None]:
            # BEGIN IMMEDIATE holds the database's write lock: no row can change between
            # these reads and the writes below, whichever process shares the file.
            return [self._change_breaker(db, key, change, now) for key, change in changes]

        return await self._tx(write) if changes else []

    def _change_breaker(self, db: sqlite3.Connection, key: str, change: BreakerChange,
                        now: float) -> Breaker | None:
        row = db.execute("SELECT state, spec FROM breakers WHERE key = ?", (key,)).fetchone()
        current = (Breaker(key, _json_decode(row[0]), _json_decode(row[1]) if row[1] else None)
                   if row else None)
        changed = change(current)
        if changed is None:
            return current
        new, events = changed
        db.execute(
            "INSERT INTO breakers (key, state, spec, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET state = excluded.state, spec = excluded.spec, "
            "updated_at = excluded.updated_at",
            (key, _json_encode(new.state), _json_encode(new.spec) if new.spec else None, now))
        self._insert_events(db, events, now)
        return new

    # -- outbox ------------------------------------------------------------------------
    async def enqueue(self, *, channel: str, dedup: str, message: dict[str, Any],
                      fallback: str | None, receipt_id: int | None,
                      next_at: float | None = None) -> bool:
        now = self.clock()
        return await self._tx(lambda db: self._enqueue(
            db, channel, dedup, message, fallback, receipt_id,
            now if next_at is None else next_at, now)) is not None

    @staticmethod
    def _enqueue(db: sqlite3.Connection, channel: str, dedup: str, message: dict[str, Any],
                 fallback: str | None, receipt_id: int | None, next_at: float, now: float,
                 holder: tuple[str, float] | None = None) -> int | None:
        """Queue one message unless its dedup key exists: its id, or None. With ``holder``
        (owner, lease until) it is written claimed, in state ``sending``."""
        owner, lease_until = holder if holder is not None else (None, None)
        row = db.execute(
            "INSERT INTO outbox (channel, dedup, message, fallback, receipt_id, next_at, "
            "created_at, state, owner, lease_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (dedup) DO NOTHING RETURNING id",
            (channel, dedup, _json_encode(message), fallback, receipt_id, next_at, now,
             "pending" if holder is None else "sending", owner, lease_until)).fetchone()
        return int(row[0]) if row is not None else None

    async def due_outbox(self, now: float, limit: int = 50) -> list[OutboxItem]:
        return await self._read(lambda db: [_outbox(r) for r in db.execute(
            f"SELECT {_OUTBOX_COLS} FROM outbox WHERE (state = 'pending' AND next_at <= ?) "
            "OR (state = 'sending' AND lease_until < ?) ORDER BY next_at, id LIMIT ?",
            (now, now, limit)).fetchall()])

    async def next_outbox_due(self) -> float | None:
        row = await self._read(lambda db: db.execute(
            "SELECT MIN(CASE WHEN state = 'sending' THEN lease_until ELSE next_at END) "
            "FROM outbox WHERE state IN ('pending', 'sending')").fetchone())
        return float(row[0]) if row and row[0] is not None else None

    async def claim_message(self, item_id: int, *, lease: float = 120.0) -> bool:
        return await self.claim_messages([item_id], lease=lease) == [item_id]

    async def claim_messages(self, item_ids: Sequence[int], *,
                             lease: float = 120.0) -> list[int]:
        now = self.clock()

        def claim(db: sqlite3.Connection) -> list[int]:
            return [item_id for item_id in item_ids if db.execute(
                "UPDATE outbox SET state = 'sending', owner = ?, lease_until = ? WHERE id = ? "
                "AND ((state = 'pending' AND next_at <= ?) OR "
                "(state = 'sending' AND lease_until < ?))",
                (self.owner, now + lease, item_id, now, now)).rowcount == 1]

        # Not giving way here: the claim, the channel's token and the send follow each other
        # without another task in between, so the token bucket paces what channels receive.
        return await self._tx(claim, give_way=False)

    async def update_outbox(self, item_id: int, *, state: str, tries: int,
                            next_at: float | None = None, error: str | None = None,
                            events: Iterable[Event] = ()) -> None:
        await self.update_outbox_many([OutboxUpdate(item_id, state, tries, next_at, error,
                                                    tuple(events))])

    async def update_outbox_many(self, updates: Sequence[OutboxUpdate]) -> None:
        now = self.clock()

        def write(db: sqlite3.Connection) -> None:
            db.executemany(
                "UPDATE outbox SET state = ?, tries = ?, next_at = COALESCE(?, next_at), "
                "last_error = ?, sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END, "
                "owner = NULL, lease_until = NULL WHERE id = ?",
                [(u.state, u.tries, u.next_at, u.error, u.state, now, u.item_id)
                 for u in updates])
            self._insert_events(db, [e for u in updates for e in u.events], now)

        if updates:
            await self._tx(write)

    # -- flags (the kill switch) and rate limits ---------------------------------------
    async def get_flag(self, name: str) -> Any:
        row = await self._read(lambda db: db.execute(
            "SELECT value FROM flags WHERE name = ?", (name,)).fetchone())
        return _json_decode(row[0]) if row else None

    async def set_flag(self, name: str, value: Any, events: Iterable[Event] = ()) -> None:
        now = self.clock()
        events = list(events)

        def write(db: sqlite3.Connection) -> None:
            db.execute("INSERT INTO flags (name, value, updated_at) VALUES (?, ?, ?) "
                       "ON CONFLICT (name) DO UPDATE SET value = excluded.value, "
                       "updated_at = excluded.updated_at", (name, _json_encode(value), now))
            self._insert_events(db, events, now)

        await self._tx(write)

    async def acquire_rate(self, key: str, limit: int, window: float,
                           now: float) -> tuple[bool, float]:
        def take(db: sqlite3.Connection) -> tuple[bool, float]:
            # Elapsed time, not "ts <= now - window": the wait stays > 0 in floats.
            db.execute("DELETE FROM rates WHERE key = ? AND ? - ts >= ?", (key, now, window))
            count, oldest = db.execute("SELECT COUNT(*), MIN(ts) FROM rates WHERE key = ?",
                                       (key,)).fetchone()
            if count >= limit:
                return False, window - (now - float(oldest))
            db.execute("INSERT INTO rates (key, ts) VALUES (?, ?)", (key, now))
            return True, 0.0

        return await self._tx(take)

    # -- corrections: operators' verdicts on analyses (the feedback loop) ---------------
    # Keyed by the normalised failure text's hash (computed by the analysis, which the
    # journal does not import); ``text`` is kept for ``responder train``.
    async def receipt_alert(self, receipt_id: int) -> dict[str, Any] | None:
        """The stored alert of receipt ``receipt_id`` and its analysis, or None."""
        row = await self._read(lambda db: db.execute(
            "SELECT alert, analysis FROM receipts WHERE id = ?", (receipt_id,)).fetchone())
        if row is None:
            return None
        return {"alert": _json_decode(row[0]),
                "analysis": _json_decode(row[1]) if row[1] else None}

    async def record_correction(self, *, text_key: str, category: str, text: str,
                                receipt_id: int, by: str, previous: str | None) -> None:
        """Store (or replace) the correction for ``text_key``, with an audit event."""
        now = self.clock()
        event = Event(kind="correction", receipt_id=receipt_id, outcome=category,
                      detail={"by": by, "previous": previous, "category": category})

        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO corrections (text_key, category, text, receipt_id, corrected_by, "
                "corrected_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (text_key) DO UPDATE SET "
                "category = excluded.category, text = excluded.text, receipt_id = "
                "excluded.receipt_id, corrected_by = excluded.corrected_by, corrected_at = "
                "excluded.corrected_at", (text_key, category, text, receipt_id, by, now))
            self._insert_events(db, [event], now)

        await self._tx(write)

    async def corrections(self) -> list[tuple[str, str, str]]:
        """Every correction as (text key, category, text), oldest first."""
        rows = await self._read(lambda db: db.execute(
            "SELECT text_key, category, text FROM corrections ORDER BY corrected_at, text_key"
        ).fetchall())
        return [(str(k), str(c), str(t)) for k, c, t in rows]

    async def correction_categories(self) -> list[tuple[str, str]]:
        rows = await self._read(lambda db: db.execute(
            "SELECT text_key, category FROM corrections ORDER BY corrected_at, text_key"
        ).fetchall())
        return [(str(k), str(c)) for k, c in rows]

    # -- health and retention ----------------------------------------------------------
    async def pending_count(self) -> int:
        def count(db: sqlite3.Connection) -> int:
            total = 0
            for sql in ("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'",
                        "SELECT COUNT(*) FROM attempts WHERE state IN ('scheduled', 'running')",
                        "SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending')"):
                total += int(db.execute(sql).fetchone()[0])
            return total

        return await self._snapshot(count)

    async def size_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal", "-shm"):
            try:
                total += os.stat(f"{self.path}{suffix}").st_size
            except FileNotFoundError:
                pass
        return total

    async def prune(self, before: float, *, batch: int = 500) -> int:
        def delete(db: sqlite3.Connection) -> int:
            deleted = 0
            # Receipts whose alert is finished and quiet since ``before``, unless an attempt
            # of their instance is still to run (a retry waiting out a long backoff).
            ids = [r for (r,) in db.execute(
                "SELECT id FROM receipts r WHERE r.state != 'pending' AND "
                "r.last_delivery_at < ? AND NOT EXISTS (SELECT 1 FROM attempts a WHERE "
                "a.instance = r.instance AND a.state NOT IN " + _FINISHED_ATTEMPT + ") "
                "LIMIT ?", (before, batch))]
            if ids:
                marks = ",".join("?" * len(ids))
                deleted += db.execute(f"DELETE FROM events WHERE receipt_id IN ({marks})",
                                      ids).rowcount
                deleted += db.execute(f"DELETE FROM receipts WHERE id IN ({marks})",
                                      ids).rowcount
            for sql in (
                # attempts of instances no receipt remembers any more
                "DELETE FROM attempts WHERE id IN (SELECT a.id FROM attempts a WHERE "
                "a.state IN " + _FINISHED_ATTEMPT + " AND a.due_at < ? AND NOT EXISTS ("
                "SELECT 1 FROM receipts r WHERE r.instance = a.instance) LIMIT ?)",
                "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE "
                "state = 'done' AND received_at < ? LIMIT ?)",
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE "
                "state IN ('sent', 'failed') AND created_at < ? LIMIT ?)",
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE ts < ? AND "
                "(receipt_id IS NULL OR NOT EXISTS (SELECT 1 FROM receipts r WHERE "
                "r.id = events.receipt_id)) LIMIT ?)",
                "DELETE FROM rates WHERE id IN (SELECT id FROM rates WHERE ts < ? LIMIT ?)",
                # decided approvals of alerts no receipt remembers, pauses lifted or expired
                "DELETE FROM approvals WHERE id IN (SELECT a.id FROM approvals a WHERE "
                "a.decision IS NOT NULL AND a.decided_at < ? AND NOT EXISTS (SELECT 1 FROM "
                "receipts r WHERE r.instance = a.instance) LIMIT ?)",
                "DELETE FROM pauses WHERE id IN (SELECT id FROM pauses WHERE "
                "COALESCE(lifted_at, until) < ? LIMIT ?)",
            ):
                deleted += db.execute(sql, (before, batch)).rowcount
            if deleted:
                db.execute("INSERT INTO meta (name, value) VALUES ('pruned_before', ?) "
                           "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                           (repr(before),))
            return deleted

        return await self._tx(delete)

    async def release_space(self, *, pages: int = 1024) -> int:
        """Cut free pages off the end of the file (``PRAGMA incremental_vacuum``; the file
        shrinks at the next checkpoint), keeping ``KEEP_FREE`` or a quarter of the pages in
        use, whichever is more, for the next writes. Without it the file stays at the high
        water mark of the largest storm it ever held, and a wave a little larger than the
        last grows it again; steady traffic frees less than it keeps, so it costs nothing."""
        def excess(db: sqlite3.Connection) -> int:
            if db.execute("PRAGMA auto_vacuum").fetchone()[0] != _INCREMENTAL:
                return 0
            size, count, free = (int(db.execute(f"PRAGMA {p}").fetchone()[0])
                                 for p in ("page_size", "page_count", "freelist_count"))
            return free - max(self.KEEP_FREE // size, (count - free) // 4)

        def vacuum(db: sqlite3.Connection) -> int:
            free = int(db.execute("PRAGMA freelist_count").fetchone()[0])
            # One page a step: the module's execute() runs the pragma's first step only.
            for _ in range(min(pages, excess(db))):
                db.execute("PRAGMA incremental_vacuum(1)")
            return free - int(db.execute("PRAGMA freelist_count").fetchone()[0])

        if await self._read(excess) <= 0:
            return 0
        return await self._tx(vacuum)

    # -- pauses ------------------------------------------------------------------------
    async def add_pause(self, *, matchers: Sequence[str], reason: str | None, by: str,
                        until: float | None, events: Callable[[Pause], Iterable[Event]]) -> Pause:
        now = self.clock()

        def write(db: sqlite3.Connection) -> Pause:
            row = db.execute(
                "INSERT INTO pauses (matchers, reason, created_by, created_at, until) "
                f"VALUES (?, ?, ?, ?, ?) RETURNING {_PAUSE_COLS}",
                (_json_encode(list(matchers)), reason, by, now, until)).fetchone()
            pause = _pause(row)
            self._insert_events(db, events(pause), now)
            return pause

        return await self._tx(write)

    async def active_pauses(self, now: float) -> list[Pause]:
        return await self._read(lambda db: [_pause(r) for r in db.execute(
            f"SELECT {_PAUSE_COLS} FROM pauses WHERE lifted_at IS NULL AND "
            "(until IS NULL OR until > ?) ORDER BY id", (now,)).fetchall()])

    async def lift_pauses(self, *, by: str, pause_id: int | None = None,
                          events: Callable[[Pause], Iterable[Event]]) -> list[Pause]:
        """Lift one active pause (``pause_id``) or all of them; the pauses lifted now."""
        now = self.clock()

        def write(db: sqlite3.Connection) -> list[Pause]:
            sql = ("UPDATE pauses SET lifted_at = ?, lifted_by = ? WHERE lifted_at IS NULL AND "
                   "(until IS NULL OR until > ?)")
            args: tuple[Any, ...] = (now, by, now)
            if pause_id is not None:
                sql += " AND id = ?"
                args = (*args, pause_id)
            lifted = [_pause(r) for r in db.execute(
                f"{sql} RETURNING {_PAUSE_COLS}", args).fetchall()]
            for pause in lifted:
                self._insert_events(db, events(pause), now)
            return lifted

        return await self._tx(write)

    # -- attempts the people control ----------------------------------------------------
    async def attempt_by_id(self, attempt_id: int) -> Attempt | None:
        row = await self._read(lambda db: db.execute(
            f"SELECT {_ATTEMPT_COLS} FROM attempts WHERE id = ?", (attempt_id,)).fetchone())
        return _attempt(row) if row else None

    async def attempts_in(self, states: Sequence[str], limit: int = 200) -> list[Attempt]:
        """Attempts in any of ``states``; ``held`` is a scheduled attempt a pause holds
        (outcome ``paused``), and ``scheduled`` then means the others."""
        condition = attempts_in_states(states, "?")
        if condition is None:
            return []
        where, wanted = condition
        return await self._read(lambda db: [_attempt(r) for r in db.execute(
            f"SELECT {_ATTEMPT_COLS} FROM attempts WHERE {where} "
            "ORDER BY due_at, id LIMIT ?", (*wanted, limit)).fetchall()])

    async def cancel_attempt(self, attempt_id: int, *, by: str,
                             events: Callable[[Attempt], Iterable[Event]]) -> Attempt | None:
        """Cancel a scheduled, waiting, held or approval-waiting attempt; None if it is not
        one (any more). An approval left with no waiting attempt is closed as cancelled."""
        now = self.clock()
        marks = ", ".join("?" * len(CANCELLABLE))

        def write(db: sqlite3.Connection) -> Attempt | None:
            before = db.execute("SELECT state FROM attempts WHERE id = ?",
                                (attempt_id,)).fetchone()
            row = db.execute(
                "UPDATE attempts SET state = 'cancelled', outcome = 'cancelled', detail = ? "
                f"WHERE id = ? AND state IN ({marks}) RETURNING {_ATTEMPT_COLS}",
                (f"cancelled by {by}", attempt_id, *CANCELLABLE)).fetchone()
            if row is None:
                return None
            attempt = _attempt(row)
            if before and before[0] == "approval":
                left = db.execute(
                    "SELECT COUNT(*) FROM attempts WHERE instance = ? AND runbook = ? AND "
                    "state = 'approval'", (attempt.instance, attempt.runbook)).fetchone()[0]
                if not left:
                    db.execute("UPDATE approvals SET decision = 'cancelled', decided_by = ?, "
                               "decided_at = ? WHERE instance = ? AND runbook = ? AND "
                               "decision IS NULL", (by, now, attempt.instance, attempt.runbook))
            self._insert_events(db, events(attempt), now)
            return attempt

        return await self._tx(write)

    # -- approvals ---------------------------------------------------------------------
    async def ask_approval(self, *, instance: str, runbook: str, receipt_id: int | None,
                           attempts: Sequence[int], summary: dict[str, Any], timeout_at: float,
                           on_timeout: str) -> Approval | None:
        """Record the question once per alert instance and runbook; None if already asked."""
        now = self.clock()
        row = await self._tx(lambda db: db.execute(
            "INSERT INTO approvals (instance, runbook, receipt_id, attempts, summary, asked_at, "
            "timeout_at, on_timeout) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT "
            f"(instance, runbook) DO NOTHING RETURNING {_APPROVAL_COLS}",
            (instance, runbook, receipt_id, _json_encode(list(attempts)), _json_encode(summary), now,
             timeout_at, on_timeout)).fetchone())
        return _approval(row) if row else None

    async def approval(self, approval_id: int) -> Approval | None:
        row = await self._read(lambda db: db.execute(
            f"SELECT {_APPROVAL_COLS} FROM approvals WHERE id = ?", (approval_id,)).fetchone())
        return _approval(row) if row else None

    async def approvals(self, *, open_only: bool = True, limit: int = 100) -> list[Approval]:
        where = "WHERE decision IS NULL " if open_only else ""
        order = "asked_at, id" if open_only else "COALESCE(decided_at, asked_at) DESC, id DESC"
        return await self._read(lambda db: [_approval(r) for r in db.execute(
            f"SELECT {_APPROVAL_COLS} FROM approvals {where}ORDER BY {order} LIMIT ?",
            (limit,)).fetchall()])

    async def expired_approvals(self, now: float) -> list[Approval]:
        return await self._read(lambda db: [_approval(r) for r in db.execute(
            f"SELECT {_APPROVAL_COLS} FROM approvals WHERE decision IS NULL AND timeout_at <= ? "
            "ORDER BY timeout_at, id", (now,)).fetchall()])

    async def next_approval_timeout(self) -> float | None:
        row = await self._read(lambda db: db.execute(
            "SELECT MIN(timeout_at) FROM approvals WHERE decision IS NULL").fetchone())
        return float(row[0]) if row and row[0] is not None else None

    async def decide_approval(self, approval_id: int, *, decision: str, run: bool, by: str,
                              comment: str | None,
                              events: Callable[[Approval], Iterable[Event]]) -> Approval | None:
        """Record the one decision: its attempts are scheduled (``run``) or cancelled with
        ``decision`` as their outcome. None when it was decided already (or never asked)."""
        now = self.clock()

        def write(db: sqlite3.Connection) -> Approval | None:
            row = db.execute(
                "UPDATE approvals SET decision = ?, decided_by = ?, decided_at = ?, comment = ? "
                f"WHERE id = ? AND decision IS NULL RETURNING {_APPROVAL_COLS}",
                (decision, by, now, comment, approval_id)).fetchone()
            if row is None:
                return None
            approval = _approval(row)
            for attempt_id in approval.attempts:
                if run:
                    db.execute("UPDATE attempts SET state = 'scheduled', due_at = CASE WHEN "
                               "due_at > ? THEN due_at ELSE ? END WHERE id = ? AND "
                               "state = 'approval'", (now, now, attempt_id))
                else:
                    db.execute("UPDATE attempts SET state = 'cancelled', outcome = ?, detail = ? "
                               "WHERE id = ? AND state = 'approval'",
                               (decision, f"{decision} by {by}", attempt_id))
            self._insert_events(db, events(approval), now)
            return approval

        return await self._tx(write)

    async def close_approvals(self, instance: str, decision: str, by: str) -> int:
        """Close the instance's open approvals (its alert resolved: nothing left to ask)."""
        now = self.clock()
        return await self._tx(lambda db: db.execute(
            "UPDATE approvals SET decision = ?, decided_by = ?, decided_at = ? "
            "WHERE instance = ? AND decision IS NULL", (decision, by, now, instance)).rowcount)

    # -- console sessions ended by logging out -----------------------------------------
    async def revoke_session(self, session_id: str, *, until: float) -> None:
        now = self.clock()

        def write(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM revoked_sessions WHERE until < ?", (now,))
            db.execute("INSERT INTO revoked_sessions (id, until) VALUES (?, ?) ON CONFLICT "
                       "(id) DO UPDATE SET until = MAX(until, excluded.until)",
                       (session_id, until))

        await self._tx(write)

    async def revoked_sessions(self) -> list[str]:
        now = self.clock()
        return await self._read(lambda db: [str(i) for (i,) in db.execute(
            "SELECT id FROM revoked_sessions WHERE until >= ? ORDER BY id", (now,))])


def _checkpoint(db: sqlite3.Connection, mode: str) -> tuple[int, int, int]:
    """A checkpoint: (busy, frames in the WAL, frames now in the database)."""
    busy, frames, done = db.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
    return int(busy), int(frames), int(done)

