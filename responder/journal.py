"""The durable journal: receipts, scheduled attempts, breaker state, outbox, events.

Every alert is in the journal before Alertmanager gets its 200, and everything that is
still to do (processing, a retry waiting out its backoff, a notification not yet
delivered) is a row here, so a restart or ``kill -9`` resumes exactly where it stopped.

SQLite (WAL) is the embedded backend. The event loop's thread owns the connection; only
the fsync of a webhook commit and the WAL checkpoints wait on the disk in other threads
(see ``Journal``). Writes that answer a webhook are group-committed: requests arriving
while a commit is in flight are written together in the next transaction, so the fsync
cost is shared under load while each request still waits for its own rows to be durable.
Those commits are ``synchronous=FULL`` (the 200 is a promise that survives power loss);
the pipeline's own bookkeeping commits with ``NORMAL``, which in WAL mode survives a
process crash or ``kill -9`` and is made durable by the next full commit. After a power
loss the pipeline may redo a step, which is safe because every step is idempotent on
journal keys. The SQL sticks to what PostgreSQL also speaks (``ON CONFLICT``,
``RETURNING``) and the vocabulary (receipt, delivery, attempt, breaker, outbox, event) is
the interface a second backend would implement.

The people's controls are journal records too. A pause is a row like an Alertmanager
silence (matchers, reason, author, expiry); an action it covers is an attempt in state
``held``. An approval is a row per alert instance and runbook whose attempts wait in state
``approval``; deciding is a conditional update (``WHERE decision IS NULL``) in the
transaction that moves its attempts on, so however many replicas or clicks race, one
decision wins and the others see that it was taken.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from responder.model import AlertGroup, Rejected

T = TypeVar("T")
log = logging.getLogger("responder.journal")
_json_encode = msgspec.json.Encoder().encode
_json_decode = msgspec.json.Decoder().decode

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    group_key TEXT NOT NULL,
    envelope BLOB NOT NULL,
    received_at REAL NOT NULL,
    new_receipts BLOB NOT NULL,
    dup_receipts BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (state, id);
CREATE TABLE IF NOT EXISTS receipts (
    id INTEGER PRIMARY KEY,
    instance TEXT NOT NULL,
    status TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    alertname TEXT NOT NULL,
    alert BLOB NOT NULL,
    delivery_id INTEGER NOT NULL,
    received_at REAL NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 1,
    last_delivery_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    analysis BLOB,
    runbooks BLOB,
    UNIQUE (instance, status)
);
CREATE INDEX IF NOT EXISTS receipts_recent ON receipts (last_delivery_at);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    receipt_id INTEGER,
    instance TEXT,
    runbook TEXT,
    action TEXT,
    target TEXT,
    outcome TEXT,
    detail BLOB
);
CREATE INDEX IF NOT EXISTS events_receipt ON events (receipt_id);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    instance TEXT NOT NULL,
    runbook TEXT NOT NULL,
    target TEXT NOT NULL,
    n INTEGER NOT NULL,
    action TEXT NOT NULL,
    params BLOB NOT NULL,
    due_at REAL NOT NULL,
    state TEXT NOT NULL,
    receipt_id INTEGER,
    context BLOB,
    outcome TEXT,
    detail TEXT,
    executed_at REAL,
    UNIQUE (instance, runbook, target, n)
);
CREATE INDEX IF NOT EXISTS attempts_due ON attempts (state, due_at);
CREATE TABLE IF NOT EXISTS breakers (
    key TEXT PRIMARY KEY,
    state BLOB NOT NULL,
    spec BLOB,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    dedup TEXT NOT NULL UNIQUE,
    message BLOB NOT NULL,
    fallback TEXT,
    receipt_id INTEGER,
    state TEXT NOT NULL DEFAULT 'pending',
    tries INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    last_error TEXT,
    created_at REAL NOT NULL,
    sent_at REAL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_at);
CREATE TABLE IF NOT EXISTS flags (name TEXT PRIMARY KEY, value BLOB NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS pauses (
    id INTEGER PRIMARY KEY,
    matchers BLOB NOT NULL,
    reason TEXT,
    created_by TEXT NOT NULL,
    created_at REAL NOT NULL,
    until REAL,
    lifted_at REAL,
    lifted_by TEXT
);
CREATE TABLE IF NOT EXISTS approvals (
    id INTEGER PRIMARY KEY,
    instance TEXT NOT NULL,
    runbook TEXT NOT NULL,
    receipt_id INTEGER,
    attempts BLOB NOT NULL,
    summary BLOB NOT NULL,
    asked_at REAL NOT NULL,
    timeout_at REAL NOT NULL,
    on_timeout TEXT NOT NULL,
    decision TEXT,
    decided_by TEXT,
    decided_at REAL,
    comment TEXT,
    UNIQUE (instance, runbook)
);
CREATE INDEX IF NOT EXISTS approvals_open ON approvals (decision, timeout_at);
"""


