"""The ``postgres`` phase of ``make bench``: one replica on SQLite against one and three
replicas on one PostgreSQL database, same payloads, same run (SPEC §12, issue 17).

The server is Debian's PostgreSQL started as in the tests (``tests/pg.py``) but durable
(``fsync``, ``synchronous_commit`` and ``full_page_writes`` on, as a real one is), with
``pg_stat_statements`` loaded so the run counts the statements and transactions each
alert costs. Every measurement of a setup starts its replicas on fresh state (a new
database, or a new SQLite file), so none inherits another's backlog:

- *1 alert/request*: ``--pg-alerts / 3`` one-alert webhooks, closed loop (16 connections
  split over the replicas): ingest in alerts/s, then *processed*, alerts analysed,
  matched and planned per second from the first request until the backlog is empty, and
  the statements and transactions the database ran per alert meanwhile (the responder's
  role only: the probes of this script run as another role and are left out), and the
  CPU the replicas and the server used per alert while the webhooks came in and until
  every alert was processed (on a shared machine a rate says little; CPU time does);
- *50 alerts/request*: ``--pg-alerts`` new alerts the same way, ingest only;
- *paced*: open loop at ``--paced-alerts`` alerts/s for up to 6 s, once with 1 alert and
  once with 50 alerts per request (one generator, each request to the next replica in
  turn, as Alertmanager's peers behind one Service would spread them): the webhook p99
  from each request's due time, and the backlog (deliveries not processed plus messages
  not sent) the moment the load stops, before any drain.
"""

from __future__ import annotations

import concurrent.futures
import functools
import itertools
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.pg import PASSWORD, ROLE, PostgresServer, require_postgres

DURABLE = ("\nfsync = on\nsynchronous_commit = on\nfull_page_writes = on\n"
           "shared_preload_libraries = 'pg_stat_statements'\n")
SETUPS = (("sqlite", 1), ("postgres", 1), ("postgres", 3))
CONNECTIONS = 16
PACED_SECONDS = 6.0
DRAIN_SECONDS = 90.0

_STATE = ("SELECT (SELECT COUNT(*) FROM receipts WHERE state <> 'pending'), "
          "(SELECT COUNT(*) FROM deliveries WHERE state = 'pending') + "
          "(SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending'))")


class Store:
    """One fresh journal for one measurement: where the replicas keep it, how to read its
    (processed, backlog), and for PostgreSQL what the responder's role ran on it."""

    def __init__(self, server: PostgresServer | None, database: str) -> None:
        self.server = server
        self.database = database
        self.sqlite: Path | None = None
        self.probes = 0
        if server is not None:
            server.psql(f"CREATE DATABASE {database} OWNER {ROLE}")
            server.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", database)

    @property
    def state(self) -> dict[str, Any] | None:
        if self.server is None:
            return None
        return {"postgres": {"dsn": self.server.dsn(self.database)}}

    def measure(self) -> tuple[int, int]:
        if self.server is None:
            assert self.sqlite is not None
            with sqlite3.connect(f"file:{self.sqlite}?mode=ro", uri=True, timeout=10) as db:
                processed, backlog = db.execute(_STATE).fetchone()
            return int(processed), int(backlog)
        self.probes += 1
        with psycopg.connect(self.server.admin_dsn(self.database), autocommit=True) as conn:
            row = conn.execute(_STATE).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    def reset(self) -> None:
        if self.server is not None:
            with psycopg.connect(self.server.admin_dsn(self.database), autocommit=True) as conn:
                conn.execute("SELECT pg_stat_statements_reset()")
                conn.execute("SELECT pg_stat_reset()")
            self.probes = 0

    def counts(self) -> tuple[int, int]:
        """(statements, transactions) of the responder's role since ``reset``; read after
        its replicas stopped, when their sessions have reported every transaction."""
        assert self.server is not None
        with psycopg.connect(self.server.admin_dsn(self.database), autocommit=True) as conn:
            calls = conn.execute(
                "SELECT COALESCE(SUM(calls), 0) FROM pg_stat_statements s JOIN pg_database d "
                "ON d.oid = s.dbid JOIN pg_roles r ON r.oid = s.userid WHERE d.datname = %s "
                "AND r.rolname = %s", (self.database, ROLE)).fetchone()
            xacts = conn.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database "
                                 "WHERE datname = %s", (self.database,)).fetchone()
        # Each probe was one transaction of its own (autocommit).
        return (int(calls[0] if calls else 0),
                int(xacts[0] if xacts else 0) - self.probes)


def postgres_phase(run: Any) -> list[dict[str, Any]]:
    server = PostgresServer(require_postgres())
    rows: list[dict[str, Any]] = []
    try:
        server.init(DURABLE)
        server.start()
        server.psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")
        server.psql("CREATE EXTENSION pg_stat_statements")
        names = (f"bench{n}" for n in itertools.count())
        for backend, replicas in SETUPS:
            on = server if backend == "postgres" else None
            rows.append(_setup(run, backend, replicas, functools.partial(_fresh, on, names)))
    finally:
        server.cleanup()
    return rows


def _cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes have used so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _server_pids(server: PostgresServer | None) -> list[int]:
    """The postmaster of ``server`` and its children (backends, WAL writer, ...)."""
    if server is None:
        return []
    try:
        postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return []
    pids = [postmaster]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                pids.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return pids


class Cpu:
    """CPU seconds of the replicas and of the database server between ``start`` and now:
    what a rate cannot say on a machine shared with other work."""

    def __init__(self, started: list[Any], server: PostgresServer | None) -> None:
        self.replicas = [s[0].pid for s in started]
        self.server = server
        self.base = self.now()

    def now(self) -> tuple[float, float]:
        return _cpu(self.replicas), _cpu(_server_pids(self.server))

    def per_alert(self, alerts: int) -> dict[str, float]:
        replicas, server = self.now()
        return {"responder_ms": round((replicas - self.base[0]) * 1000 / max(1, alerts), 3),
                "server_ms": round((server - self.base[1]) * 1000 / max(1, alerts), 3)}


