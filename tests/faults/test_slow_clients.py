"""Slow clients are cut off by the reading deadlines, idle connections are bounded, and a
client that goes away mid-body is one debug line; meanwhile webhooks are answered."""

from __future__ import annotations

import json
import socket
import time
from contextlib import ExitStack
from pathlib import Path

from tests.faults.conftest import TOKEN, Responder

LIMITS = {"header_timeout": "1s", "body_timeout": "1s", "idle_timeout": "3s",
          "max_idle_connections": 8}
ALERT = {"version": "4", "status": "firing", "groupKey": "slow", "receiver": "r",
         "alerts": [{"status": "firing", "labels": {"alertname": "SlowClientProbe"},
                     "startsAt": "2026-11-28T10:00:00Z", "fingerprint": "00000000000000aa"}]}


def connect(port: int, stack: ExitStack) -> socket.socket:
    s = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5))
    s.settimeout(0.05)
    return s


def closed(s: socket.socket) -> bool:
    """Whether the server closed ``s`` (EOF or reset); an answer counts as closed when the
    server also ended the connection."""
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except (TimeoutError, BlockingIOError):
        return False
    except OSError:
        return True


def trickle(socks: list[socket.socket], data: bytes) -> None:
    for s in socks:
        try:
            s.send(data)
        except OSError:
            pass


def open_count(socks: list[socket.socket]) -> int:
    return sum(1 for s in socks if not closed(s))


def headers(length: int) -> bytes:
    return (f"POST /webhook HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n").encode()


def test_slow_headers_slow_bodies_and_idle_connections_are_cut_off_while_webhooks_flow(
        tmp_path: Path, responder: list[Responder]) -> None:
    r = Responder(tmp_path, limits=LIMITS)
    responder.append(r.start("--log-level", "debug"))
    body = json.dumps(ALERT).encode()
    with ExitStack() as stack:
        slow_headers = [connect(r.port, stack) for _ in range(60)]
        slow_bodies = [connect(r.port, stack) for _ in range(10)]
        trickle(slow_headers, b"POST /webhook HTTP/1.1\r\nHost: x\r\n")
        trickle(slow_bodies, headers(len(body)) + body[:5])
        started = time.monotonic()
        answered = []
        while time.monotonic() - started < 2.5:
            trickle(slow_headers, b"X")           # a byte at a time, never the blank line
            trickle(slow_bodies, b" ")            # never the whole body
            answered.append(r.post(ALERT, timeout=5)[0])
            time.sleep(0.1)
        assert set(answered) == {200}, answered
        assert open_count(slow_headers) == 0
        assert open_count(slow_bodies) == 0

        # Keep-alive connections that made one request and went quiet: at most 8 stay.
        idle = [connect(r.port, stack) for _ in range(20)]
        for s in idle:
            s.send(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        assert open_count(idle) <= LIMITS["max_idle_connections"]
        time.sleep(3.5)
        assert open_count(idle) == 0

        # A client that goes away in the middle of its body.
        gone = connect(r.port, stack)
        gone.send(headers(len(body)) + body[: len(body) // 2])
        time.sleep(0.2)
        gone.close()
        time.sleep(0.3)
    assert r.post(ALERT)[0] == 200
    log = r.log()
    assert "Traceback" not in log
    assert "request headers not received within 1s" in log
    assert "request body not received within 1s" in log
    assert "went away during POST /webhook" in log
    assert not [line for line in log.splitlines()
                if " error " in line or " critical " in line], log[-3000:]
