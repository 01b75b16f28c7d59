"""Real processes for end-to-end tests: the responder, Prometheus and Alertmanager.

Each runs on a free loopback port with its own data directory under the test's tmp_path,
its output in a log file that a failing assertion prints, and is killed at teardown.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    def __init__(self, name: str, argv: list[str], log: Path, cwd: Path | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log = log
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        handle = self.log.open("ab")
        self.popen = subprocess.Popen(self.argv, stdout=handle, stderr=subprocess.STDOUT,
                                      cwd=self.cwd, start_new_session=True)
        handle.close()
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


def http(method: str, url: str, body: Any = None, token: str | None = None,
         timeout: float = 5.0) -> tuple[int, Any]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        status = exc.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def wait_for(check: Callable[[], Any], timeout: float, what: str,
             procs: tuple[Proc, ...] = ()) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, urllib.error.URLError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.2)
    logs = "\n".join(f"--- {p.name} ---\n{p.output()[-4000:]}" for p in procs)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}\n{logs}")


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def responder_config(tmp: Path, port: int, token: str, **extra: Any) -> Path:
    (tmp / "token").write_text(token)
    config = {
        "listen": f"127.0.0.1:{port}",
        "auth": {"bearer_token_file": "token"},
        "state": {"path": "state.db"},
        "rules": [str(REPO / "rules/runbooks/*.yaml")],
        "patterns": [str(REPO / "rules/patterns.yaml")],
        "templates": str(REPO / "templates"),
        "channels": {"console": {"type": "log"}, "oncall": {"type": "log"},
                     "pager": {"type": "log"}},
        **extra,
    }
    return write_yaml(tmp / "responder.yaml", config)


def start_responder(tmp: Path, config: Path, port: int) -> Proc:
    exe = str(Path(sys.executable).with_name("responder"))
    proc = Proc("responder", [exe, "serve", "-c", str(config)], tmp / "responder.log").start()
    wait_for(lambda: http("GET", f"http://127.0.0.1:{port}/-/ready")[0] == 200, 30,
             "responder ready", (proc,))
    return proc


def start_alertmanager(binary: str, tmp: Path, config: dict[str, Any],
                       cluster: list[str] | None = None) -> tuple[Proc, int]:
    """``cluster``: the ``--cluster.*`` flags of an HA peer; none: HA mode off."""
    port = free_port()
    cfg = write_yaml(tmp / "alertmanager.yml", config)
    data = tmp / "am-data"
    data.mkdir(exist_ok=True)
    proc = Proc("alertmanager", [
        binary, f"--config.file={cfg}", f"--storage.path={data}",
        f"--web.listen-address=127.0.0.1:{port}",
        *(cluster if cluster is not None else ["--cluster.listen-address="]),
        "--log.level=debug"], tmp / "alertmanager.log").start()
    wait_for(lambda: http("GET", f"http://127.0.0.1:{port}/-/ready")[0] == 200, 30,
             "alertmanager ready", (proc,))
    return proc, port


def start_prometheus(binary: str, tmp: Path, config: dict[str, Any]) -> tuple[Proc, int]:
    port = free_port()
    cfg = write_yaml(tmp / "prometheus.yml", config)
    data = tmp / "prom-data"
    data.mkdir(exist_ok=True)
    proc = Proc("prometheus", [
        binary, f"--config.file={cfg}", f"--storage.tsdb.path={data}",
        f"--web.listen-address=127.0.0.1:{port}", "--rules.alert.resend-delay=1s",
        "--web.enable-lifecycle"], tmp / "prometheus.log").start()
    wait_for(lambda: http("GET", f"http://127.0.0.1:{port}/-/ready")[0] == 200, 60,
             "prometheus ready", (proc,))
    return proc, port


@contextlib.contextmanager
def running(*procs: Proc) -> Iterator[None]:
    try:
        yield
    finally:
        for p in procs:
            p.kill(signal.SIGTERM)


def env_ci() -> bool:
    return os.environ.get("CI") == "true"
