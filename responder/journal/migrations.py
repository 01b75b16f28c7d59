"""The SQLite journal's schema, as the steps that build it from nothing, one per version.

A journal records its version in ``meta`` (``schema``). Opening applies the steps after
that version in one transaction, so a journal is either migrated whole or left as it was;
a journal of a version newer than this code is refused (it may hold what this code would
misread). A step is never edited once released: a change is a new step.

Version 1 is the schema the first release wrote. Version 2 adds leases (``owner``,
``lease_until``) to the work tables, the delivery id sequence, the shared rate-limit
windows and the indexes retention deletes by; it drops the rendering context from
messages already sent (a pending one keeps it for its fallback). Version 3 adds the
operators' corrections of analyses (``corrections``, keyed by the normalised text's hash).
Version 4 adds the people's controls: pauses (like silences) and approvals. Version 5 adds
the console sessions ended by logging out (``revoked_sessions``, until their cookie expires).
"""

from __future__ import annotations

SCHEMA_VERSION = 5

STEPS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            group_key TEXT NOT NULL,
            envelope BLOB NOT NULL,
            received_at REAL NOT NULL,
            new_receipts BLOB NOT NULL,
            dup_receipts BLOB NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            finished_at REAL)""",
        "CREATE INDEX deliveries_pending ON deliveries (state, id)",
        """CREATE TABLE receipts (
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
            UNIQUE (instance, status))""",
        "CREATE INDEX receipts_recent ON receipts (last_delivery_at)",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            kind TEXT NOT NULL,
            receipt_id INTEGER,
            instance TEXT,
            runbook TEXT,
            action TEXT,
            target TEXT,
            outcome TEXT,
            detail BLOB)""",
        "CREATE INDEX events_receipt ON events (receipt_id)",
        """CREATE TABLE attempts (
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
            UNIQUE (instance, runbook, target, n))""",
        "CREATE INDEX attempts_due ON attempts (state, due_at)",
        """CREATE TABLE breakers (
            key TEXT PRIMARY KEY,
            state BLOB NOT NULL,
            spec BLOB,
            updated_at REAL NOT NULL)""",
        """CREATE TABLE outbox (
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
            sent_at REAL)""",
        "CREATE INDEX outbox_due ON outbox (state, next_at)",
        "CREATE TABLE flags (name TEXT PRIMARY KEY, value BLOB NOT NULL, updated_at REAL NOT NULL)",
    ),
    2: (
        "ALTER TABLE deliveries ADD COLUMN owner TEXT",
        "ALTER TABLE deliveries ADD COLUMN lease_until REAL",
        "ALTER TABLE attempts ADD COLUMN owner TEXT",
        "ALTER TABLE attempts ADD COLUMN lease_until REAL",
        "ALTER TABLE outbox ADD COLUMN owner TEXT",
        "ALTER TABLE outbox ADD COLUMN lease_until REAL",
        "CREATE TABLE sequences (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
        "INSERT INTO sequences (name, value) SELECT 'delivery', COALESCE(MAX(id), 0) "
        "FROM deliveries",
        """CREATE TABLE rates (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL,
            ts REAL NOT NULL)""",
        "CREATE INDEX rates_key ON rates (key, ts)",
        "CREATE INDEX deliveries_done ON deliveries (state, received_at)",
        "CREATE INDEX receipts_done ON receipts (state, last_delivery_at)",
        "CREATE INDEX events_ts ON events (ts)",
        "CREATE INDEX attempts_instance ON attempts (instance, runbook)",
        "CREATE INDEX outbox_done ON outbox (state, created_at)",
        # A running attempt of version 1 has no lease: claimable again at once.
        "UPDATE attempts SET lease_until = 0 WHERE state = 'running'",
        "UPDATE outbox SET message = json_remove(message, '$.context') "
        "WHERE state != 'pending'",
    ),
    3: (
        """CREATE TABLE corrections (
            text_key TEXT PRIMARY KEY,
            category TEXT NOT NULL,
            text TEXT NOT NULL,
            receipt_id INTEGER,
            corrected_by TEXT,
            corrected_at REAL NOT NULL)""",
    ),
    4: (
        """CREATE TABLE pauses (
            id INTEGER PRIMARY KEY,
            matchers BLOB NOT NULL,
            reason TEXT,
            created_by TEXT NOT NULL,
            created_at REAL NOT NULL,
            until REAL,
            lifted_at REAL,
            lifted_by TEXT)""",
        """CREATE TABLE approvals (
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
            UNIQUE (instance, runbook))""",
        "CREATE INDEX approvals_open ON approvals (decision, timeout_at)",
    ),
    5: (
        "CREATE TABLE revoked_sessions (id TEXT PRIMARY KEY, until REAL NOT NULL)",
    ),
}
