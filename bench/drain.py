"""The pipeline's drain alone: journaled one-alert groups, processed, timed, costed.

Journals ``--groups`` deliveries of ``--alerts`` realistic WorkflowFailed alerts each
(``payloads``) into a fresh SQLite journal, then processes them with the shipped runbooks,
patterns and templates (dry run, three ``log`` channels) until every delivery is processed
and every message sent. Two ways, each on its own fresh journal:

- ``serve``: the real ``responder serve`` (``python -m responder serve`` in a child
  process, whatever processes it starts itself) on the journaled file; the rate counts
  from ``/-/ready`` until the backlog (pending deliveries + unsent messages, read-only
  SQLite queries on the file) is zero, CPU is the process tree's. Nothing is measured
  inside it: this is the honest processing rate.
- ``in-process``: the same ``create_app`` in this process, no HTTP site, instrumented:
  the journal's transactions (SQLite ``COMMIT``s, traced), the template renders, and the
  event loop thread's CPU in each pipeline stage (cheap timers around the stage functions
  of ``STAGES``; a coroutine is charged only for the steps it runs, not for the time it is
  suspended, and a stage called inside another is charged to itself only). A stage whose
  functions do not exist in the tree under test, or were never called in this process, is
  reported as ``null`` ("n/a").

``python bench/drain.py [--groups 2000] [--alerts 1] [--mode both|serve|in-process]
[--profile FILE] [--json]``. Run from another tree's ``bench/`` (a copy of this file), it
measures that tree: it imports ``responder`` from its own parent directory.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import importlib
import inspect
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import micro
import payloads
import yaml
from procs import Proc, free_port, wait_ready

REPO = Path(__file__).resolve().parent.parent

# Stage -> the functions whose (exclusive) CPU is charged to it, as ``module:Qual.name``.
# Absent ones are skipped: the pipeline's code changes under this bench.
STAGES: dict[str, tuple[str, ...]] = {
    "claim deliveries": ("responder.journal.sqlite:SqliteJournal.claim_deliveries",),
    "analysis": ("responder.pipeline:Pipeline._analyze",),
    "decide (match + plan)": ("responder.pipeline:decide",),
    "act (breakers, attempts, dry-run run)": (
        "responder.actor:Actor.on_firing", "responder.actor:Actor.on_resolved",
        "responder.actor:Actor.on_resend", "responder.act.scheduler:Scheduler.run_due"),
    "render + queue notifications": ("responder.outbox:Notifier.notify",
                                     "responder.actor:Actor.notify_escalations"),
    "outbox send + record": ("responder.outbox:Notifier.deliver_many",
                             "responder.outbox:Notifier.send_claimed",
                             "responder.journal.sqlite:SqliteJournal.due_outbox"),
    "finish deliveries (journal)": ("responder.pipeline:Pipeline._finish",),
}


def config_file(d: Path) -> Path:
    """The shipped rules and templates, dry run, ``log`` channels (``micro``'s config) on a
    free loopback port (bound only in ``serve`` mode)."""
    path = micro.config_file(d, str(REPO / "rules/runbooks/*.yaml"),
                             str(REPO / "rules/patterns.yaml"))
    config = yaml.safe_load(path.read_text())
    config["listen"] = f"127.0.0.1:{free_port()}"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


async def journal_groups(runtime: Any, groups: int, alerts: int) -> None:
    from responder.journal.sqlite import SqliteJournal
    from responder.model import decode_group

    journal = SqliteJournal(runtime.config.state_path, synchronous="OFF")
    await journal.open()
    template = payloads.webhook_body(alerts, payloads.now())
    try:
        for start in range(0, groups, 200):
            decoded = [decode_group(payloads.fill(template, 1 << 40 | i).encode())
                       for i in range(start, min(groups, start + 200))]
            await asyncio.gather(*(journal.record_delivery(g, r) for g, r in decoded))
    finally:
        await journal.close()


def backlog(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        (left,) = conn.execute(
            "SELECT (SELECT COUNT(*) FROM deliveries WHERE state = 'pending') + "
            "(SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending'))").fetchone()
    return int(left)


def counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        row = conn.execute(
            "SELECT (SELECT COUNT(*) FROM receipts WHERE state != 'pending'), "
            "(SELECT COUNT(*) FROM outbox WHERE state = 'sent'), "
            "(SELECT COUNT(*) FROM attempts), (SELECT COUNT(*) FROM events)").fetchone()
    return dict(zip(("processed", "sent", "attempts", "events"), map(int, row), strict=True))


class Tally:
    """Transactions (COMMITs traced on every journal connection) and template renders."""

    def __init__(self) -> None:
        self.commits = 0
        self.renders = 0

    def install(self) -> None:
        import jinja2

        real_connect = sqlite3.connect

        def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
            conn = real_connect(*args, **kwargs)
            conn.set_trace_callback(self._statement)
            return conn

        sqlite3.connect = connect  # type: ignore[assignment]
        real_render = jinja2.Template.render

        def render(template: jinja2.Template, *args: Any, **kwargs: Any) -> str:
            self.renders += 1
            return real_render(template, *args, **kwargs)

        jinja2.Template.render = render  # type: ignore[method-assign]

    def _statement(self, sql: str) -> None:
        if sql.lstrip().upper().startswith(("COMMIT", "END")):
            self.commits += 1


class Stages:
    """Exclusive CPU of the calling thread (``time.thread_time``) per stage, per call."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.found: dict[str, list[str]] = {}
        self.missing: list[str] = []
        self._stack: list[list[float]] = []   # [started, CPU of timed callees]

    def install(self, stages: dict[str, tuple[str, ...]]) -> None:
        for stage, targets in stages.items():
            self.cpu[stage], self.calls[stage] = 0.0, 0
            self.found[stage] = []
            for target in targets:
                owner, name = _resolve(target)
                real = inspect.getattr_static(owner, name, None) if owner is not None else None
                if not inspect.isfunction(real):
                    self.missing.append(target)
                    continue
                setattr(owner, name, self._wrap(stage, real))
                self.found[stage].append(target)

    def _enter(self) -> None:
        self._stack.append([time.thread_time(), 0.0])

    def _leave(self, stage: str) -> None:
        started, inner = self._stack.pop()
        spent = time.thread_time() - started
        self.cpu[stage] += spent - inner
        if self._stack:
            self._stack[-1][1] += spent

    def _wrap(self, stage: str, real: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(real):
            @functools.wraps(real)
            async def timed_coroutine(*args: Any, **kwargs: Any) -> Any:
                self.calls[stage] += 1
                return await _Steps(self, stage, real(*args, **kwargs))

            return timed_coroutine

        @functools.wraps(real)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self.calls[stage] += 1
            self._enter()
            try:
                return real(*args, **kwargs)
            finally:
                self._leave(stage)

        return timed

    def per_alert(self, alerts: int) -> dict[str, dict[str, Any]]:
        return {stage: {
            "us_per_alert": round(self.cpu[stage] / alerts * 1e6, 1)
            if self.found[stage] and self.calls[stage] and alerts else None,
            "calls_per_alert": round(self.calls[stage] / max(1, alerts), 2),
            "functions": self.found[stage]} for stage in self.cpu}


class _Steps:
    """Awaits a coroutine step by step, charging each step's CPU to ``stage``."""

    def __init__(self, stages: Stages, stage: str, coro: Any) -> None:
        self.stages, self.stage, self.coro = stages, stage, coro

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, stages = self.coro, self.stages
        value: Any = None
        error: BaseException | None = None
        while True:
            stages._enter()
            try:
                step = coro.send(value) if error is None else coro.throw(error)
            except StopIteration as stop:
                return stop.value
            finally:
                stages._leave(self.stage)
            try:
                value, error = (yield step), None
            except BaseException as exc:   # cancellation: into the coroutine, as await does
                value, error = None, exc


def _resolve(target: str) -> tuple[Any, str]:
    module_name, _, path = target.partition(":")
    try:
        owner: Any = importlib.import_module(module_name)
    except ImportError:
        return None, ""
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent, None)
        if owner is None:
            return None, ""
    return owner, name


async def drain(config: Path, db: Path, within: float,
                profile: cProfile.Profile | None) -> tuple[float, float]:
    """(seconds, process CPU seconds) from the service's start until the backlog is
    zero; loading the configuration is left out."""
    from aiohttp import web

    from responder.app import create_app
    from responder.load import load_runtime

    app = create_app(load_runtime(config))
    runner = web.AppRunner(app)
    started, cpu = time.perf_counter(), time.process_time()
    if profile is not None:
        profile.enable()
    await runner.setup()
    try:
        for _ in range(int(within / 0.05)):   # the journal file is what is watched
            if not backlog(db):
                break
            await asyncio.sleep(0.05)
        return time.perf_counter() - started, time.process_time() - cpu
    finally:
        if profile is not None:
            profile.disable()
        await runner.cleanup()


def in_process(args: argparse.Namespace) -> dict[str, Any]:
    from responder.load import load_runtime

    with tempfile.TemporaryDirectory(prefix="responder-drain-") as tmp:
        d = Path(tmp)
        config = config_file(d)
        asyncio.run(journal_groups(load_runtime(config), args.groups, args.alerts))
        tally = Tally()
        tally.install()
        stages = Stages()
        stages.install(STAGES)
        profile = cProfile.Profile() if args.profile else None
        load = os.getloadavg()[0]
        elapsed, cpu = asyncio.run(drain(config, d / "state.db", args.timeout, profile))
        done = counts(d / "state.db")
        left = backlog(d / "state.db")
    if profile is not None:
        profile.dump_stats(args.profile)
    alerts = max(1, done["processed"])
    return {
        "loadavg_before": load, "drain_s": round(elapsed, 2), "cpu_s": round(cpu, 2),
        "backlog_left": left, **done,
        "alerts_per_s": round(done["processed"] / elapsed, 1),
        "cpu_us_per_alert": round(cpu / alerts * 1e6),
        "transactions_per_alert": round(tally.commits / alerts, 2),
        "renders_per_alert": round(tally.renders / alerts, 2),
        "stages": stages.per_alert(done["processed"]),
        "missing_functions": stages.missing,
    }


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and every live descendant (and what they
    reaped), from ``/proc``."""
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after "pid (comm)": state ppid ... utime(12) stime(13) cutime(14) cstime(15)
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        times[int(entry.name)] = sum(int(x) for x in fields[11:15])
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += times.get(p, 0.0)
        todo.extend(children.get(p, []))
    return total / os.sysconf("SC_CLK_TCK")


def serve(args: argparse.Namespace) -> dict[str, Any]:
    """The journaled groups drained by ``responder serve`` in a child process."""
    from responder.load import load_runtime

    with tempfile.TemporaryDirectory(prefix="responder-drain-") as tmp:
        d = Path(tmp)
        config = config_file(d)
        db = d / "state.db"
        asyncio.run(journal_groups(load_runtime(config), args.groups, args.alerts))
        listen = yaml.safe_load(config.read_text())["listen"]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        log = d / "responder.log"
        load = os.getloadavg()[0]
        with log.open("ab") as handle:
            popen = subprocess.Popen([sys.executable, "-m", "responder", "serve", "-c",
                                      str(config)], cwd=REPO, env=env, stdout=handle,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        proc = Proc("responder", popen, log)
        try:
            launched = time.perf_counter()
            wait_ready(f"http://{listen}/-/ready", proc)
            started = time.perf_counter()
            cpu0, first = tree_cpu_s(proc.pid), counts(db)["processed"]
            left = backlog(db)
            deadline = started + args.timeout
            while left and time.perf_counter() < deadline:
                if not proc.alive():
                    raise RuntimeError(f"responder serve exited:\n{proc.tail()}")
                time.sleep(0.05)
                left = backlog(db)
            elapsed = time.perf_counter() - started
            cpu = tree_cpu_s(proc.pid) - cpu0
        finally:
            try:
                os.killpg(popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            proc.stop()
        done = counts(db)
    drained = done["processed"] - first
    return {
        "loadavg_before": load, "startup_s": round(started - launched, 2),
        "processed_before_ready": first, "drain_s": round(elapsed, 2),
        "cpu_s": round(cpu, 2), "backlog_left": left, **done,
        "alerts_per_s": round(drained / elapsed, 1) if elapsed > 0 else None,
        "cpu_us_per_alert": round(cpu / max(1, drained) * 1e6),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=2000)
    parser.add_argument("--alerts", type=int, default=1, help="alerts per group")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--mode", choices=["both", "serve", "in-process"], default="both")
    parser.add_argument("--profile", type=Path, help="in-process: write a cProfile here")
    parser.add_argument("--json", action="store_true", help="one JSON line on stdout")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    import responder

    result: dict[str, Any] = {"groups": args.groups, "alerts_per_group": args.alerts,
                              "responder": str(Path(responder.__file__).parent)}
    if args.mode in ("both", "serve"):
        result["serve"] = serve(args)
    if args.mode in ("both", "in-process"):
        result["in_process"] = in_process(args)
    if args.json:
        print(json.dumps(result))
        return
    for mode in ("serve", "in_process"):
        for key, value in result.pop(mode, {}).items():
            print(f"{mode} {key}: {value}")


if __name__ == "__main__":
    main()
