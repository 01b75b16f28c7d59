"""Starting on PostgreSQL: ``check`` says whether the database answers, ``serve`` waits for
it with ``/-/ready`` false instead of crashing, replicas starting together create the
schema once, and the DSN's password shows nowhere."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from responder.journal.migrations import SCHEMA_VERSION
from responder.journal.postgres import PostgresJournal, probe
from responder.journal.postgres_schema import STEPS
from tests.e2e.procs import Proc, free_port, http, responder_config, running, wait_for
from tests.pg import PASSWORD, PostgresServer, require_postgres
from tests.replicas.cluster import TOKEN, alert, payload

EXE = str(Path(sys.executable).with_name("responder"))


def pg_config(tmp_path: Path, dsn: str, port: int = 0) -> Path:
    (tmp_path / "pg-dsn").write_text(dsn + "\n")
    return responder_config(tmp_path, port or free_port(), TOKEN,
                            state={"postgres": {"dsn_file": "pg-dsn"}})


def check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, "check", "-c", str(config)], capture_output=True, text=True,
                          timeout=60)


def test_check_says_the_database_is_reachable_without_its_password(
        tmp_path: Path, pg_dsn: str) -> None:
    result = check(pg_config(tmp_path, pg_dsn))
    assert result.returncode == 0, result.stderr
    shown = pg_dsn.replace(f":{PASSWORD}", "")
    assert "state: PostgreSQL 1" in result.stdout
    assert f"at {shown} is reachable, no schema yet (created at start)" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr


def test_check_fails_clearly_when_the_database_does_not_answer(tmp_path: Path) -> None:
    port = free_port()
    dsn = f"postgresql://responder:{PASSWORD}@127.0.0.1:{port}/responder"
    config = pg_config(tmp_path, dsn)
    result = check(config)
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"{config}: state.postgres: cannot reach postgresql://responder@127.0.0.1:{port}/responder: ")
    assert "Connection refused" in result.stderr
    assert "Traceback" not in result.stderr and PASSWORD not in result.stderr


def test_serve_waits_for_a_database_that_is_down_with_ready_false_then_works(
        tmp_path: Path) -> None:
    server = PostgresServer(require_postgres())
    try:
        server.init()
        port = free_port()
        dsn = server.dsn("postgres").replace(f"@127.0.0.1:{server.port}/postgres",
                                             f"@127.0.0.1:{server.port}/responder")
        config = pg_config(tmp_path, dsn, port)
        proc = Proc("responder", [EXE, "serve", "-c", str(config)], tmp_path / "serve.log").start()
        url = f"http://127.0.0.1:{port}"
        with running(proc):
            wait_for(lambda: http("GET", url + "/-/healthy")[0] == 200, 30, "healthy", (proc,))
            assert http("GET", url + "/-/ready")[0] == 503
            status, body = http("POST", url + "/webhook", payload(alert("etl-db-down", "x")),
                                token=TOKEN, timeout=15)
            assert status == 503, body
            assert proc.alive()
            server.start()
            server.psql("CREATE ROLE responder LOGIN PASSWORD '" + PASSWORD + "'")
            server.psql("CREATE DATABASE responder OWNER responder")
            wait_for(lambda: http("GET", url + "/-/ready")[0] == 200, 30, "ready once the "
                     "database answers", (proc,))
            status, body = http("POST", url + "/webhook", payload(alert("etl-db-up", "x")),
                                token=TOKEN)
            assert (status, body["accepted"]) == (200, 1)
            _, metrics = http("GET", url + "/metrics")
        log = proc.output()
        assert "cannot reach postgresql://responder@127.0.0.1:" in log
        assert "/-/ready stays false until it answers" in log
        assert "Traceback" not in log
        assert PASSWORD not in log and PASSWORD not in metrics
    finally:
        server.cleanup()


async def test_replicas_starting_together_create_the_schema_once(pg_dsn: str) -> None:
    journals = [PostgresJournal(pg_dsn, owner=f"r{i}", pool_size=2) for i in range(5)]
    try:
        await asyncio.gather(*(j.open() for j in journals))
        assert all(j.healthy for j in journals)
        assert f"schema version {SCHEMA_VERSION}" in await probe(pg_dsn)
    finally:
        for j in journals:
            await j.close()


def test_postgres_steps_reach_the_journals_schema_version() -> None:
    # A new SQLite schema version needs its PostgreSQL step (even an empty one) too.
    assert max(STEPS) == SCHEMA_VERSION
