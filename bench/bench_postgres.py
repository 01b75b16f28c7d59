"""The ``postgres`` phase of ``make bench``: one replica on SQLite against one and three
replicas on one PostgreSQL database, same payloads, same run (SPEC §12, issue targets).

The server is Debian's PostgreSQL started as in the tests (``tests/pg.py``) but durable
(``fsync``, ``synchronous_commit`` and ``full_page_writes`` on, as a real one is), with
``pg_stat_statements`` loaded so the run counts the statements and transactions each
alert costs. For every setup: the same number of new alerts (50 per request) is sent
closed-loop, split evenly over the replicas; *ingest* is alerts acknowledged per second,
*processed* alerts analysed, matched and planned per second from the first request until
the backlog is empty. Then an open-loop 1,000 alerts/s (1 per request, one generator
sending to each replica in turn) gives the webhook latency p99 of every setup.
"""

from __future__ import annotations

import concurrent.futures
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.pg import PASSWORD, ROLE, PostgresServer, require_postgres

DURABLE = ("\nfsync = on\nsynchronous_commit = on\nfull_page_writes = on\n"
           "shared_preload_libraries = 'pg_stat_statements'\n")
SETUPS = (("sqlite", 1), ("postgres", 1), ("postgres", 3))


def _pg_state(dsn: str) -> tuple[int, int]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT (SELECT COUNT(*) FROM receipts WHERE state <> 'pending'), "
            "(SELECT COUNT(*) FROM deliveries WHERE state = 'pending') + "
            "(SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending'))").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _sqlite_state(db: Path) -> tuple[int, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        processed, backlog = conn.execute(
            "SELECT (SELECT COUNT(*) FROM receipts WHERE state != 'pending'), "
            "(SELECT COUNT(*) FROM deliveries WHERE state = 'pending') + "
            "(SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending'))").fetchone()
    return int(processed), int(backlog)


def _counts(server: PostgresServer, database: str) -> tuple[int, int]:
    """(statements, transactions) the database has run since the last reset."""
    with psycopg.connect(server.admin_dsn(database), autocommit=True) as conn:
        calls = conn.execute("SELECT COALESCE(SUM(calls), 0) FROM pg_stat_statements s "
                             "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = %s",
                             (database,)).fetchone()
        xacts = conn.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database "
                             "WHERE datname = %s", (database,)).fetchone()
    return int(calls[0] if calls else 0), int(xacts[0] if xacts else 0)


def _reset(server: PostgresServer, database: str) -> None:
    with psycopg.connect(server.admin_dsn(database), autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
        conn.execute("SELECT pg_stat_reset()")


def postgres_phase(run: Any) -> list[dict[str, Any]]:
    server = PostgresServer(require_postgres())
    rows: list[dict[str, Any]] = []
    try:
        server.init(DURABLE)
        server.start()
        server.psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")
        server.psql("CREATE EXTENSION pg_stat_statements")
        for index, (backend, replicas) in enumerate(SETUPS):
            database = f"bench{index}"
            state: dict[str, Any] | None = None
            if backend == "postgres":
                server.psql(f"CREATE DATABASE {database} OWNER {ROLE}")
                server.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", database)
                state = {"postgres": {"dsn": server.dsn(database)}}
            rows.append(_setup(run, server, backend, replicas, database, state))
    finally:
        server.cleanup()
    return rows


def _setup(run: Any, server: PostgresServer, backend: str, replicas: int, database: str,
           state: dict[str, Any] | None) -> dict[str, Any]:
    n = 50
    alerts = run.args.pg_alerts
    started = [run.start_responder(state=state) for _ in range(replicas)]
    db = started[0][3]
    measure = (lambda: _pg_state(server.dsn(database))) if backend == "postgres" else \
        (lambda: _sqlite_state(db))
    if backend == "postgres":
        _reset(server, database)
    per = alerts // n // replicas
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(replicas) as pool:
        ingests = list(pool.map(
            lambda s: run.loadgen("count", s[1], run.bodies[("webhook", n)], n, s[2],
                                  "--requests", str(per), "--connections", str(16 // replicas)),
            started))
    ingest_s = time.monotonic() - t0
    done, left = measure()
    while left and time.monotonic() - t0 < run.args.drain_timeout * 4:
        time.sleep(0.5)
        done, left = measure()
    total_s = time.monotonic() - t0
    row: dict[str, Any] = {
        "backend": backend, "replicas": replicas, "alerts": per * n * replicas,
        "ingest_alerts_per_s": round(per * n * replicas / ingest_s, 1),
        "ingest_p99_ms": max(i["latency"].get("p99_ms", 0) for i in ingests),
        "processed": done, "backlog_left": left,
        "processed_alerts_per_s": round(done / total_s, 1),
        "statuses": [i["statuses"] for i in ingests],
    }
    if backend == "postgres":
        statements, transactions = _counts(server, database)
        row["statements_per_alert"] = round(statements / max(1, done), 2)
        row["transactions_per_alert"] = round(transactions / max(1, done), 2)
    if run.args.paced_alerts:
        # One generator, each request to the next replica in turn, as Alertmanager's peers
        # behind one Service would spread them.
        extra = [arg for _, url, auth, _ in started[1:] for arg in ("--url", url, "--auth", auth)]
        paced = run.loadgen("paced", started[0][1], run.bodies[("webhook", 1)], 1, started[0][2],
                            "--rate", str(run.args.paced_alerts),
                            "--duration", str(run.args.duration), *extra)
        row["paced"] = {
            "alerts_per_s": paced["achieved_alerts_per_s"],
            "p99_ms": paced["latency_from_due"].get("p99_ms", 0),
            "p50_ms": paced["latency_from_due"].get("p50_ms", 0),
            "statuses": paced["statuses"],
        }
    for proc, *_ in started:
        run.procs.stop(proc)
    print(f"  {backend:8s} x{replicas}: ingest {row['ingest_alerts_per_s']:.0f} alerts/s, "
          f"processed {row['processed_alerts_per_s']:.0f} alerts/s"
          + (f", {row['statements_per_alert']} statements/alert" if backend == "postgres" else "")
          + (f", p99 {row['paced']['p99_ms']} ms at {row['paced']['alerts_per_s']} alerts/s"
             if "paced" in row else ""), flush=True)
    return row
