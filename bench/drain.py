"""The pipeline's drain alone: journaled one-alert groups, processed in process, timed.

Journals ``--groups`` deliveries of ``--alerts`` realistic WorkflowFailed alerts each
(``payloads``) into a fresh SQLite journal, then starts the service in process (the same
``create_app`` as ``responder serve``: pipeline, actor, outbox, dry run, three ``log``
channels, the shipped runbooks, patterns and templates; no HTTP site, so nothing competes
with the drain) and times until every delivery is processed and every message sent.
Counts the journal's transactions (SQLite's ``COMMIT`` statements, traced) and the
template renders per alert.

``python bench/drain.py [--groups 2000] [--alerts 1] [--profile FILE] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import micro
import payloads

REPO = Path(__file__).resolve().parent.parent


def config_file(d: Path) -> Path:
    """The shipped rules and templates, dry run, ``log`` channels (``micro``'s config; its
    listen port is never bound here)."""
    return micro.config_file(d, str(REPO / "rules/runbooks/*.yaml"),
                             str(REPO / "rules/patterns.yaml"))


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


async def drain(config: Path, db: Path, within: float,
                profile: cProfile.Profile | None) -> float:
    from aiohttp import web

    from responder.app import create_app
    from responder.load import load_runtime

    app = create_app(load_runtime(config))
    runner = web.AppRunner(app)
    started = time.perf_counter()
    if profile is not None:
        profile.enable()
    await runner.setup()
    try:
        for _ in range(int(within / 0.05)):   # the journal file is what is watched
            if not backlog(db):
                break
            await asyncio.sleep(0.05)
        return time.perf_counter() - started
    finally:
        if profile is not None:
            profile.disable()
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=2000)
    parser.add_argument("--alerts", type=int, default=1, help="alerts per group")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--profile", type=Path, help="write a cProfile of the drain here")
    parser.add_argument("--json", action="store_true", help="one JSON line on stdout")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from responder.load import load_runtime

    with tempfile.TemporaryDirectory(prefix="responder-drain-") as tmp:
        d = Path(tmp)
        config = config_file(d)
        asyncio.run(journal_groups(load_runtime(config), args.groups, args.alerts))
        tally = Tally()
        tally.install()
        profile = cProfile.Profile() if args.profile else None
        load = os.getloadavg()[0]
        cpu = time.process_time()
        elapsed = asyncio.run(drain(config, d / "state.db", args.timeout, profile))
        cpu = time.process_time() - cpu
        done = counts(d / "state.db")
        left = backlog(d / "state.db")
    if profile is not None:
        profile.dump_stats(args.profile)
    result = {
        "groups": args.groups, "alerts_per_group": args.alerts, "loadavg_before": load,
        "drain_s": round(elapsed, 2), "cpu_s": round(cpu, 2), "backlog_left": left, **done,
        "alerts_per_s": round(done["processed"] / elapsed, 1),
        "cpu_us_per_alert": round(cpu / max(1, done["processed"]) * 1e6),
        "transactions_per_alert": round(tally.commits / max(1, done["processed"]), 2),
        "renders_per_alert": round(tally.renders / max(1, done["processed"]), 2),
    }
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
