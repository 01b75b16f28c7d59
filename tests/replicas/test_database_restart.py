"""The database restarted under load: 503 while it is down, never a 200 for an alert it does
not hold, and afterwards every acknowledged alert processed exactly once."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.e2e.procs import http
from tests.e2e.test_shipped_loop import Background
from tests.pg import PASSWORD, ROLE, PostgresServer, require_postgres
from tests.replicas.cluster import TOKEN, Cluster, cluster_of

pytestmark = pytest.mark.e2e


@pytest.fixture
def server() -> Iterator[PostgresServer]:
    server = PostgresServer(require_postgres())
    try:
        server.init()
        server.start()
        server.psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")
        server.psql(f"CREATE DATABASE restart OWNER {ROLE}")
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def pair(tmp_path: Path, server: PostgresServer) -> Iterator[Cluster]:
    background = Background()
    try:
        # The default leases (minutes): work caught by the restart must come back without
        # waiting for them to run out.
        yield from cluster_of(tmp_path, server.dsn("restart"), background, n=2, lease=None)
    finally:
        background.close()


def one_alert(n: int) -> dict[str, object]:
    # An alert no runbook acts on: analysed, recorded, logged; nothing else.
    return {"version": "4", "status": "firing", "groupKey": f"restart-{n}", "receiver": "r",
            "alerts": [{"status": "firing",
                        "labels": {"alertname": "DiskAlmostFull", "instance": f"node-{n}"},
                        "annotations": {"description": "no space left on device"},
                        "startsAt": "2026-11-28T10:00:00Z", "fingerprint": f"{n:016x}"}]}


class Load:
    """Posts one new alert after another, to each replica in turn, from a few threads."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.answers: dict[int, int] = {}
        self._next = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = concurrent.futures.ThreadPoolExecutor(4)
        self._futures = [self._pool.submit(self._run) for _ in range(4)]

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                n, self._next = self._next, self._next + 1
            replica = self.cluster.replicas[n % len(self.cluster.replicas)]
            try:
                status, _ = http("POST", replica.url + "/webhook", one_alert(n), token=TOKEN,
                                 timeout=15)
            except OSError:
                status = 0
            with self._lock:
                self.answers[n] = status
            time.sleep(0.02)

    def statuses(self) -> set[int]:
        with self._lock:
            return set(self.answers.values())

    def stop(self) -> dict[int, int]:
        self._stop.set()
        for future in self._futures:
            future.result(timeout=30)
        self._pool.shutdown()
        return dict(self.answers)


def stored(server: PostgresServer) -> dict[str, tuple[str, int]]:
    """fingerprint -> (receipt state, how many times it was processed)."""
    with psycopg.connect(server.dsn("restart")) as conn:
        rows = conn.execute(
            "SELECT r.fingerprint, r.state, (SELECT COUNT(*) FROM events e WHERE "
            "e.receipt_id = r.id AND e.kind = 'alert') FROM receipts r").fetchall()
    return {fp: (state, count) for fp, state, count in rows}


def test_webhooks_answer_503_while_the_database_is_down_and_everything_acknowledged_is_processed_once(
        pair: Cluster, server: PostgresServer) -> None:
    load = Load(pair)
    try:
        pair.wait(lambda: len([s for s in load.answers.values() if s == 200]) >= 20,
                  "some alerts acknowledged before the restart")
        server.stop("fast")
        down_from = len(load.answers)
        pair.wait(lambda: len([s for n, s in list(load.answers.items())
                               if n > down_from and s == 503]) >= 6,
                  "webhooks answered 503 while the database is down")
        server.start()
        up_from = max(load.answers)
        pair.wait(lambda: len([s for n, s in list(load.answers.items())
                               if n > up_from and s == 200]) >= 20,
                  "alerts acknowledged again after the restart")
    finally:
        answers = load.stop()
    assert set(answers.values()) <= {200, 503}, answers
    acknowledged = {f"{n:016x}" for n, status in answers.items() if status == 200}
    refused = {f"{n:016x}" for n, status in answers.items() if status == 503}
    assert len(refused) >= 6

    # Never a 200 for an alert the database does not hold.
    assert acknowledged <= set(stored(server))
    # Alertmanager sends the refused ones again: now they are taken.
    for n, status in answers.items():
        if status == 503:
            replica = pair.replicas[n % 2]
            assert http("POST", replica.url + "/webhook", one_alert(n), token=TOKEN)[0] == 200

    def all_done() -> bool:
        rows = stored(server)
        return all(rows.get(fp, ("", 0))[0] == "done" for fp in acknowledged | refused)

    pair.wait(all_done, "every acknowledged alert processed", timeout=60)
    rows = stored(server)
    assert {rows[fp][1] for fp in acknowledged | refused} == {1}, "an alert processed twice"
    for replica in pair.replicas:
        assert replica.proc is not None and replica.proc.alive()
        assert http("GET", replica.url + "/-/ready")[0] == 200
    pair.no_secret_in_logs()
