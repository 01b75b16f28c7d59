"""The PostgreSQL journal: the backend that lets several replicas share one journal (SPEC §12).

Every replica runs the same code on the same database, and together they behave as one
replica does. That rests on three things the database gives and this module uses:

- **Claims.** Work (a pending delivery, a due attempt, a due message) is taken with
  ``SELECT … FOR UPDATE SKIP LOCKED`` and marked with this process's ``owner`` and a
  ``lease_until``, in one transaction: two replicas never claim the same row, and neither
  waits for the other. A replica that dies holds its work only until the lease expires.
- **Row locks for shared state.** A breaker changes under its row's lock (and an advisory
  lock on its key while it has no row yet), so failures seen by any replica count toward
  one breaker and each transition, with its ``on_open``/``on_close``, happens once.
  Rate-limit windows and the pause flag are rows too.
- **Wake-ups.** Every write that creates work sends ``NOTIFY responder`` in its own
  transaction (so it is delivered at commit, never before the rows are visible); each
  replica ``LISTEN``s on a connection of its own and wakes its workers. A short poll is the
  floor: it also finds work whose lease expired, which nobody announces.

The schema is created and migrated at start in one transaction under an advisory lock
(replicas starting together wait for one another), and ``meta.schema_version`` is checked:
a database written by a newer version is refused. The DSN's password is never shown:
errors and logs name the database by ``redact_dsn``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection, AsyncCursor, sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from responder.config.postgres import redact_dsn
from responder.journal.base import BreakerChange
from responder.journal.migrations import SCHEMA_VERSION
from responder.journal.postgres_schema import migrate
from responder.journal.records import (
    Approval,
    Attempt,
    Breaker,
    DecidedDelivery,
    DecidedReceipt,
    DeliveryResult,
    Event,
    FinishedDelivery,
    JournalUnavailable,
    JournalVersionError,
    OutboxItem,
    OutboxMessage,
    OutboxUpdate,
    Pause,
    PendingDelivery,
    Receipt,
)
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
from responder.journal.rows import event_rows as _event_rows
from responder.journal.rows import json_decode as _json_decode
from responder.journal.rows import json_encode as _json_encode
from responder.journal.rows import outbox_of as _outbox
from responder.journal.rows import pause_of as _pause
from responder.model import AlertGroup, Rejected

T = TypeVar("T")
log = logging.getLogger("responder.journal")
_Pending = tuple[AlertGroup, list[Rejected], "asyncio.Future[DeliveryResult]"]

CHANNEL = "responder"
_TABLES = ("deliveries", "receipts", "events", "attempts", "breakers", "outbox", "flags",
           "rates", "meta")

# Connection-level failures: the database is down, restarting, or unreachable.
_UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout, OSError)
RETENTION_LOCK = 0x7265_7374   # pg_try_advisory_xact_lock key of a prune pass ("rest")

# A round of a webhook batch's receipts: one row per (instance, status), locked in the
# order Python sorts them (COLLATE "C" is code point order), whatever the database's
# collation, so every replica takes the rows' locks in one order.
_UPSERT_RECEIPTS = (
    "INSERT INTO receipts (instance, status, fingerprint, alertname, alert, delivery_id, "
    "received_at, last_delivery_at) SELECT i, s, f, n, a, d, %s, %s FROM unnest("
    "%s::text[], %s::text[], %s::text[], %s::text[], %s::bytea[], %s::bigint[]) AS t(i, s, f, n, a, d) "
    'ORDER BY i COLLATE "C", s COLLATE "C" '
    "ON CONFLICT (instance, status) DO UPDATE SET deliveries = receipts.deliveries + 1, "
    "last_delivery_at = excluded.received_at RETURNING id, delivery_id, instance, status")
_INSERT_EVENTS = (
    "INSERT INTO events (ts, kind, receipt_id, instance, runbook, action, target, outcome, "
    "detail) SELECT ts, kind, r, i, rb, a, tg, o, d FROM unnest(%s::float8[], %s::text[], "
    "%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::bytea[]) "
    "WITH ORDINALITY "
    "AS t(ts, kind, r, i, rb, a, tg, o, d, n) ORDER BY n")
_INSERT_DELIVERIES = (
    "WITH d AS (INSERT INTO deliveries (id, group_key, envelope, received_at, new_receipts, "
    "dup_receipts, state, finished_at) SELECT i, g, e, %s, n, u, s, f FROM unnest("
    "%s::bigint[], %s::text[], %s::bytea[], %s::bytea[], %s::bytea[], %s::text[], "
    "%s::float8[]) AS t(i, g, e, n, u, s, f) RETURNING state) "
    "SELECT pg_notify(%s, 'delivery') FROM (SELECT 1 FROM d WHERE state = 'pending' LIMIT 1) p")


async def _async_commit(conn: AsyncConnection[Any]) -> None:
    await conn.execute("SET synchronous_commit TO off")


class _Refused(JournalUnavailable):
    """The server refused a statement (the database itself is fine): a constraint, a
    deadlock with another replica, a value it cannot store."""


def _lost(exc: BaseException) -> bool:
    """The database is gone (down, restarting, unreachable), not one statement refused: a
    failure to talk to the server has no SQLSTATE; classes 08 and 57 are connection and
    shutdown errors. A deadlock or serialization failure is not a lost database."""
    if isinstance(exc, (PoolTimeout, psycopg.InterfaceError, OSError)):
        return True
    state = getattr(exc, "sqlstate", None)
    if state is None:
        # A value psycopg refuses to send (a NUL in text: DataError) is this request's
        # fault, not the database's; a failure to talk to the server is operational.
        return isinstance(exc, psycopg.OperationalError)
    return state[:2] in ("08", "57")


class Scrubber:
    """Turns driver errors into messages fit for logs: the DSN's password never in them."""

    def __init__(self, dsn: str) -> None:
        self.shown = redact_dsn(dsn)
        try:
            password = conninfo_to_dict(dsn).get("password")
        except psycopg.ProgrammingError:
            password = None
        self._secrets = [s for s in (dsn, password) if s]

    def __call__(self, exc: BaseException) -> str:
        text = " ".join(str(exc).split()) or type(exc).__name__
        for secret in self._secrets:
            text = text.replace(str(secret), "***")
        return f"{self.shown}: {text}"


async def probe(dsn: str, *, connect_timeout: int = 5) -> str:
    """What ``responder check`` says about the database: reachable, and at which version.

    Raises JournalUnavailable (with a message that names the database without its
    password) when it cannot be reached or refuses the credentials."""
    scrub = Scrubber(dsn)
    try:
        async with await AsyncConnection.connect(dsn, connect_timeout=connect_timeout,
                                                 autocommit=True) as conn:
            cur = await conn.execute("SELECT current_setting('server_version'), "
                                     "to_regclass('meta') IS NOT NULL")
            row = await cur.fetchone()
            assert row is not None
            version, has_meta = row
            schema = "no schema yet (created at start)"
            if has_meta:
                cur = await conn.execute("SELECT value FROM meta WHERE name = 'schema_version'")
                found = await cur.fetchone()
                if found is not None:
                    number = int(found[0])
                    schema = f"schema version {number}"
                    if number > SCHEMA_VERSION:
                        schema += f", newer than this responder's {SCHEMA_VERSION}"
            return f"PostgreSQL {version} at {scrub.shown} is reachable, {schema}"
    except (psycopg.Error, OSError) as exc:
        raise JournalUnavailable(f"cannot reach {scrub(exc)}") from None


