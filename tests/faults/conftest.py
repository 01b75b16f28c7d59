"""The fault suite: real ``responder serve`` processes, hurt from outside.

Each test starts the responder (``tests/e2e/procs.py``) against the fakes of
``tests/fakes`` on loopback ports, does to it what production will (kill -9, a full disk,
upstreams that hang or refuse, clients that dawdle, hostile values) and asserts at the
boundaries: HTTP answers, what the fakes recorded, journal rows and the log.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.e2e.procs import Proc, free_port, http, responder_config, wait_for

TOKEN = "fault-suite-token"
T = TypeVar("T")
F = TypeVar("F")


class Responder:
    """One ``responder serve`` process and how to reach it."""

    def __init__(self, tmp: Path, **config: Any) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.config = responder_config(tmp, self.port, TOKEN, **config)
        self.proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *args: str, ready: bool = True) -> Responder:
        exe = str(Path(sys.executable).with_name("responder"))
        self.proc = Proc("responder", [exe, "serve", "-c", str(self.config), *args],
                         self.tmp / "responder.log").start()
        wait_for(lambda: http("GET", self.url + "/-/healthy")[0] == 200, 30,
                 "responder up", (self.proc,))
        if ready:
            wait_for(lambda: http("GET", self.url + "/-/ready")[0] == 200, 30,
                     "responder ready", (self.proc,))
        return self

    def post(self, body: Any, timeout: float = 10.0) -> tuple[int, Any]:
        return http("POST", self.url + "/webhook", body, token=TOKEN, timeout=timeout)

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, Any]:
        return http("GET", self.url + path, token=TOKEN, timeout=timeout)

    def log(self) -> str:
        return self.proc.output() if self.proc else ""

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()


@pytest.fixture
def responder(tmp_path: Path) -> Iterator[list[Responder]]:
    """Responders a test starts; every one is killed at teardown."""
    started: list[Responder] = []
    yield started
    for r in started:
        r.stop()


class Fakes:
    """The fakes of ``tests/fakes`` served from a thread, while the test drives processes."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._started: list[Any] = []

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self, fake: F) -> F:
        self.run(fake.start())
        self._started.append(fake)
        return fake

    def stop(self, fake: Any) -> None:
        self.run(fake.close())

    def close(self) -> None:
        for fake in reversed(self._started):
            self.run(fake.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    served = Fakes()
    yield served
    served.close()


class Load:
    """Webhooks posted from a thread as fast as they are answered; remembers what was acked.

    Each payload carries ``per_post`` alerts with fresh fingerprints; ``acked`` holds the
    workflows of every payload answered 200."""

    def __init__(self, url: str, per_post: int = 5, namespace: str = "ns",
                 before_post: Callable[[list[str]], None] | None = None,
                 interval: float = 0.0) -> None:
        self.url = url
        self.interval = interval
        self.before_post = before_post
        self.per_post = per_post
        self.namespace = namespace
        self.acked: list[str] = []
        self.statuses: dict[int | str, int] = {}
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._n = 0

    def payload(self) -> tuple[dict[str, Any], list[str]]:
        names = [f"wf-{self._n}-{i}" for i in range(self.per_post)]
        self._n += 1
        return {"version": "4", "status": "firing", "groupKey": f"load-{self._n}",
                "receiver": "r", "alerts": [{
                    "status": "firing",
                    "labels": {"alertname": "WorkflowFailed", "namespace": self.namespace,
                               "workflow": name, "severity": "warning"},
                    "annotations": {"description": "dial tcp: connection refused"},
                    "startsAt": "2026-11-28T10:00:00Z",
                    "fingerprint": fingerprint(name)} for name in names]}, names

    def _run(self) -> None:
        while not self._stop.is_set():
            body, names = self.payload()
            if self.before_post is not None:
                self.before_post(names)
            started = time.monotonic()
            try:
                status, _ = http("POST", self.url + "/webhook", body, token=TOKEN, timeout=10)
            except OSError as exc:       # refused while the process is down
                key: int | str = type(exc).__name__
                self.statuses[key] = self.statuses.get(key, 0) + 1
                time.sleep(0.02)
                continue
            self.latencies.append(time.monotonic() - started)
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == 200:
                self.acked.extend(names)
            if self.interval:
                time.sleep(self.interval)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(20)


def fingerprint(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:16]


def instance(name: str) -> str:
    """The journal's key of a ``Load`` alert (fingerprint @ startsAt)."""
    return f"{fingerprint(name)}@2026-11-28T10:00:00+00:00"


def journal_rows(db: Path, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db, timeout=10) as conn:
        return conn.execute(sql, args).fetchall()