def _fresh(server: PostgresServer | None, names: Iterator[str]) -> Store:
    return Store(server, next(names))


def _start(run: Any, store: Store, replicas: int) -> list[Any]:
    started = [run.start_responder(state=store.state) for _ in range(replicas)]
    store.sqlite = started[0][3]
    return started


def _stop(run: Any, started: list[Any]) -> None:
    with concurrent.futures.ThreadPoolExecutor(len(started)) as pool:
        list(pool.map(lambda s: run.procs.stop(s[0]), started))


def _closed_loop(run: Any, started: list[Any], n: int, alerts: int) -> tuple[float, list[Any]]:
    """``alerts`` new alerts, ``n`` per request, split over the replicas; (seconds, results)."""
    per = max(1, alerts // n // len(started))
    with concurrent.futures.ThreadPoolExecutor(len(started)) as pool:
        results = list(pool.map(
            lambda s: run.loadgen("count", s[1], run.bodies[("webhook", n)], n, s[2],
                                  "--requests", str(per), "--connections",
                                  str(max(1, CONNECTIONS // len(started)))),
            started))
    # The generators' own clocks (they start together): not their interpreters' start-up.
    return max(float(r["elapsed_s"]) for r in results), results


def _setup(run: Any, backend: str, replicas: int,
           fresh: Callable[[], Store]) -> dict[str, Any]:
    alerts = run.args.pg_alerts
    row: dict[str, Any] = {"backend": backend, "replicas": replicas}

    # One alert per request: ingest, then until processed, with what it cost the database.
    store = fresh()
    started = _start(run, store, replicas)
    store.reset()
    t0 = time.monotonic()
    cpu = Cpu(started, store.server)
    ingest_s, ingests = _closed_loop(run, started, 1, alerts // 3)
    sent = sum(i["requests"] for i in ingests)
    ingest_cpu = cpu.per_alert(sent)
    done, left = store.measure()
    while left and time.monotonic() - t0 < DRAIN_SECONDS:
        time.sleep(0.25)
        done, left = store.measure()
    total_s = time.monotonic() - t0
    processed_cpu = cpu.per_alert(done)
    _stop(run, started)
    row |= {
        "alerts": sent,
        "ingest_1_alerts_per_s": round(sent / ingest_s, 1),
        "ingest_1_p99_ms": max(i["latency"].get("p99_ms", 0) for i in ingests),
        "processed": done, "backlog_left": left,
        "processed_alerts_per_s": round(done / total_s, 1),
        "statuses_1": [i["statuses"] for i in ingests],
        # CPU per alert while the webhooks came in (the pipeline ran meanwhile too), and
        # over the whole run until every alert was processed.
        "cpu_ingest_1": ingest_cpu, "cpu_processed": processed_cpu,
    }
    if backend == "postgres":
        statements, transactions = store.counts()
        row["statements_per_alert"] = round(statements / max(1, done), 2)
        row["transactions_per_alert"] = round(transactions / max(1, done), 2)

    # Fifty alerts per request: ingest only.
    store = fresh()
    started = _start(run, store, replicas)
    cpu = Cpu(started, store.server)
    ingest_s, ingests = _closed_loop(run, started, 50, alerts)
    sent = sum(i["requests"] for i in ingests) * 50
    row["cpu_ingest_50"] = cpu.per_alert(sent)
    _stop(run, started)
    row |= {
        "alerts_50": sent,
        "ingest_alerts_per_s": round(sent / ingest_s, 1),
        "ingest_p99_ms": max(i["latency"].get("p99_ms", 0) for i in ingests),
        "statuses": [i["statuses"] for i in ingests],
    }

    if run.args.paced_alerts:
        for n, key in ((1, "paced"), (50, "paced_50")):
            store = fresh()
            started = _start(run, store, replicas)
            extra = [a for _, url, auth, _ in started[1:] for a in ("--url", url, "--auth", auth)]
            paced = run.loadgen("paced", started[0][1], run.bodies[("webhook", n)], n,
                                started[0][2], "--rate", str(run.args.paced_alerts / n),
                                "--duration", str(min(run.args.duration, PACED_SECONDS)),
                                *extra)
            _, backlog = store.measure()
            _stop(run, started)
            row[key] = {
                "alerts_per_s": paced["achieved_alerts_per_s"],
                "p99_ms": paced["latency_from_due"].get("p99_ms", 0),
                "p50_ms": paced["latency_from_due"].get("p50_ms", 0),
                "backlog_at_end": backlog,
                "statuses": paced["statuses"],
            }
    print(f"  {backend:8s} x{replicas}: ingest {row['ingest_1_alerts_per_s']:.0f} alerts/s at "
          f"1/request, {row['ingest_alerts_per_s']:.0f} at 50/request, processed "
          f"{row['processed_alerts_per_s']:.0f} alerts/s"
          + (f", {row['statements_per_alert']} statements and "
             f"{row['transactions_per_alert']} transactions/alert"
             if backend == "postgres" else "")
          + f", CPU ms/alert (responder + server) {row['cpu_ingest_1']} at 1/request, "
          f"{row['cpu_processed']} processed"
          + "".join(f", p99 {row[k]['p99_ms']} ms at {row[k]['alerts_per_s']:.0f} alerts/s "
                    f"({n}/request, backlog {row[k]['backlog_at_end']})"
                    for k, n in (("paced", 1), ("paced_50", 50)) if k in row), flush=True)
    return row