class PostgresJournal:
    """The journal on PostgreSQL; ``owner`` names this replica in the leases it takes.

    Each method is one transaction on a connection from the pool. A lost connection rolls
    the transaction back on the server: the caller sees ``JournalUnavailable`` (the webhook
    answers 503) and claimed work stays claimed until its lease expires or this owner
    takes it again."""

    POOL_WAIT = 2.0        # seconds a transaction waits for a connection before giving up
    FLUSHERS = 2           # group commits of webhooks in flight at once: one writes, one flushes
    BATCH_ALERTS = 2000    # alerts in one group commit of webhooks, at most (one delivery more)
    CONNECT_TIMEOUT = 5    # seconds to establish one connection

    def __init__(self, dsn: str, *, clock: Callable[[], float] = time.time,
                 owner: str | None = None, pool_size: int = 8,
                 lease: float | None = None, poll: float = 2.0) -> None:
        self.dsn = dsn
        self.poll = poll            # seconds: the wake-up floor when no NOTIFY arrives
        self.lease = lease
        self.clock = clock
        self.owner = owner or f"{os.uname().nodename}:{os.getpid()}"
        self.healthy = False
        self.on_wake: Callable[[str], None] | None = None
        self.listening = False      # this replica hears the others' NOTIFY now
        self._unreleased: set[int] = set()
        self._scrub = Scrubber(dsn)
        # Two pools: webhooks commit durably (the 200 is a promise that survives a crash
        # of the database server); the pipeline's bookkeeping commits without waiting for
        # the WAL flush (synchronous_commit off: never corrupt, and after a crash of the
        # server the last moments' steps are redone, which every step allows), as the
        # SQLite journal does with synchronous=NORMAL.
        self._ack_pool = self._make_pool(dsn, "responder-webhooks", pool_size, None)
        self._pool = self._make_pool(dsn, "responder-journal", pool_size, _async_commit)
        self._listener: asyncio.Task[None] | None = None
        self._batch: list[_Pending] = []
        self._flushers: set[asyncio.Task[None]] = set()
        self._opened = False

    def _make_pool(self, dsn: str, name: str, size: int,
                   configure: Callable[[AsyncConnection[Any]], Awaitable[None]] | None,
                   ) -> AsyncConnectionPool[AsyncConnection[Any]]:
        return AsyncConnectionPool(
            dsn, min_size=1, max_size=max(2, size), open=False, timeout=self.POOL_WAIT,
            kwargs={"autocommit": True, "connect_timeout": self.CONNECT_TIMEOUT},
            configure=configure, name=name)

    def _lease(self, asked: float) -> float:
        """The configured lease (``state.postgres.lease``) when there is one, else the
        caller's: how long a dead replica's work waits before another takes it."""
        return self.lease if self.lease is not None else asked

    @property
    def shown(self) -> str:
        return self._scrub.shown

    # -- lifecycle ---------------------------------------------------------------------
    async def open(self) -> None:
        """Connect, create or migrate the schema, give back this owner's leases.

        Raises JournalUnavailable when the database cannot be reached (the caller keeps
        ``/-/ready`` false and tries again) and JournalVersionError for a newer schema."""
        try:
            # One connection of its own first: its failure says why (refused, bad
            # password), where a pool would only say it timed out.
            async with await AsyncConnection.connect(
                    self.dsn, autocommit=True, connect_timeout=self.CONNECT_TIMEOUT) as conn:
                found = await migrate(conn)
                if found < SCHEMA_VERSION:
                    log.info("journal schema on %s: version %d -> %d", self.shown, found,
                             SCHEMA_VERSION)
                await self._give_back(conn)
            if not self._opened:
                await self._ack_pool.open(wait=False)
                await self._pool.open(wait=False)
                self._opened = True
        except JournalVersionError:
            raise
        except _UNAVAILABLE as exc:
            self.healthy = False
            raise JournalUnavailable(f"cannot reach {self._scrub(exc)}") from None
        except psycopg.Error as exc:
            self.healthy = False
            raise JournalUnavailable(f"cannot open the journal on {self._scrub(exc)}") from None
        self.healthy = True
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="journal-listen")

    async def open_read_only(self) -> None:
        """Open to read only (``responder replay``): every transaction is read-only, the
        schema is neither created nor migrated, and another schema version is refused."""
        options = conninfo_to_dict(self.dsn).get("options") or ""
        self._pool = AsyncConnectionPool(
            self.dsn, min_size=1, max_size=1, open=False, timeout=self.POOL_WAIT,
            kwargs={"autocommit": True, "connect_timeout": self.CONNECT_TIMEOUT,
                    "options": f"{options} -c default_transaction_read_only=on".strip()},
            name="responder-journal-read-only")
        try:
            async with await AsyncConnection.connect(
                    self.dsn, autocommit=True, connect_timeout=self.CONNECT_TIMEOUT) as conn:
                cur = await conn.execute("SELECT value FROM meta WHERE name = 'schema_version'")
                row = await cur.fetchone()
        except _UNAVAILABLE as exc:
            raise JournalUnavailable(f"cannot reach {self._scrub(exc)}") from None
        except psycopg.Error as exc:
            raise JournalUnavailable(f"{self.shown}: not a responder journal "
                                     f"({self._scrub(exc)})") from None
        found = int(row[0]) if row else 0
        if found != SCHEMA_VERSION:
            raise JournalVersionError(
                f"{self.shown}: the database has schema version {found}, this version of the "
                f"responder reads {SCHEMA_VERSION}; run `responder serve` of this version on "
                "it once to migrate it, or use the matching version")
        await self._pool.open(wait=False)
        self._opened = True
        self.healthy = True

    async def _give_back(self, conn: AsyncConnection[Any]) -> None:
        async with conn.transaction():
            counts = []
            for sql in (
                "UPDATE deliveries SET owner = NULL, lease_until = NULL WHERE owner = %s "
                "AND state = 'pending'",
                "UPDATE attempts SET state = 'scheduled', owner = NULL, lease_until = NULL "
                "WHERE state = 'running' AND owner = %s",
                "UPDATE outbox SET state = 'pending', owner = NULL, lease_until = NULL "
                "WHERE state = 'sending' AND owner = %s",
            ):
                cur = await conn.execute(sql, (self.owner,))
                counts.append(cur.rowcount)
        if any(counts):
            log.warning("gave back what %s held at its last stop: %d deliveries, %d attempts, "
                        "%d messages", self.owner, *counts)

    async def close(self) -> None:
        if self._flushers:
            # Webhooks waiting for a commit get their answer from it first.
            await asyncio.gather(*self._flushers, return_exceptions=True)
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None
        if self._opened:
            await self._pool.close()
            await self._ack_pool.close()
            self._opened = False
        self.healthy = False

    # -- held commits: every write is a round trip to the server anyway ----------------
    @contextlib.asynccontextmanager
    async def holding_commits(self) -> AsyncIterator[None]:
        """Each write commits as it comes (a transaction held across the pipeline's steps
        would hold a pooled connection and its row locks between round trips)."""
        yield

    async def commit_held(self) -> None:
        return None

    # -- wake-ups ----------------------------------------------------------------------
    def _wake(self, kind: str) -> None:
        if self.on_wake is not None:
            self.on_wake(kind)

    async def _listen(self) -> None:
        """LISTEN for work other replicas created; wake every worker each POLL at least."""
        while True:
            try:
                async with await AsyncConnection.connect(
                        self.dsn, autocommit=True,
                        connect_timeout=self.CONNECT_TIMEOUT) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening = True
                    while True:
                        async for note in conn.notifies(timeout=self.poll):
                            self._wake(note.payload)
                        for kind in ("delivery", "attempt", "outbox"):
                            self._wake(kind)
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as exc:
                self.listening = False
                log.warning("journal wake-ups lost (%s); polling until reconnected",
                            self._scrub(exc))
                for kind in ("delivery", "attempt", "outbox"):
                    self._wake(kind)
                await asyncio.sleep(self.poll)

    # -- transactions ------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _tx(self, *, read: bool = False,
                  ack: bool = False) -> AsyncIterator[AsyncCursor[Any]]:
        """One transaction (``read``: one statement, no BEGIN/COMMIT round trips, which
        also serves a write that is one statement, its NOTIFY in it too; ``ack``:
        committed durably, for what a webhook's 200 promises). Connection failures become
        JournalUnavailable, and the server rolls the transaction back.

        Not psycopg's pipeline mode: while it waits for results it polls a socket that is
        always writable, and the event loop spins for as long as the server takes (a
        durable commit's WAL flush, above all)."""
        if not self._opened:
            raise JournalUnavailable(f"journal unavailable: {self.shown} has not answered yet")
        pool = self._ack_pool if ack else self._pool
        try:
            async with pool.connection() as conn:
                if read:
                    yield conn.cursor()
                else:
                    async with conn.transaction():
                        yield conn.cursor()
        except psycopg.Error as exc:
            if _lost(exc):
                self.healthy = False
                raise JournalUnavailable(f"journal unavailable: {self._scrub(exc)}") from None
            raise _Refused(f"journal write failed: {self._scrub(exc)}") from None
        except OSError as exc:
            self.healthy = False
            raise JournalUnavailable(f"journal unavailable: {self._scrub(exc)}") from None
        self.healthy = True

    @staticmethod
    async def _notify(cur: AsyncCursor[Any], kind: str) -> None:
        await cur.execute("SELECT pg_notify(%s, %s)", (CHANNEL, kind))

    @staticmethod
    async def _insert_events(cur: AsyncCursor[Any], events: Iterable[Event], now: float) -> None:
        rows = _event_rows(events, now)
        if len(rows) == 1:
            await cur.execute(
                "INSERT INTO events (ts, kind, receipt_id, instance, runbook, action, target, "
                "outcome, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", rows[0])
        elif rows:
            # One statement for all of them, in their order (ids ascend as they are given).
            await cur.execute(_INSERT_EVENTS, list(map(list, zip(*rows, strict=True))))

    # -- receipts and deliveries (group commit) ----------------------------------------
    async def record_delivery(self, group: AlertGroup, rejected: list[Rejected]) -> DeliveryResult:
        """Journal a webhook delivery; returns once its rows are committed durably.

        Webhooks that arrive while a commit is in flight are written together in the next
        transaction (group commit): one WAL flush and a handful of round trips for all of
        them, where a transaction each paid both per webhook."""
        if not self._opened:
            raise JournalUnavailable(f"journal unavailable: {self.shown} has not answered yet")
        future: asyncio.Future[DeliveryResult] = asyncio.get_running_loop().create_future()
        self._batch.append((group, rejected, future))
        if len(self._flushers) < self.FLUSHERS:
            task = asyncio.create_task(self._flush_loop(), name="journal-webhooks")
            self._flushers.add(task)
            task.add_done_callback(self._flushers.discard)
        return await future

    async def _flush_loop(self) -> None:
        while self._batch:
            batch: list[_Pending] = []
            size = 0
            while self._batch and (not batch or size + len(self._batch[0][0].alerts)
                                   <= self.BATCH_ALERTS):
                item = self._batch.pop(0)
                batch.append(item)
                size += len(item[0].alerts)
            try:
                results = await self._commit_deliveries(batch)
            except _Refused as exc:
                # One request's rows may be what the server refused (or a deadlock with
                # another replica chose this batch): each alone, so only that one fails.
                if len(batch) == 1:
                    self._fail(batch, exc)
                for item in batch if len(batch) > 1 else ():
                    await self._commit_alone(item)
                continue
            except JournalUnavailable as exc:
                self._fail(batch, exc)
                continue
            except BaseException as exc:
                self._fail(batch, JournalUnavailable(f"journal unavailable: {self._scrub(exc)}"))
                raise
            for (_, _, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def _commit_alone(self, item: _Pending) -> None:
        try:
            (result,) = await self._commit_deliveries([item])
        except JournalUnavailable as exc:
            self._fail([item], exc)
        else:
            if not item[2].done():
                item[2].set_result(result)

    @staticmethod
    def _fail(batch: Sequence[_Pending], exc: JournalUnavailable) -> None:
        for _, _, future in batch:
            if not future.done():
                future.set_exception(exc)

    async def _commit_deliveries(self, batch: Sequence[_Pending]) -> list[DeliveryResult]:
        """The batch in one durable transaction, a statement per table whatever its size.

        Receipts are upserted in (instance, status) order, so two replicas writing the same
        alerts at once lock them in the same order (no deadlock): one inserts, the other
        counts a duplicate. An alert that comes twice in one batch (Alertmanager's peers
        send the same group) is upserted in a second round, as the later delivery's
        duplicate, since one statement may not change a row twice."""
        now = self.clock()
        async with self._tx(ack=True) as cur:
            await cur.execute("SELECT nextval('delivery_ids') FROM generate_series(1, %s)",
                              (len(batch),))
            ids = sorted(int(r[0]) for r in await cur.fetchall())
            rounds: list[list[tuple[int, int]]] = []   # (batch index, alert index)
            seen: dict[tuple[str, str], int] = {}
            repeats = [0] * len(batch)   # copies of an alert already in the same payload
            for b, (group, _, _) in enumerate(batch):
                mine: set[tuple[str, str]] = set()
                for i, alert in enumerate(group.alerts):
                    key = (alert.instance, alert.status)
                    if key in mine:     # one receipt: counted a duplicate, not written again
                        repeats[b] += 1
                        continue
                    mine.add(key)
                    n = seen[key] = seen.get(key, -1) + 1
                    if n == len(rounds):
                        rounds.append([])
                    rounds[n].append((b, i))
            got: dict[tuple[int, int], tuple[bool, int]] = {}
            for members in rounds:
                alerts = [(batch[b][0].alerts[i], ids[b]) for b, i in members]
                await cur.execute(_UPSERT_RECEIPTS, (
                    now, now, [a.instance for a, _ in alerts], [a.status for a, _ in alerts],
                    [a.fingerprint for a, _ in alerts], [a.alertname for a, _ in alerts],
                    [_json_encode(a) for a, _ in alerts], [d for _, d in alerts]))
                by_key = {(inst, status): (int(rid), int(did))
                          for rid, did, inst, status in await cur.fetchall()}
                for (b, i), (alert, did) in zip(members, alerts, strict=True):
                    rid, owner = by_key[(alert.instance, alert.status)]
                    got[(b, i)] = (owner == did, rid)
            await self._insert_events(cur, [
                Event(kind="rejected", outcome="invalid",
                      detail={"group_key": group.group_key, "index": item.index,
                              "path": item.path, "error": item.error})
                for group, rejected, _ in batch for item in rejected], now)
            results, rows = [], []
            for b, (group, _, _) in enumerate(batch):
                kinds = [got[(b, i)] for i in range(len(group.alerts)) if (b, i) in got]
                new = [rid for is_new, rid in kinds if is_new]
                dup = [rid for is_new, rid in kinds if not is_new]
                done = not kinds
                rows.append((ids[b], group.group_key,
                             _json_encode(group.to_dict(with_alerts=False)), _json_encode(new),
                             _json_encode(dup), "done" if done else "pending",
                             now if done else None))
                results.append(DeliveryResult(ids[b], len(new), len(dup) + repeats[b]))
            # The NOTIFY rides on the same statement, sent at commit when any is pending.
            await cur.execute(_INSERT_DELIVERIES, (now, *map(list, zip(*rows, strict=True)),
                                                   CHANNEL))
        return results

    async def record_rejection(self, detail: dict[str, Any]) -> None:
        now = self.clock()
        async with self._tx(ack=True) as cur:
            await self._insert_events(
                cur, [Event(kind="rejected", outcome="invalid", detail=detail)], now)

    async def _load_deliveries(self, cur: AsyncCursor[Any], rows: Sequence[Sequence[Any]],
                               max_alerts: int) -> list[PendingDelivery]:
        chosen: list[tuple[int, bytes, float, list[int], list[int]]] = []
        loaded = 0
        for did, envelope, received_at, new_ids, dup_ids in rows:
            new_list, dup_list = _json_decode(new_ids), _json_decode(dup_ids)
            size = len(new_list) + len(dup_list)
            if chosen and loaded + size > max_alerts:
                break
            loaded += size
            chosen.append((did, envelope, received_at, new_list, dup_list))
        ids = [rid for c in chosen for rid in (*c[3], *c[4])]
        found: dict[int, Receipt] = {}
        if ids:
            await cur.execute(
                "SELECT id, instance, status, alert, deliveries, received_at, state "
                "FROM receipts WHERE id = ANY(%s)", (ids,))
            for r in await cur.fetchall():
                found[r[0]] = Receipt(r[0], r[1], r[2], _json_decode(r[3]), r[4], r[5], r[6])
        return [PendingDelivery(did, _json_decode(envelope), received_at,
                                tuple(found[i] for i in new_list if i in found),
                                tuple(found[i] for i in dup_list if i in found))
                for did, envelope, received_at, new_list, dup_list in chosen]

    async def pending_deliveries(self, after_id: int = 0, limit: int = 100,
                                 max_alerts: int = 200) -> list[PendingDelivery]:
        async with self._tx() as cur:
            await cur.execute(
                "SELECT id, envelope, received_at, new_receipts, dup_receipts FROM deliveries "
                "WHERE state = 'pending' AND id > %s ORDER BY id LIMIT %s", (after_id, limit))
            return await self._load_deliveries(cur, await cur.fetchall(), max_alerts)

    async def claim_deliveries(self, *, limit: int = 50, max_alerts: int = 50,
                               lease: float = 120.0) -> list[PendingDelivery]:
        now = self.clock()
        # Deliveries this owner gave back while the database was down count as released
        # (see release_deliveries), not as held until their lease ends.
        unreleased = sorted(self._unreleased)
        async with self._tx() as cur:
            await cur.execute(
                "SELECT id, envelope, received_at, new_receipts, dup_receipts FROM deliveries "
                "WHERE state = 'pending' AND (owner IS NULL OR lease_until < %s OR "
                "(owner = %s AND id = ANY(%s))) ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                (now, self.owner, unreleased, limit))
            claimed = await self._load_deliveries(cur, await cur.fetchall(), max_alerts)
            if claimed:
                await cur.execute(
                    "UPDATE deliveries SET owner = %s, lease_until = %s WHERE id = ANY(%s)",
                    (self.owner, now + self._lease(lease), [d.id for d in claimed]))
        self._unreleased.difference_update(unreleased)
        return claimed

    async def release_deliveries(self, delivery_ids: Sequence[int]) -> None:
        """Give the deliveries back; when the database cannot be told now (a lost
        connection rolled the work back), the next claim of this owner takes them back
        instead of leaving them to their lease."""
        if not delivery_ids:
            return
        self._unreleased.update(delivery_ids)
        async with self._tx() as cur:
            await cur.execute(
                "UPDATE deliveries SET owner = NULL, lease_until = NULL "
                "WHERE id = ANY(%s) AND owner = %s AND state = 'pending'",
                (list(delivery_ids), self.owner))
            await self._notify(cur, "delivery")
        self._unreleased.difference_update(delivery_ids)

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
        """All of them in one transaction of a few statements, whatever their number: the
        deliveries' rows first (one another owner holds now, our lease having run out and
        it being claimed again, is left to that owner and nothing of it is written), then
        every receipt, message and event of the others, one statement per table."""
        if not finished:
            return []
        now = self.clock()
        async with self._tx() as cur:
            await cur.execute(
                "UPDATE deliveries SET state = 'done', finished_at = %s, owner = NULL, "
                "lease_until = NULL WHERE id = ANY(%s) AND state = 'pending' AND "
                "(owner IS NULL OR owner = %s) RETURNING id",
                (now, [f.delivery_id for f in finished], self.owner))
            held = {int(r[0]) for r in await cur.fetchall()}
            kept: list[int] = []
            for k, f in enumerate(finished):
                if f.delivery_id in held:
                    held.discard(f.delivery_id)
                    kept.append(k)
                else:
                    log.warning("delivery %d is no longer held by %s; its results are dropped",
                                f.delivery_id, self.owner)
            mine = [finished[k] for k in kept]
            receipts = {rid: (state, _json_encode(analysis), _json_encode(runbooks))
                        for f in mine for rid, state, analysis, runbooks in f.receipts}
            if receipts:
                await cur.execute(
                    "UPDATE receipts SET state = t.s, analysis = t.a, runbooks = t.r FROM "
                    "unnest(%s::bigint[], %s::text[], %s::bytea[], %s::bytea[]) AS t(i, s, a, r) "
                    "WHERE receipts.id = t.i",
                    (list(receipts), *map(list, zip(*receipts.values(), strict=True))))
            messages = [m for f in mine for m in f.messages]
            queued = await self._enqueue_many(cur, messages, now, now + lease)
            sent_here: list[OutboxItem] = []
            events: list[Event] = []
            counts = [0] * len(finished)
            for k in kept:
                events.extend(finished[k].events)
                for m in finished[k].messages:
                    item_id = queued.pop(m.dedup, None)
                    counts[k] += item_id is not None
                    if item_id is not None and m.claim:
                        sent_here.append(OutboxItem(item_id, m.channel, m.dedup, m.message,
                                                    m.fallback, m.receipt_id, "sending", 0,
                                                    now, None))
                    events.append(m.event.but(outcome="duplicate" if item_id is None
                                              else "queued"))
            await self._insert_events(cur, events, now)
            if sum(counts) > len(sent_here):   # what this process sends itself wakes nobody
                await self._notify(cur, "outbox")
        if claimed is not None:
            claimed.extend(sent_here)
        return counts

    async def _enqueue_many(self, cur: AsyncCursor[Any], messages: Sequence[OutboxMessage],
                            now: float, lease_until: float) -> dict[str, int]:
        """Queue each message once (``dedup`` is unique), in one statement; the dedup keys
        queued now, with their ids (a key given twice is queued by its first). A message
        with ``claim`` is written claimed by this owner until ``lease_until``."""
        if not messages:
            return {}
        await cur.execute(
            "INSERT INTO outbox (channel, dedup, message, fallback, receipt_id, next_at, "
            "created_at, state, owner, lease_until) SELECT c, d, m, f, r, %s, %s, s, o, l "
            "FROM unnest(%s::text[], %s::text[], %s::bytea[], %s::text[], %s::bigint[], "
            "%s::text[], %s::text[], %s::float8[]) WITH ORDINALITY "
            "AS t(c, d, m, f, r, s, o, l, n) ORDER BY n ON CONFLICT (dedup) DO NOTHING "
            "RETURNING dedup, id",
            (now, now, [m.channel for m in messages], [m.dedup for m in messages],
             [_json_encode(m.message) for m in messages], [m.fallback for m in messages],
             [m.receipt_id for m in messages],
             ["sending" if m.claim else "pending" for m in messages],
             [self.owner if m.claim else None for m in messages],
             [lease_until if m.claim else None for m in messages]))
        return {str(d): int(i) for d, i in await cur.fetchall()}

    # -- events ------------------------------------------------------------------------
    async def add_events(self, events: Iterable[Event]) -> None:
        events = list(events)
        if events:
            now = self.clock()
            async with self._tx() as cur:
                await self._insert_events(cur, events, now)

    async def decided(self, since: float, *, limit: int = 10_000) -> list[DecidedDelivery]:
        async with self._tx() as cur:
            await cur.execute(
                "SELECT id, envelope, received_at, new_receipts, '[]' FROM deliveries "
                "WHERE state = 'done' AND received_at >= %s ORDER BY received_at, id LIMIT %s",
                (since, limit))
            loaded = await self._load_deliveries(cur, await cur.fetchall(), 2**62)
            ids = [r.id for d in loaded for r in d.new]
            decided: dict[int, tuple[Any, Any]] = {}
            events: dict[int, list[dict[str, Any]]] = {}
            if ids:
                await cur.execute("SELECT id, analysis, runbooks FROM receipts "
                                  "WHERE id = ANY(%s)", (ids,))
                for rid, analysis, runbooks in await cur.fetchall():
                    decided[rid] = (_json_decode(analysis) if analysis else None,
                                    _json_decode(runbooks) if runbooks else [])
                await cur.execute(f"SELECT {_EVENT_COLS} FROM events WHERE receipt_id = ANY(%s) "
                                  "ORDER BY id", (ids,))
                for e in await cur.fetchall():
                    events.setdefault(e[3], []).append(_event_dict(e))
        return [DecidedDelivery(d.id, d.received_at, d.group, tuple(
            DecidedReceipt(r, *decided.get(r.id, (None, [])), events.get(r.id, []))
            for r in d.new)) for d in loaded]

    async def recent(self, limit: int = 50) -> dict[str, Any]:
        async with self._tx() as cur:
            await cur.execute(
                "SELECT id, instance, status, alert, deliveries, received_at, last_delivery_at, "
                "state, analysis, runbooks FROM receipts ORDER BY last_delivery_at DESC, id DESC "
                "LIMIT %s", (limit,))
            rows = await cur.fetchall()
            by_receipt: dict[int, list[dict[str, Any]]] = {}
            by_instance: dict[str, list[tuple[int | None, dict[str, Any]]]] = {}
            if rows:
                await cur.execute(
                    f"SELECT {_EVENT_COLS} FROM events WHERE receipt_id = ANY(%s) "
                    "OR instance = ANY(%s) ORDER BY id",
                    ([r[0] for r in rows], list({r[1] for r in rows})))
                for e in await cur.fetchall():
                    event = _event_dict(e)
                    if e[3] is not None:
                        by_receipt.setdefault(e[3], []).append(event)
                    if e[4] is not None:
                        by_instance.setdefault(e[4], []).append((e[3], event))
            alerts = []
            for row in rows:
                own = by_receipt.get(row[0], [])
                others = [ev for rid, ev in by_instance.get(row[1], []) if rid != row[0]]
                merged = sorted({id(ev): ev for ev in (*own, *others)}.values(),
                                key=lambda ev: ev["id"])
                alerts.append({
                    "id": row[0], "instance": row[1], "status": row[2],
                    "alert": _json_decode(row[3]), "deliveries": row[4],
                    "received_at": row[5], "last_delivery_at": row[6], "state": row[7],
                    "analysis": _json_decode(row[8]) if row[8] else None,
                    "runbooks": _json_decode(row[9]) if row[9] else [],
                    "events": merged,
                })
            await cur.execute(f"SELECT {_EVENT_COLS} FROM events WHERE kind = 'rejected' "
                              "ORDER BY id DESC LIMIT %s", (limit,))
            rejected = [_event_dict(e) for e in await cur.fetchall()]
            await cur.execute("SELECT value FROM meta WHERE name = 'pruned_before'")
            since = await cur.fetchone()
        return {"alerts": alerts, "rejected": rejected,
                "since": float(since[0]) if since is not None else None}

    async def events(self, *, kind: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        async with self._tx(read=True) as cur:
            if kind is None:
                await cur.execute(f"SELECT {_EVENT_COLS} FROM events ORDER BY id DESC LIMIT %s",
                                  (limit,))
            else:
                await cur.execute(f"SELECT {_EVENT_COLS} FROM events WHERE kind = %s "
                                  "ORDER BY id DESC LIMIT %s", (kind, limit))
            return [_event_dict(r) for r in await cur.fetchall()]

    # -- attempts ----------------------------------------------------------------------
    async def schedule_attempt(
        self, *, instance: str, runbook: str, target: str, n: int, action: str,
        params: dict[str, Any], due_at: float, receipt_id: int | None,
        context: dict[str, Any], state: str = "scheduled",
    ) -> Attempt | None:
        # One statement, its own transaction: the NOTIFY (a new scheduled attempt wakes
        # every scheduler) goes with the row it announces.
        wake = ", pg_notify(%s, 'attempt')" if state == "scheduled" else ", %s"
        async with self._tx(read=True) as cur:
            await cur.execute(
                "WITH a AS (INSERT INTO attempts (instance, runbook, target, n, action, params, "
                "due_at, state, receipt_id, context) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, "
                "%s, %s) ON CONFLICT (instance, runbook, target, n) DO NOTHING RETURNING "
                f"{_ATTEMPT_COLS}) SELECT {_ATTEMPT_COLS}{wake} FROM a",
                (instance, runbook, target, n, action, _json_encode(params), due_at, state,
                 receipt_id, _json_encode(context), CHANNEL))
            row = await cur.fetchone()
            return _attempt(row) if row else None

    async def due_attempts(self, now: float, limit: int = 50) -> list[Attempt]:
        async with self._tx(read=True) as cur:
            # Two index scans (state, due_at), not one scan of every attempt ever made.
            await cur.execute(
                f"(SELECT {_ATTEMPT_COLS} FROM attempts WHERE state = 'scheduled' AND due_at <= %s "
                f"ORDER BY due_at, id LIMIT %s) UNION ALL (SELECT {_ATTEMPT_COLS} FROM attempts "
                "WHERE state = 'running' AND lease_until < %s ORDER BY due_at, id LIMIT %s) "
                "ORDER BY due_at, id LIMIT %s", (now, limit, now, limit, limit))
            return [_attempt(r) for r in await cur.fetchall()]

    async def next_attempt_due(self) -> float | None:
        async with self._tx(read=True) as cur:
            await cur.execute(
                "SELECT LEAST((SELECT MIN(due_at) FROM attempts WHERE state = 'scheduled'), "
                "(SELECT MIN(lease_until) FROM attempts WHERE state = 'running'))")
            row = await cur.fetchone()
        return float(row[0]) if row and row[0] is not None else None

    async def attempts_for(self, instance: str, runbook: str | None = None) -> list[Attempt]:
        async with self._tx(read=True) as cur:
            if runbook is None:
                await cur.execute(f"SELECT {_ATTEMPT_COLS} FROM attempts WHERE instance = %s "
                                  "ORDER BY runbook, target, n", (instance,))
            else:
                await cur.execute(f"SELECT {_ATTEMPT_COLS} FROM attempts WHERE instance = %s "
                                  "AND runbook = %s ORDER BY target, n", (instance, runbook))
            return [_attempt(r) for r in await cur.fetchall()]

    async def attempt(self, instance: str, runbook: str, target: str, n: int) -> Attempt | None:
        async with self._tx(read=True) as cur:
            await cur.execute(f"SELECT {_ATTEMPT_COLS} FROM attempts WHERE instance = %s AND "
                              "runbook = %s AND target = %s AND n = %s",
                              (instance, runbook, target, n))
            row = await cur.fetchone()
        return _attempt(row) if row else None

    async def open_escalations(self, runbook: str, *, other_than: str) -> list[Attempt]:
        async with self._tx(read=True) as cur:
            await cur.execute(
                f"SELECT {', '.join('a.' + c for c in _ATTEMPT_COLS.split(', '))} "
                "FROM attempts a WHERE a.target = 'escalation' AND a.action = 'notify' AND "
                "a.runbook = %s AND a.instance <> %s AND NOT EXISTS (SELECT 1 FROM receipts r "
                "WHERE r.instance = a.instance AND r.status = 'resolved') ORDER BY a.id",
                (runbook, other_than))
            return [_attempt(r) for r in await cur.fetchall()]

    async def claim_attempt(self, attempt_id: int, *, lease: float = 300.0) -> bool:
        """Running under this owner's lease, or False: the row is taken with SKIP LOCKED,
        so a replica racing for the same attempt gets False at once instead of waiting."""
        now = self.clock()
        async with self._tx(read=True) as cur:
            await cur.execute(
                "UPDATE attempts SET state = 'running', owner = %s, lease_until = %s "
                "WHERE id = (SELECT id FROM attempts WHERE id = %s AND ((state = 'scheduled' "
                "AND due_at <= %s) OR (state = 'running' AND lease_until < %s)) "
                "FOR UPDATE SKIP LOCKED)",
                (self.owner, now + self._lease(lease), attempt_id, now, now))
            return cur.rowcount == 1

    async def update_attempt(
        self, attempt_id: int, *, state: str, outcome: str | None = None,
        detail: str | None = None, executed_at: float | None = None,
        due_at: float | None = None, expect_state: str | None = None,
    ) -> bool:
        lease = "" if state == "running" else ", owner = NULL, lease_until = NULL"
        sql = ("UPDATE attempts SET state = %s, outcome = COALESCE(%s, outcome), "
               "detail = COALESCE(%s, detail), executed_at = COALESCE(%s, executed_at), "
               f"due_at = COALESCE(%s, due_at){lease} WHERE id = %s")
        args: tuple[Any, ...] = (state, outcome, detail, executed_at, due_at, attempt_id)
        if expect_state is not None:
            sql += " AND state = %s"
            args = (*args, expect_state)
        wake = ", pg_notify(%s, 'attempt')" if state == "scheduled" else ", %s"
        async with self._tx(read=True) as cur:
            await cur.execute(f"WITH u AS ({sql} RETURNING id) SELECT id{wake} FROM u",
                              (*args, CHANNEL))
            return len(await cur.fetchall()) == 1

    async def retry_attempt(self, attempt_id: int, *, due_at: float, tries: int) -> None:
        async with self._tx() as cur:
            await cur.execute("SELECT context FROM attempts WHERE id = %s FOR UPDATE",
                              (attempt_id,))
            row = await cur.fetchone()
            if row is None:
                return
            context = _json_decode(row[0]) if row[0] else {}
            context["_tries"] = tries
            await cur.execute(
                "UPDATE attempts SET state = 'scheduled', due_at = %s, context = %s, "
                "owner = NULL, lease_until = NULL WHERE id = %s",
                (due_at, _json_encode(context), attempt_id))
            await self._notify(cur, "attempt")

    # -- breakers ----------------------------------------------------------------------
    async def load_breakers(self) -> list[Breaker]:
        async with self._tx(read=True) as cur:
            await cur.execute("SELECT key, state, spec FROM breakers ORDER BY key")
            return [Breaker(key, _json_decode(state), _json_decode(spec) if spec else None)
                    for key, state, spec in await cur.fetchall()]

    async def change_breaker(self, key: str, change: BreakerChange) -> Breaker | None:
        """``change`` on the breaker's row under its lock: replicas that see failures of
        one key at the same moment take turns, each seeing the other's count."""
        (row,) = await self.change_breakers([(key, change)])
        return row

    async def change_breakers(self, changes: Sequence[tuple[str, BreakerChange]],
                              ) -> list[Breaker | None]:
        """Every key locked first, in code point order (two replicas locking the same keys
        in different orders would deadlock): an advisory lock on the key (it serialises
        the creation of a row not there yet), then its row; then the changes, in their
        order, under those locks.

        Two round trips where ``conn.transaction()`` takes a statement each: BEGIN goes
        with the locks and the read, the writes and their events with the COMMIT, each
        as one simple-protocol query (its values quoted by psycopg's ``sql.Literal``)."""
        if not changes:
            return []
        now = self.clock()
        keys = sorted({k for k, _ in changes})
        async with self._tx(read=True) as cur:
            try:
                await cur.execute(sql.SQL(
                    "BEGIN; SELECT pg_advisory_xact_lock(hashtextextended('breaker:' || k, 7)) "
                    "FROM unnest({}::text[]) AS k; SELECT key, state, spec FROM breakers "
                    'WHERE key = ANY({}::text[]) ORDER BY key COLLATE "C" FOR UPDATE',
                ).format(keys, keys))
                cur.nextset()
                cur.nextset()
                rows: dict[str, Breaker | None] = dict.fromkeys(keys)
                for key, state, spec in await cur.fetchall():
                    rows[key] = Breaker(key, _json_decode(state),
                                        _json_decode(spec) if spec else None)
                out: list[Breaker | None] = []
                write: list[sql.Composable] = []
                for key, change in changes:
                    result = change(rows[key])
                    if result is not None:
                        new, events = result
                        write.append(sql.SQL(
                            "INSERT INTO breakers (key, state, spec, updated_at) VALUES "
                            "({}, {}, {}, {}) ON CONFLICT (key) DO UPDATE SET state = "
                            "excluded.state, spec = excluded.spec, updated_at = "
                            "excluded.updated_at").format(
                                key, _json_encode(new.state),
                                _json_encode(new.spec) if new.spec else None, now))
                        values = _event_rows(events, now)
                        if values:
                            write.append(sql.SQL(
                                "INSERT INTO events (ts, kind, receipt_id, instance, runbook, "
                                "action, target, outcome, detail) VALUES {}").format(
                                    sql.SQL(", ").join(sql.SQL("({})").format(
                                        sql.SQL(", ").join(map(sql.Literal, v)))
                                        for v in values)))
                        rows[key] = new
                    out.append(rows[key])
                await cur.execute(sql.SQL("; ").join([*write, sql.SQL("COMMIT")]))
                return out
            finally:
                if cur.connection.info.transaction_status != TransactionStatus.IDLE:
                    with contextlib.suppress(psycopg.Error):
                        await cur.execute("ROLLBACK")

    # -- outbox ------------------------------------------------------------------------
    async def enqueue(self, *, channel: str, dedup: str, message: dict[str, Any],
                      fallback: str | None, receipt_id: int | None,
                      next_at: float | None = None) -> bool:
        now = self.clock()
        async with self._tx(read=True) as cur:
            await cur.execute(
                "WITH o AS (INSERT INTO outbox (channel, dedup, message, fallback, receipt_id, "
                "next_at, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (dedup) "
                "DO NOTHING RETURNING id) SELECT id, pg_notify(%s, 'outbox') FROM o",
                (channel, dedup, _json_encode(message), fallback, receipt_id,
                 now if next_at is None else next_at, now, CHANNEL))
            return len(await cur.fetchall()) == 1

    async def due_outbox(self, now: float, limit: int = 50) -> list[OutboxItem]:
        async with self._tx(read=True) as cur:
            # Two index scans (state, next_at), not one scan of every message ever sent.
            await cur.execute(
                f"(SELECT {_OUTBOX_COLS} FROM outbox WHERE state = 'pending' AND next_at <= %s "
                f"ORDER BY next_at, id LIMIT %s) UNION ALL (SELECT {_OUTBOX_COLS} FROM outbox "
                "WHERE state = 'sending' AND lease_until < %s ORDER BY next_at, id LIMIT %s) "
                "ORDER BY next_at, id LIMIT %s", (now, limit, now, limit, limit))
            return [_outbox(r) for r in await cur.fetchall()]

    async def next_outbox_due(self) -> float | None:
        async with self._tx(read=True) as cur:
            await cur.execute(
                "SELECT LEAST((SELECT MIN(next_at) FROM outbox WHERE state = 'pending'), "
                "(SELECT MIN(lease_until) FROM outbox WHERE state = 'sending'))")
            row = await cur.fetchone()
        return float(row[0]) if row and row[0] is not None else None

    async def claim_message(self, item_id: int, *, lease: float = 120.0) -> bool:
        return await self.claim_messages([item_id], lease=lease) == [item_id]

    async def claim_messages(self, item_ids: Sequence[int], *,
                             lease: float = 120.0) -> list[int]:
        if not item_ids:
            return []
        now = self.clock()
        async with self._tx(read=True) as cur:
            await cur.execute(
                "UPDATE outbox SET state = 'sending', owner = %s, lease_until = %s "
                "WHERE id IN (SELECT id FROM outbox WHERE id = ANY(%s) AND ((state = 'pending' "
                "AND next_at <= %s) OR (state = 'sending' AND lease_until < %s)) "
                "ORDER BY id FOR UPDATE SKIP LOCKED) RETURNING id",
                (self.owner, now + self._lease(lease), list(item_ids), now, now))
            claimed = {int(r[0]) for r in await cur.fetchall()}
        return [i for i in item_ids if i in claimed]

    async def update_outbox(self, item_id: int, *, state: str, tries: int,
                            next_at: float | None = None, error: str | None = None,
                            events: Iterable[Event] = ()) -> None:
        await self.update_outbox_many([OutboxUpdate(item_id, state, tries, next_at, error,
                                                    tuple(events))])

    async def update_outbox_many(self, updates: Sequence[OutboxUpdate]) -> None:
        if not updates:
            return
        now = self.clock()
        # One statement; an item given twice ends as its last update says.
        last = {u.item_id: u for u in updates}
        async with self._tx() as cur:
            await cur.execute(
                "UPDATE outbox SET state = t.s, tries = t.t, next_at = COALESCE(t.n, "
                "outbox.next_at), last_error = t.e, sent_at = CASE WHEN t.s = 'sent' THEN %s "
                "ELSE outbox.sent_at END, owner = NULL, lease_until = NULL FROM unnest("
                "%s::bigint[], %s::text[], %s::int[], %s::float8[], %s::text[]) AS t(i, s, t, n, e) "
                "WHERE outbox.id = t.i",
                (now, list(last), [u.state for u in last.values()],
                 [u.tries for u in last.values()], [u.next_at for u in last.values()],
                 [u.error for u in last.values()]))
            await self._insert_events(cur, [e for u in updates for e in u.events], now)
            if any(u.state == "pending" for u in updates):
                await self._notify(cur, "outbox")

    # -- flags and rate limits ---------------------------------------------------------
    async def get_flag(self, name: str) -> Any:
        async with self._tx(read=True) as cur:
            await cur.execute("SELECT value FROM flags WHERE name = %s", (name,))
            row = await cur.fetchone()
        return _json_decode(row[0]) if row else None

    async def set_flag(self, name: str, value: Any, events: Iterable[Event] = ()) -> None:
        now = self.clock()
        events = list(events)
        async with self._tx() as cur:
            await cur.execute(
                "INSERT INTO flags (name, value, updated_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at", (name, _json_encode(value), now))
            await self._insert_events(cur, events, now)
            # A flag changes what every replica may do (the pause): they re-read it now.
            await self._notify(cur, "attempt")

    # -- corrections: operators' verdicts on analyses (the feedback loop) ---------------
    async def receipt_alert(self, receipt_id: int) -> dict[str, Any] | None:
        async with self._tx() as cur:
            await cur.execute("SELECT alert, analysis FROM receipts WHERE id = %s",
                              (receipt_id,))
            row = await cur.fetchone()
        if row is None:
            return None
        return {"alert": _json_decode(row[0]),
                "analysis": _json_decode(row[1]) if row[1] else None}

    async def record_correction(self, *, text_key: str, category: str, text: str,
                                receipt_id: int, by: str, previous: str | None) -> None:
        now = self.clock()
        event = Event(kind="correction", receipt_id=receipt_id, outcome=category,
                      detail={"by": by, "previous": previous, "category": category})
        async with self._tx() as cur:
            await cur.execute(
                "INSERT INTO corrections (text_key, category, text, receipt_id, corrected_by, "
                "corrected_at) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (text_key) DO UPDATE "
                "SET category = excluded.category, text = excluded.text, receipt_id = "
                "excluded.receipt_id, corrected_by = excluded.corrected_by, corrected_at = "
                "excluded.corrected_at", (text_key, category, text, receipt_id, by, now))
            await self._insert_events(cur, [event], now)

    async def corrections(self) -> list[tuple[str, str, str]]:
        async with self._tx() as cur:
            await cur.execute("SELECT text_key, category, text FROM corrections "
                              "ORDER BY corrected_at, text_key")
            rows = await cur.fetchall()
        return [(str(k), str(c), str(t)) for k, c, t in rows]

    async def correction_categories(self) -> list[tuple[str, str]]:
        async with self._tx() as cur:
            await cur.execute("SELECT text_key, category FROM corrections "
                              "ORDER BY corrected_at, text_key")
            rows = await cur.fetchall()
        return [(str(k), str(c)) for k, c in rows]

    async def acquire_rate(self, key: str, limit: int, window: float,
                           now: float) -> tuple[bool, float]:
        async with self._tx() as cur:
            await cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))",
                              ("rate:" + key,))
            # Elapsed time, not "ts <= now - window": the wait stays > 0 in floats.
            await cur.execute("DELETE FROM rates WHERE key = %s AND %s - ts >= %s",
                              (key, now, window))
            await cur.execute("SELECT COUNT(*), MIN(ts) FROM rates WHERE key = %s", (key,))
            row = await cur.fetchone()
            assert row is not None
            count, oldest = int(row[0]), row[1]
            if count < limit:
                await cur.execute("INSERT INTO rates (key, ts) VALUES (%s, %s)", (key, now))
                return True, 0.0
            return False, window - (now - float(oldest))

    # -- the people's controls: pauses, attempts by hand, approvals ---------------------
    async def add_pause(self, *, matchers: Sequence[str], reason: str | None, by: str,
                        until: float | None, events: Callable[[Pause], Iterable[Event]]) -> Pause:
        now = self.clock()
        async with self._tx() as cur:
            await cur.execute(
                "INSERT INTO pauses (matchers, reason, created_by, created_at, until) "
                f"VALUES (%s, %s, %s, %s, %s) RETURNING {_PAUSE_COLS}",
                (_json_encode(list(matchers)), reason, by, now, until))
            pause = _pause(await _one(cur))
            await self._insert_events(cur, events(pause), now)
            await self._notify(cur, "attempt")   # every replica re-reads what it may do
            return pause

    async def active_pauses(self, now: float) -> list[Pause]:
        async with self._tx() as cur:
            await cur.execute(f"SELECT {_PAUSE_COLS} FROM pauses WHERE lifted_at IS NULL AND "
                              "(until IS NULL OR until > %s) ORDER BY id", (now,))
            return [_pause(r) for r in await cur.fetchall()]

    async def lift_pauses(self, *, by: str, pause_id: int | None = None,
                          events: Callable[[Pause], Iterable[Event]]) -> list[Pause]:
        now = self.clock()
        sql = ("UPDATE pauses SET lifted_at = %s, lifted_by = %s WHERE lifted_at IS NULL AND "
               "(until IS NULL OR until > %s)")
        args: tuple[Any, ...] = (now, by, now)
        if pause_id is not None:
            sql += " AND id = %s"
            args = (*args, pause_id)
        async with self._tx() as cur:
            await cur.execute(f"{sql} RETURNING {_PAUSE_COLS}", args)
            lifted = [_pause(r) for r in await cur.fetchall()]
            for pause in lifted:
                await self._insert_events(cur, events(pause), now)
            if lifted:
                await self._notify(cur, "attempt")
            return lifted

    async def attempt_by_id(self, attempt_id: int) -> Attempt | None:
        async with self._tx() as cur:
            await cur.execute(f"SELECT {_ATTEMPT_COLS} FROM attempts WHERE id = %s",
                              (attempt_id,))
            row = await cur.fetchone()
        return _attempt(row) if row else None

    async def attempts_in(self, states: Sequence[str], limit: int = 200) -> list[Attempt]:
        condition = attempts_in_states(states, "%s")
        if condition is None:
            return []
        where, wanted = condition
        async with self._tx() as cur:
            await cur.execute(f"SELECT {_ATTEMPT_COLS} FROM attempts WHERE {where} "
                              "ORDER BY due_at, id LIMIT %s", (*wanted, limit))
            return [_attempt(r) for r in await cur.fetchall()]

    async def cancel_attempt(self, attempt_id: int, *, by: str,
                             events: Callable[[Attempt], Iterable[Event]]) -> Attempt | None:
        now = self.clock()
        async with self._tx() as cur:
            await cur.execute("SELECT state FROM attempts WHERE id = %s FOR UPDATE",
                              (attempt_id,))
            before = await cur.fetchone()
            if before is None or before[0] not in CANCELLABLE:
                return None
            await cur.execute(
                "UPDATE attempts SET state = 'cancelled', outcome = 'cancelled', detail = %s, "
                f"owner = NULL, lease_until = NULL WHERE id = %s RETURNING {_ATTEMPT_COLS}",
                (f"cancelled by {by}", attempt_id))
            attempt = _attempt(await _one(cur))
            if before[0] == "approval":
                await cur.execute("SELECT COUNT(*) FROM attempts WHERE instance = %s AND "
                                  "runbook = %s AND state = 'approval'",
                                  (attempt.instance, attempt.runbook))
                if not (await _one(cur))[0]:
                    await cur.execute(
                        "UPDATE approvals SET decision = 'cancelled', decided_by = %s, "
                        "decided_at = %s WHERE instance = %s AND runbook = %s AND "
                        "decision IS NULL", (by, now, attempt.instance, attempt.runbook))
            await self._insert_events(cur, events(attempt), now)
            return attempt

    async def ask_approval(self, *, instance: str, runbook: str, receipt_id: int | None,
                           attempts: Sequence[int], summary: dict[str, Any], timeout_at: float,
                           on_timeout: str) -> Approval | None:
        now = self.clock()
        async with self._tx() as cur:
            await cur.execute(
                "INSERT INTO approvals (instance, runbook, receipt_id, attempts, summary, "
                "asked_at, timeout_at, on_timeout) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                f"ON CONFLICT (instance, runbook) DO NOTHING RETURNING {_APPROVAL_COLS}",
                (instance, runbook, receipt_id, _json_encode(list(attempts)),
                 _json_encode(summary), now, timeout_at, on_timeout))
            row = await cur.fetchone()
        return _approval(row) if row else None

    async def approval(self, approval_id: int) -> Approval | None:
        async with self._tx() as cur:
            await cur.execute(f"SELECT {_APPROVAL_COLS} FROM approvals WHERE id = %s",
                              (approval_id,))
            row = await cur.fetchone()
        return _approval(row) if row else None

    async def approvals(self, *, open_only: bool = True, limit: int = 100) -> list[Approval]:
        where = "WHERE decision IS NULL " if open_only else ""
        order = "asked_at, id" if open_only else "COALESCE(decided_at, asked_at) DESC, id DESC"
        async with self._tx() as cur:
            await cur.execute(f"SELECT {_APPROVAL_COLS} FROM approvals {where}ORDER BY {order} "
                              "LIMIT %s", (limit,))
            return [_approval(r) for r in await cur.fetchall()]

    async def expired_approvals(self, now: float) -> list[Approval]:
        async with self._tx() as cur:
            await cur.execute(f"SELECT {_APPROVAL_COLS} FROM approvals WHERE decision IS NULL "
                              "AND timeout_at <= %s ORDER BY timeout_at, id", (now,))
            return [_approval(r) for r in await cur.fetchall()]

    async def next_approval_timeout(self) -> float | None:
        async with self._tx() as cur:
            await cur.execute("SELECT MIN(timeout_at) FROM approvals WHERE decision IS NULL")
            row = await cur.fetchone()
        return float(row[0]) if row and row[0] is not None else None

    async def decide_approval(self, approval_id: int, *, decision: str, run: bool, by: str,
                              comment: str | None,
                              events: Callable[[Approval], Iterable[Event]]) -> Approval | None:
        """The conditional update is the lock: replicas racing on one approval serialize on
        its row, and every one but the first finds ``decision`` set and changes nothing."""
        now = self.clock()
        async with self._tx() as cur:
            await cur.execute(
                "UPDATE approvals SET decision = %s, decided_by = %s, decided_at = %s, "
                f"comment = %s WHERE id = %s AND decision IS NULL RETURNING {_APPROVAL_COLS}",
                (decision, by, now, comment, approval_id))
            row = await cur.fetchone()
            if row is None:
                return None
            approval = _approval(row)
            for attempt_id in approval.attempts:
                if run:
                    await cur.execute(
                        "UPDATE attempts SET state = 'scheduled', due_at = GREATEST(due_at, %s) "
                        "WHERE id = %s AND state = 'approval'", (now, attempt_id))
                else:
                    await cur.execute(
                        "UPDATE attempts SET state = 'cancelled', outcome = %s, detail = %s "
                        "WHERE id = %s AND state = 'approval'",
                        (decision, f"{decision} by {by}", attempt_id))
            await self._insert_events(cur, events(approval), now)
            if run:
                await self._notify(cur, "attempt")
            return approval

    async def close_approvals(self, instance: str, decision: str, by: str) -> int:
        now = self.clock()
        async with self._tx() as cur:
            await cur.execute("UPDATE approvals SET decision = %s, decided_by = %s, "
                              "decided_at = %s WHERE instance = %s AND decision IS NULL",
                              (decision, by, now, instance))
            return cur.rowcount

    # -- console sessions ended by logging out -----------------------------------------
    async def revoke_session(self, session_id: str, *, until: float) -> None:
        now = self.clock()
        async with self._tx() as cur:
            await cur.execute("DELETE FROM revoked_sessions WHERE until < %s", (now,))
            await cur.execute(
                "INSERT INTO revoked_sessions (id, until) VALUES (%s, %s) ON CONFLICT (id) "
                "DO UPDATE SET until = GREATEST(revoked_sessions.until, excluded.until)",
                (session_id, until))

    async def revoked_sessions(self) -> list[str]:
        now = self.clock()
        async with self._tx(read=True) as cur:
            await cur.execute("SELECT id FROM revoked_sessions WHERE until >= %s ORDER BY id",
                              (now,))
            return [str(i) for (i,) in await cur.fetchall()]

    # -- health and retention ----------------------------------------------------------
    async def pending_count(self) -> int:
        async with self._tx(read=True) as cur:
            await cur.execute(
                "SELECT (SELECT COUNT(*) FROM deliveries WHERE state = 'pending') + "
                "(SELECT COUNT(*) FROM attempts WHERE state IN ('scheduled', 'running')) + "
                "(SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending'))")
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def size_bytes(self) -> int:
        async with self._tx(read=True) as cur:
            await cur.execute(
                "SELECT COALESCE(SUM(pg_total_relation_size(to_regclass(t))), 0) "
                "FROM unnest(%s::text[]) AS t", (list(_TABLES),))
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def release_space(self, *, pages: int = 1024) -> int:
        """Nothing to do here: PostgreSQL's autovacuum makes the space of deleted rows
        reusable, and the database's files are the server's to manage."""
        return 0

    async def prune(self, before: float, *, batch: int = 500) -> int:
        """One batch of finished work older than ``before``; pending work is never touched.

        The same rules as the SQLite journal's: a receipt goes (with its events) once its
        alert is finished and quiet since ``before`` and no attempt of its instance is still
        to run; then attempts no receipt remembers, done deliveries, sent or failed
        messages, old events and rate windows, decided approvals of alerts no receipt
        remembers, and pauses lifted or expired."""
        deleted = 0
        async with self._tx() as cur:
            # One replica prunes at a time; the others find the lock taken and skip a pass.
            await cur.execute("SELECT pg_try_advisory_xact_lock(%s)", (RETENTION_LOCK,))
            got = await cur.fetchone()
            if got is None or not got[0]:
                return 0
            await cur.execute(
                "SELECT id FROM receipts r WHERE r.state <> 'pending' AND "
                "r.last_delivery_at < %s AND NOT EXISTS (SELECT 1 FROM attempts a WHERE "
                f"a.instance = r.instance AND a.state NOT IN {_FINISHED_ATTEMPT}) "
                "LIMIT %s FOR UPDATE SKIP LOCKED", (before, batch))
            ids = [r for (r,) in await cur.fetchall()]
            if ids:
                await cur.execute("DELETE FROM events WHERE receipt_id = ANY(%s)", (ids,))
                deleted += cur.rowcount
                await cur.execute("DELETE FROM receipts WHERE id = ANY(%s)", (ids,))
                deleted += cur.rowcount
            for sql in (
                "DELETE FROM attempts WHERE id IN (SELECT a.id FROM attempts a WHERE "
                f"a.state IN {_FINISHED_ATTEMPT} AND a.due_at < %s AND NOT EXISTS ("
                "SELECT 1 FROM receipts r WHERE r.instance = a.instance) LIMIT %s)",
                "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE "
                "state = 'done' AND received_at < %s LIMIT %s)",
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE "
                "state IN ('sent', 'failed') AND created_at < %s LIMIT %s)",
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE ts < %s AND "
                "(receipt_id IS NULL OR NOT EXISTS (SELECT 1 FROM receipts r WHERE "
                "r.id = events.receipt_id)) LIMIT %s)",
                "DELETE FROM rates WHERE id IN (SELECT id FROM rates WHERE ts < %s LIMIT %s)",
                "DELETE FROM approvals WHERE id IN (SELECT a.id FROM approvals a WHERE "
                "a.decision IS NOT NULL AND a.decided_at < %s AND NOT EXISTS (SELECT 1 FROM "
                "receipts r WHERE r.instance = a.instance) LIMIT %s)",
                "DELETE FROM pauses WHERE id IN (SELECT id FROM pauses WHERE "
                "COALESCE(lifted_at, until) < %s LIMIT %s)",
            ):
                await cur.execute(sql, (before, batch))
                deleted += cur.rowcount
            if deleted:
                await cur.execute(
                    "INSERT INTO meta (name, value) VALUES ('pruned_before', %s) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (repr(before),))
        return deleted


async def _one(cur: AsyncCursor[Any]) -> Any:
    """The row a RETURNING or an aggregate always gives."""
    row = await cur.fetchone()
    assert row is not None
    return row
