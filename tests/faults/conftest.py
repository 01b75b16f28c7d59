"""The fault suite: real ``responder serve`` processes, hurt from outside.

Each test starts the responder (``tests/e2e/procs.py``) against the fakes of
``tests/fakes`` on loopback ports, does to it what production will (kill -9, a full disk,
upstreams that hang or refuse, clients that dawdle, hostile values) and asserts at the
boundaries: HTTP answers, what the fakes recorded, journal rows and the log.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.procs import Proc, free_port, http, responder_config, wait_for

TOKEN = "fault-suite-token"


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
