"""The PostgreSQL journal's schema, as the steps that build it from nothing, one per version.

``meta.schema_version`` records the version. ``migrate`` runs at every start in one
transaction under an advisory lock, so replicas that start together take turns: the first
creates or migrates, the others find the work done. A database of a newer version than
this code is refused (it may hold what this code would misread). A released step is never
edited; a change is a new step.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from responder.journal.migrations import SCHEMA_VERSION
from responder.journal.records import JournalVersionError

MIGRATION_LOCK = 0x7265_7370   # pg_advisory_xact_lock key of schema changes ("resp")

# Versions count as the SQLite journal's do (responder.journal.migrations), so one number
# names one journal vocabulary on both backends. PostgreSQL arrived with version 2 (leases,
# the delivery id sequence, rate windows, retention indexes): a new database is built by
# that step; later versions add steps here as they add them there.
STEPS: dict[int, tuple[str, ...]] = {
    2: (
        "CREATE SEQUENCE delivery_ids",
        """CREATE TABLE deliveries (
            id BIGINT PRIMARY KEY,
            group_key TEXT NOT NULL,
            envelope BYTEA NOT NULL,
            received_at DOUBLE PRECISION NOT NULL,
            new_receipts BYTEA NOT NULL,
            dup_receipts BYTEA NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            finished_at DOUBLE PRECISION,
            owner TEXT,
            lease_until DOUBLE PRECISION)""",
        "CREATE INDEX deliveries_pending ON deliveries (id) WHERE state = 'pending'",
        "CREATE INDEX deliveries_done ON deliveries (state, received_at)",
        """CREATE TABLE receipts (
            id BIGSERIAL PRIMARY KEY,
            instance TEXT NOT NULL,
            status TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            alertname TEXT NOT NULL,
            alert BYTEA NOT NULL,
            delivery_id BIGINT NOT NULL,
            received_at DOUBLE PRECISION NOT NULL,
            deliveries INTEGER NOT NULL DEFAULT 1,
            last_delivery_at DOUBLE PRECISION NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            analysis BYTEA,
            runbooks BYTEA,
            UNIQUE (instance, status))""",
        "CREATE INDEX receipts_recent ON receipts (last_delivery_at)",
        "CREATE INDEX receipts_done ON receipts (state, last_delivery_at)",
        """CREATE TABLE events (
            id BIGSERIAL PRIMARY KEY,
            ts DOUBLE PRECISION NOT NULL,
            kind TEXT NOT NULL,
            receipt_id BIGINT,
            instance TEXT,
            runbook TEXT,
            action TEXT,
            target TEXT,
            outcome TEXT,
            detail BYTEA)""",
        "CREATE INDEX events_receipt ON events (receipt_id)",
        "CREATE INDEX events_instance ON events (instance)",
        "CREATE INDEX events_ts ON events (ts)",
        "CREATE INDEX events_kind ON events (kind, id)",
        """CREATE TABLE attempts (
            id BIGSERIAL PRIMARY KEY,
            instance TEXT NOT NULL,
            runbook TEXT NOT NULL,
            target TEXT NOT NULL,
            n INTEGER NOT NULL,
            action TEXT NOT NULL,
            params BYTEA NOT NULL,
            due_at DOUBLE PRECISION NOT NULL,
            state TEXT NOT NULL,
            receipt_id BIGINT,
            context BYTEA,
            outcome TEXT,
            detail TEXT,
            executed_at DOUBLE PRECISION,
            owner TEXT,
            lease_until DOUBLE PRECISION,
            UNIQUE (instance, runbook, target, n))""",
        "CREATE INDEX attempts_due ON attempts (state, due_at)",
        """CREATE TABLE breakers (
            key TEXT PRIMARY KEY,
            state BYTEA NOT NULL,
            spec BYTEA,
            updated_at DOUBLE PRECISION NOT NULL)""",
        """CREATE TABLE outbox (
            id BIGSERIAL PRIMARY KEY,
            channel TEXT NOT NULL,
            dedup TEXT NOT NULL UNIQUE,
            message BYTEA NOT NULL,
            fallback TEXT,
            receipt_id BIGINT,
            state TEXT NOT NULL DEFAULT 'pending',
            tries INTEGER NOT NULL DEFAULT 0,
            next_at DOUBLE PRECISION NOT NULL,
            last_error TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            sent_at DOUBLE PRECISION,
            owner TEXT,
            lease_until DOUBLE PRECISION)""",
        "CREATE INDEX outbox_due ON outbox (state, next_at)",
        "CREATE INDEX outbox_done ON outbox (state, created_at)",
        """CREATE TABLE flags (
            name TEXT PRIMARY KEY,
            value BYTEA NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL)""",
        """CREATE TABLE rates (
            id BIGSERIAL PRIMARY KEY,
            key TEXT NOT NULL,
            ts DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX rates_key ON rates (key, ts)",
    ),
    3: (
        """CREATE TABLE corrections (
            text_key TEXT PRIMARY KEY,
            category TEXT NOT NULL,
            text TEXT NOT NULL,
            receipt_id BIGINT,
            corrected_by TEXT,
            corrected_at DOUBLE PRECISION NOT NULL)""",
    ),
    4: (
        """CREATE TABLE pauses (
            id BIGSERIAL PRIMARY KEY,
            matchers BYTEA NOT NULL,
            reason TEXT,
            created_by TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            until DOUBLE PRECISION,
            lifted_at DOUBLE PRECISION,
            lifted_by TEXT)""",
        """CREATE TABLE approvals (
            id BIGSERIAL PRIMARY KEY,
            instance TEXT NOT NULL,
            runbook TEXT NOT NULL,
            receipt_id BIGINT,
            attempts BYTEA NOT NULL,
            summary BYTEA NOT NULL,
            asked_at DOUBLE PRECISION NOT NULL,
            timeout_at DOUBLE PRECISION NOT NULL,
            on_timeout TEXT NOT NULL,
            decision TEXT,
            decided_by TEXT,
            decided_at DOUBLE PRECISION,
            comment TEXT,
            UNIQUE (instance, runbook))""",
        "CREATE INDEX approvals_open ON approvals (timeout_at) WHERE decision IS NULL",
    ),
    5: (
        "CREATE TABLE revoked_sessions (id TEXT PRIMARY KEY, until DOUBLE PRECISION NOT NULL)",
    ),
}

async def migrate(conn: AsyncConnection[Any]) -> int:
    """Create or migrate the schema under the migration lock; the version found before."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        await conn.execute("CREATE TABLE IF NOT EXISTS meta "
                           "(name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        cur = await conn.execute("SELECT value FROM meta WHERE name = 'schema_version'")
        row = await cur.fetchone()
        found = int(row[0]) if row else 0
        if found > SCHEMA_VERSION:
            raise JournalVersionError(
                f"the database has schema version {found}, newer than {SCHEMA_VERSION} that "
                "this version of the responder knows; run the newer version, or start from "
                "an empty database")
        for version in sorted(v for v in STEPS if found < v <= SCHEMA_VERSION):
            for statement in STEPS[version]:
                await conn.execute(statement)
        if found < SCHEMA_VERSION:
            await conn.execute(
                "INSERT INTO meta (name, value) VALUES ('schema_version', %s) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (str(SCHEMA_VERSION),))
        return found
