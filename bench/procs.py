"""Processes the benchmark starts and always tears down: servers, load generators, probes.

Every child runs in its own session on 127.0.0.1, logs to a file in the run's work dir, and
is registered with one ``Procs`` that kills what is still running when the run ends,
failure or not.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    def __init__(self, name: str, popen: subprocess.Popen[bytes], log: Path) -> None:
        self.name = name
        self.popen = popen
        self.log = log

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL the whole process group if it does not exit in time."""
        if not self.alive():
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait()


class Procs:
    """Starts children and stops every one still running on exit."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.running: list[Proc] = []

    def start(self, name: str, argv: list[str], *, cwd: Path | None = None,
              log: Path | None = None) -> Proc:
        log = log or self.workdir / f"{name}.log"
        with log.open("ab") as handle:
            popen = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, cwd=cwd,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        proc = Proc(name, popen, log)
        self.running.append(proc)
        return proc

    def stop(self, proc: Proc) -> None:
        proc.stop()
        if proc in self.running:
            self.running.remove(proc)

    def __enter__(self) -> Procs:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for proc in reversed(self.running):
            proc.stop(timeout=5.0)
        self.running.clear()


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until(check: Callable[[], bool], timeout: float, what: str, proc: Proc) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}) before {what}:\n"
                               f"{proc.tail()}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}:\n{proc.tail()}")


def wait_ready(url: str, proc: Proc, timeout: float = 60.0) -> None:
    wait_until(lambda: http_get(url, timeout=2.0)[0] == 200, timeout, f"{proc.name} ready", proc)


def thread_cpu_s(pid: int) -> dict[str, float]:
    """User + system CPU seconds of a process so far: its main thread (the event loop's,
    for the responder) and its other threads together, from ``/proc/<pid>/task``."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {"main": 0.0, "other": 0.0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:   # the thread ended meanwhile
            continue
        out["main" if task.name == str(pid) else "other"] += (int(fields[11])
                                                                + int(fields[12])) / tick
    return out


def memory_mb(pid: int) -> dict[str, float]:
    """Peak (VmHWM) and current (VmRSS) resident memory of a process, in MB."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out