class JournalUnavailable(Exception):
    """The journal cannot be written: the webhook answers 503 so Alertmanager retries."""


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    delivery_id: int
    accepted: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class Receipt:
    id: int
    instance: str
    status: str
    alert: dict[str, Any]
    deliveries: int
    received_at: float
    state: str


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    id: int
    group: dict[str, Any]
    received_at: float
    new: tuple[Receipt, ...]
    duplicates: tuple[Receipt, ...]


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    receipt_id: int | None = None
    instance: str | None = None
    runbook: str | None = None
    action: str | None = None
    target: str | None = None
    outcome: str | None = None
    detail: Any = None


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A rendered message to queue; ``event`` is its audit event, whose outcome is decided
    when it is written (``queued``, or ``duplicate`` when its dedup key exists)."""

    channel: str
    dedup: str
    message: dict[str, Any]
    fallback: str | None
    receipt_id: int | None
    event: Event


@dataclass(frozen=True, slots=True)
class Attempt:
    id: int
    instance: str
    runbook: str
    target: str
    n: int
    action: str
    params: dict[str, Any]
    due_at: float
    state: str
    receipt_id: int | None
    context: dict[str, Any]
    outcome: str | None
    detail: str | None
    executed_at: float | None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    channel: str
    dedup: str
    message: dict[str, Any]
    fallback: str | None
    receipt_id: int | None
    state: str
    tries: int
    next_at: float
    last_error: str | None


_ATTEMPT_COLS = ("id, instance, runbook, target, n, action, params, due_at, state, receipt_id, "
                 "context, outcome, detail, executed_at")
_OUTBOX_COLS = "id, channel, dedup, message, fallback, receipt_id, state, tries, next_at, last_error"


def _attempt(row: Sequence[Any]) -> Attempt:
    return Attempt(row[0], row[1], row[2], row[3], row[4], row[5], _json_decode(row[6]), row[7],
                   row[8], row[9], _json_decode(row[10]) if row[10] else {}, row[11], row[12],
                   row[13])


def _outbox(row: Sequence[Any]) -> OutboxItem:
    return OutboxItem(row[0], row[1], row[2], _json_decode(row[3]), row[4], row[5], row[6],
                      row[7], row[8], row[9])


CANCELLABLE = ("scheduled", "waiting", "approval")   # a held attempt is a scheduled one


@dataclass(frozen=True, slots=True)
class Pause:
    id: int
    matchers: tuple[str, ...]
    reason: str | None
    by: str
    created_at: float
    until: float | None
    lifted_at: float | None
    lifted_by: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "matchers": list(self.matchers), "reason": self.reason,
                "by": self.by, "created_at": self.created_at, "until": self.until,
                "lifted_at": self.lifted_at, "lifted_by": self.lifted_by}


@dataclass(frozen=True, slots=True)
class Approval:
    id: int
    instance: str
    runbook: str
    receipt_id: int | None
    attempts: tuple[int, ...]
    summary: dict[str, Any]     # what is asked: the alert's labels, actions, channels
    asked_at: float
    timeout_at: float
    on_timeout: str             # escalate | proceed
    decision: str | None        # approved | rejected | timeout | cancelled | resolved
    decided_by: str | None
    decided_at: float | None
    comment: str | None

    def to_dict(self) -> dict[str, Any]:
        actions = self.summary.get("actions", [])
        return {"id": self.id, "instance": self.instance, "runbook": self.runbook,
                "receipt_id": self.receipt_id, "attempts": list(self.attempts),
                "action": ", ".join(a["kind"] for a in actions),
                "target": ", ".join(a["target"] for a in actions),
                "actions": actions, "labels": self.summary.get("labels", {}),
                "asked_at": self.asked_at, "timeout_at": self.timeout_at,
                "on_timeout": self.on_timeout, "decision": self.decision,
                "decided_by": self.decided_by, "decided_at": self.decided_at,
                "comment": self.comment}


_PAUSE_COLS = "id, matchers, reason, created_by, created_at, until, lifted_at, lifted_by"
_APPROVAL_COLS = ("id, instance, runbook, receipt_id, attempts, summary, asked_at, timeout_at, "
                  "on_timeout, decision, decided_by, decided_at, comment")


def _pause(row: Sequence[Any]) -> Pause:
    return Pause(row[0], tuple(_json_decode(row[1])), row[2], row[3], row[4], row[5], row[6], row[7])


def _approval(row: Sequence[Any]) -> Approval:
    return Approval(row[0], row[1], row[2], row[3], tuple(_json_decode(row[4])), _json_decode(row[5]),
                    row[6], row[7], row[8], row[9], row[10], row[11], row[12])


class Journal:
    """The SQLite journal. Open with ``await journal.open()``; every method is async.

    The connection belongs to the event loop's thread: statements run inline, because a
    statement takes microseconds and handing each one to a thread costs far more (the
    thread must win the GIL back from the loop after every statement). Only what waits on
    the disk leaves the loop: the ``COMMIT`` of a webhook batch (its fsync) runs on the
    commit thread while the loop serves other requests, and the connection's lock keeps
    everything else off the connection until it returns. WAL checkpoints run on a second
    connection in their own thread, and so do the long reads of the audit API.
    """

    CHECKPOINT_EVERY = 1.0   # seconds between passive WAL checkpoints

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time,
                 synchronous: str = "FULL") -> None:
        self.path = path
        self.clock = clock
        self.synchronous = synchronous
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

    # -- lifecycle ---------------------------------------------------------------------
    async def open(self) -> None:
        self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-commit")
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-read")
        self._open_sync()
        loop = asyncio.get_running_loop()
        self._reader = await loop.run_in_executor(self._background, self._open_reader)
        self._checkpointer = asyncio.create_task(self._checkpoint_loop())
        self.healthy = True

    def _open_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self.synchronous}")
        db.execute("PRAGMA busy_timeout=5000")
        # Checkpoints run on the reader connection, off the loop (see _checkpoint_loop).
        db.execute("PRAGMA wal_autocheckpoint=0")
        db.execute("PRAGMA journal_size_limit=67108864")
        db.executescript(_SCHEMA)
        db.execute("INSERT INTO meta(name, value) VALUES ('schema', ?) ON CONFLICT(name) DO NOTHING",
                   (str(SCHEMA_VERSION),))
        self._db = db
        self._sync_now = self.synchronous

    def _open_reader(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("PRAGMA query_only=1")
        return db

    async def _checkpoint_loop(self) -> None:
        """Move committed WAL frames into the database, without blocking writers."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.CHECKPOINT_EVERY)
            reader = self._reader
            if reader is None or self._background is None:
                return
            try:
                await loop.run_in_executor(self._background, _checkpoint, reader)
            except sqlite3.Error as exc:  # a failing disk also shows on the writes (503)
                log.warning("journal checkpoint failed: %s", exc)

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            await asyncio.gather(self._checkpointer, return_exceptions=True)
            self._checkpointer = None
        async with self._lock:
            if self._db is not None:
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

    @staticmethod
    def _write_failed(db: sqlite3.Connection, exc: sqlite3.Error) -> JournalUnavailable:
        if db.in_transaction:
            db.execute("ROLLBACK")
        return JournalUnavailable(f"journal write failed: {exc}")

    def _tx(self, fn: Callable[[sqlite3.Connection], T], synchronous: str = "NORMAL") -> T:
        db = self._conn()
        try:
            result = self._begin(db, fn, synchronous)
            db.execute("COMMIT")
            return result
        except sqlite3.Error as exc:
            raise self._write_failed(db, exc) from exc

    async def tx(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` in one transaction (``synchronous=NORMAL``)."""
        await asyncio.sleep(0)   # let waiting requests in between the pipeline's steps
        async with self._lock:
            return self._tx(fn)

    def _read(self, fn: Callable[[sqlite3.Connection], T], db: sqlite3.Connection | None) -> T:
        if db is None:
            raise JournalUnavailable("journal is closed")
        try:
            return fn(db)
        except sqlite3.Error as exc:
            raise JournalUnavailable(f"journal read failed: {exc}") from exc

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a short read on the journal's connection (it sees every committed write)."""
        await asyncio.sleep(0)
        async with self._lock:
            return self._read(fn, self._db)

    async def read_snapshot(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a long read (the audit API) off the loop, on the reader connection."""
        if self._background is None:
            raise JournalUnavailable("journal is closed")
        return await asyncio.get_running_loop().run_in_executor(
            self._background, self._read, fn, self._reader)

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
                    results = await self._commit_deliveries(batch)
            except Exception as exc:  # the whole batch failed: every request answers 503
                self.healthy = False
                error = exc if isinstance(exc, JournalUnavailable) else JournalUnavailable(str(exc))
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            self.healthy = True
            for (_, _, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

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
        # The connection is the only writer, so the next id is known: receipts are written
        # first with it, then the delivery row once, already knowing which are new.
        (delivery_id,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM deliveries").fetchone()
        for group, rejected, _ in batch:
            delivery_id += 1
            new: list[int] = []
            dup: list[int] = []
            for alert in group.alerts:
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
            results.append(DeliveryResult(delivery_id, len(new), len(dup)))
        return results

    async def record_rejection(self, detail: dict[str, Any]) -> None:
        """A payload refused as a whole is still an audit event (best effort)."""
        now = self.clock()
        await self.tx(lambda db: db.execute(
            "INSERT INTO events (ts, kind, outcome, detail) VALUES (?, 'rejected', 'invalid', ?)",
            (now, _json_encode(detail))))

    async def pending_deliveries(self, after_id: int = 0, limit: int = 100,
                                 max_alerts: int = 200) -> list[PendingDelivery]:
        """Pending deliveries in order: up to ``limit``, and once ``max_alerts`` receipts
        are loaded no more (the first delivery always comes whole). Loading runs on the
        event loop, so a backlog of large groups is taken in slices, not all at once."""
        def fetch(db: sqlite3.Connection) -> list[PendingDelivery]:
            out: list[PendingDelivery] = []
            loaded = 0
            rows = db.execute(
                "SELECT id, envelope, received_at, new_receipts, dup_receipts FROM deliveries "
                "WHERE state = 'pending' AND id > ? ORDER BY id LIMIT ?", (after_id, limit)
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

        return await self.read(fetch)

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
        """Mark a delivery processed with each receipt's (id, state, analysis, runbooks),
        and queue its messages, in one transaction; returns how many were queued."""
        now = self.clock()
        receipts = list(receipts)
        events = list(events)

        def write(db: sqlite3.Connection) -> int:
            for rid, state, analysis, runbooks in receipts:
                db.execute("UPDATE receipts SET state = ?, analysis = ?, runbooks = ? WHERE id = ?",
                           (state, _json_encode(analysis), _json_encode(runbooks), rid))
            queued = 0
            for m in messages:
                new = self._enqueue(db, m.channel, m.dedup, m.message, m.fallback, m.receipt_id,
                                    now, now)
                queued += new
                events.append(replace(m.event, outcome="queued" if new else "duplicate"))
            self._insert_events(db, events, now)
            db.execute("UPDATE deliveries SET state = 'done', finished_at = ? WHERE id = ?",
                       (now, delivery_id))
            return queued

        return await self.tx(write)

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
            await self.tx(lambda db: self._insert_events(db, events, now))

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
                        "SELECT id, ts, kind, receipt_id, instance, runbook, action, target, "
                        "outcome, detail FROM events WHERE receipt_id = ? OR "
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
                    "SELECT id, ts, kind, receipt_id, instance, runbook, action, target, outcome, "
                    "detail FROM events WHERE kind = 'rejected' ORDER BY id DESC LIMIT ?",
                    (limit,)).fetchall()
            ]
            return {"alerts": alerts, "rejected": rejected}

        return await self.read_snapshot(fetch)

    async def events(self, *, kind: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        def fetch(db: sqlite3.Connection) -> list[dict[str, Any]]:
            sql = ("SELECT id, ts, kind, receipt_id, instance, runbook, action, target, outcome, "
                   "detail FROM events")
            args: tuple[Any, ...] = ()
            if kind is not None:
                sql += " WHERE kind = ?"
                args = (kind,)
            sql += " ORDER BY id DESC LIMIT ?"
            return [_event_dict(r) for r in db.execute(sql, (*args, limit)).fetchall()]

        return await self.read_snapshot(fetch)

    # -- attempts ----------------------------------------------------------------------
    async def schedule_attempt(
        self, *, instance: str, runbook: str, target: str, n: int, action: str,
        params: dict[str, Any], due_at: float, receipt_id: int | None,
        context: dict[str, Any], state: str = "scheduled",
    ) -> Attempt | None:
        """Create attempt ``n`` unless it exists already (idempotent); the new row or None."""

        def write(db: sqlite3.Connection) -> Attempt | None:
            row = db.execute(
                "INSERT INTO attempts (instance, runbook, target, n, action, params, due_at, "
                "state, receipt_id, context) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                f"ON CONFLICT (instance, runbook, target, n) DO NOTHING RETURNING {_ATTEMPT_COLS}",
                (instance, runbook, target, n, action, _json_encode(params), due_at, state,
                 receipt_id, _json_encode(context))).fetchone()
            return _attempt(row) if row else None

        return await self.tx(write)

    async def due_attempts(self, now: float, limit: int = 50) -> list[Attempt]:
        return await self.read(lambda db: [_attempt(r) for r in db.execute(
            f"SELECT {_ATTEMPT_COLS} FROM attempts WHERE state = 'scheduled' AND due_at <= ? "
            "ORDER BY due_at, id LIMIT ?", (now, limit)).fetchall()])

    async def next_attempt_due(self) -> float | None:
        row = await self.read(lambda db: db.execute(
            "SELECT MIN(due_at) FROM attempts WHERE state = 'scheduled'").fetchone())
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

        return await self.read(fetch)

    async def update_attempt(
        self, attempt_id: int, *, state: str, outcome: str | None = None,
        detail: str | None = None, executed_at: float | None = None,
        due_at: float | None = None, expect_state: str | None = None,
    ) -> bool:
        """Move an attempt on; with ``expect_state`` only if it is still in that state."""

        def write(db: sqlite3.Connection) -> bool:
            sql = ("UPDATE attempts SET state = ?, outcome = COALESCE(?, outcome), "
                   "detail = COALESCE(?, detail), executed_at = COALESCE(?, executed_at), "
                   "due_at = COALESCE(?, due_at) WHERE id = ?")
            args: tuple[Any, ...] = (state, outcome, detail, executed_at, due_at, attempt_id)
            if expect_state is not None:
                sql += " AND state = ?"
                args = (*args, expect_state)
            return db.execute(sql, args).rowcount == 1

        return await self.tx(write)

    # -- breakers ----------------------------------------------------------------------
    async def load_breakers(self) -> dict[str, tuple[dict[str, Any], dict[str, Any] | None]]:
        return await self.read(lambda db: {
            key: (_json_decode(state), _json_decode(spec) if spec else None)
            for key, state, spec in db.execute("SELECT key, state, spec FROM breakers")})

    async def save_breaker(self, key: str, state: dict[str, Any],
                           spec: dict[str, Any] | None, events: Iterable[Event] = ()) -> None:
        now = self.clock()
        events = list(events)

        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO breakers (key, state, spec, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET state = excluded.state, "
                "spec = COALESCE(excluded.spec, breakers.spec), updated_at = excluded.updated_at",
                (key, _json_encode(state), _json_encode(spec) if spec else None, now))
            self._insert_events(db, events, now)

        await self.tx(write)

    # -- outbox ------------------------------------------------------------------------
    async def enqueue(self, *, channel: str, dedup: str, message: dict[str, Any],
                      fallback: str | None, receipt_id: int | None,
                      next_at: float | None = None) -> bool:
        """Queue a message for delivery once (``dedup`` is unique); True when queued now."""
        now = self.clock()
        return await self.tx(lambda db: self._enqueue(
            db, channel, dedup, message, fallback, receipt_id,
            now if next_at is None else next_at, now))

    @staticmethod
    def _enqueue(db: sqlite3.Connection, channel: str, dedup: str, message: dict[str, Any],
                 fallback: str | None, receipt_id: int | None, next_at: float,
                 now: float) -> bool:
        return db.execute(
            "INSERT INTO outbox (channel, dedup, message, fallback, receipt_id, next_at, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedup) DO NOTHING",
            (channel, dedup, _json_encode(message), fallback, receipt_id, next_at,
             now)).rowcount == 1

    async def due_outbox(self, now: float, limit: int = 50) -> list[OutboxItem]:
        return await self.read(lambda db: [_outbox(r) for r in db.execute(
            f"SELECT {_OUTBOX_COLS} FROM outbox WHERE state = 'pending' AND next_at <= ? "
            "ORDER BY next_at, id LIMIT ?", (now, limit)).fetchall()])

    async def next_outbox_due(self) -> float | None:
        row = await self.read(lambda db: db.execute(
            "SELECT MIN(next_at) FROM outbox WHERE state = 'pending'").fetchone())
        return float(row[0]) if row and row[0] is not None else None

    async def update_outbox(self, item_id: int, *, state: str, tries: int,
                            next_at: float | None = None, error: str | None = None,
                            events: Iterable[Event] = ()) -> None:
        now = self.clock()
        events = list(events)

        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE outbox SET state = ?, tries = ?, next_at = COALESCE(?, next_at), "
                "last_error = ?, sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END "
                "WHERE id = ?", (state, tries, next_at, error, state, now, item_id))
            self._insert_events(db, events, now)

        await self.tx(write)

    # -- flags (the kill switch) -------------------------------------------------------
    async def get_flag(self, name: str) -> Any:
        row = await self.read(lambda db: db.execute(
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

        await self.tx(write)

    # -- health ------------------------------------------------------------------------
    async def pending_count(self) -> int:
        def count(db: sqlite3.Connection) -> int:
            total = 0
            for sql in ("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'",
                        "SELECT COUNT(*) FROM attempts WHERE state = 'scheduled'",
                        "SELECT COUNT(*) FROM outbox WHERE state = 'pending'"):
                total += int(db.execute(sql).fetchone()[0])
            return total

        return await self.read_snapshot(count)

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

        return await self.tx(write)

    async def active_pauses(self, now: float) -> list[Pause]:
        return await self.read(lambda db: [_pause(r) for r in db.execute(
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

        return await self.tx(write)

    # -- attempts the people control ----------------------------------------------------
    async def attempt(self, attempt_id: int) -> Attempt | None:
        row = await self.read(lambda db: db.execute(
            f"SELECT {_ATTEMPT_COLS} FROM attempts WHERE id = ?", (attempt_id,)).fetchone())
        return _attempt(row) if row else None

    async def attempts_in(self, states: Sequence[str], limit: int = 200) -> list[Attempt]:
        """Attempts in any of ``states``; ``held`` is a scheduled attempt a pause holds
        (outcome ``paused``), and ``scheduled`` then means the others."""
        wanted = [s for s in states if s not in ("held", "scheduled")]
        where = [f"state IN ({', '.join('?' * len(wanted))})"] if wanted else []
        if "held" in states:
            where.append("(state = 'scheduled' AND outcome IS 'paused')")
        if "scheduled" in states:
            where.append("(state = 'scheduled' AND outcome IS NOT 'paused')")
        if not where:
            return []
        return await self.read(lambda db: [_attempt(r) for r in db.execute(
            f"SELECT {_ATTEMPT_COLS} FROM attempts WHERE {' OR '.join(where)} "
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

        return await self.tx(write)

    # -- approvals ---------------------------------------------------------------------
    async def ask_approval(self, *, instance: str, runbook: str, receipt_id: int | None,
                           attempts: Sequence[int], summary: dict[str, Any], timeout_at: float,
                           on_timeout: str) -> Approval | None:
        """Record the question once per alert instance and runbook; None if already asked."""
        now = self.clock()
        row = await self.tx(lambda db: db.execute(
            "INSERT INTO approvals (instance, runbook, receipt_id, attempts, summary, asked_at, "
            "timeout_at, on_timeout) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT "
            f"(instance, runbook) DO NOTHING RETURNING {_APPROVAL_COLS}",
            (instance, runbook, receipt_id, _json_encode(list(attempts)), _json_encode(summary), now,
             timeout_at, on_timeout)).fetchone())
        return _approval(row) if row else None

    async def approval(self, approval_id: int) -> Approval | None:
        row = await self.read(lambda db: db.execute(
            f"SELECT {_APPROVAL_COLS} FROM approvals WHERE id = ?", (approval_id,)).fetchone())
        return _approval(row) if row else None

    async def approvals(self, *, open_only: bool = True, limit: int = 100) -> list[Approval]:
        where = "WHERE decision IS NULL " if open_only else ""
        order = "asked_at, id" if open_only else "COALESCE(decided_at, asked_at) DESC, id DESC"
        return await self.read(lambda db: [_approval(r) for r in db.execute(
            f"SELECT {_APPROVAL_COLS} FROM approvals {where}ORDER BY {order} LIMIT ?",
            (limit,)).fetchall()])

    async def expired_approvals(self, now: float) -> list[Approval]:
        return await self.read(lambda db: [_approval(r) for r in db.execute(
            f"SELECT {_APPROVAL_COLS} FROM approvals WHERE decision IS NULL AND timeout_at <= ? "
            "ORDER BY timeout_at, id", (now,)).fetchall()])

    async def next_approval_timeout(self) -> float | None:
        row = await self.read(lambda db: db.execute(
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
                    db.execute("UPDATE attempts SET state = 'scheduled', due_at = MAX(due_at, ?) "
                               "WHERE id = ? AND state = 'approval'", (now, attempt_id))
                else:
                    db.execute("UPDATE attempts SET state = 'cancelled', outcome = ?, detail = ? "
                               "WHERE id = ? AND state = 'approval'",
                               (decision, f"{decision} by {by}", attempt_id))
            self._insert_events(db, events(approval), now)
            return approval

        return await self.tx(write)

    async def close_approvals(self, instance: str, decision: str, by: str) -> int:
        """Close the instance's open approvals (its alert resolved: nothing left to ask)."""
        now = self.clock()
        return await self.tx(lambda db: db.execute(
            "UPDATE approvals SET decision = ?, decided_by = ?, decided_at = ? "
            "WHERE instance = ? AND decision IS NULL", (decision, by, now, instance)).rowcount)


def _checkpoint(db: sqlite3.Connection) -> tuple[int, int, int]:
    """A passive checkpoint: (busy, frames in the WAL, frames now in the database)."""
    busy, frames, done = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(busy), int(frames), int(done)


def _event_dict(row: Sequence[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": row[0], "ts": row[1], "kind": row[2]}
    for name, value in zip(("receipt_id", "instance", "runbook", "action", "target", "outcome"),
                           row[3:9], strict=True):
        if value is not None:
            out[name] = value
    if row[9] is not None:
        out["detail"] = _json_decode(row[9])
    return out
