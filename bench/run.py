"""``make bench``: the responder against its ceilings, side by side, in one run on loopback.

Phases (each on fresh processes and fresh state, so no run inherits another's backlog):

1. throughput: wrk + ``lua/post.lua`` at 1 and 50 alerts per request against the bare
   aiohttp handler (``bare_server.py``), the responder's full path (``responder serve``:
   bearer auth, decode, durable journal, then analysis and matching in its workers, dry run,
   ``log`` channels) and Alertmanager's ``POST /api/v2/alerts``. Every request carries new
   alerts. For the responder it also times the drain: until every journaled delivery has
   been analysed, matched and planned and every message sent (or the drain timeout).
2. drain (``drain.py``): a storm of one-alert groups, journaled, then worked off by
   ``responder serve`` (the processing rate, uninstrumented) and by the same service in
   process with timers (transactions, renders and CPU per alert and per stage); on this
   tree and on the ``--baseline`` commit.
3. paced: open-loop load at 1,000 alerts/s (``loadgen.py paced``), p99 from due time; the
   backlog (pending deliveries + unsent messages) the moment the load stops, then the
   time to drain it.
4. rss: 100,000 alerts through a fresh responder, then its peak and current RSS.
5. micro: per-alert analysis + matching cost for 10..10,000 runbooks, 10..1,000 patterns
   (``micro.py``, in-process).
6. profile (``--profile``): py-spy samples of the responder under wrk load.
7. journal: the journal's size. A burst of 20,000 alerts (WAL peak while it is ingested and
   processed, bytes per stored alert with its events and messages), then three waves of
   the same alerts (firing, then resolved) with a short ``state.retention``: the file must
   not grow wave over wave.
8. postgres (``bench_postgres.py``): one replica on SQLite, one and three on PostgreSQL:
   ingest and processed alerts/s, statements and transactions per alert, p99 at 1,000
   alerts/s across three replicas.

Writes ``bench/RESULTS.md`` and the raw numbers in ``bench/out/``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import payloads
import yaml
from procs import Proc, Procs, free_port, http_get, memory_mb, thread_cpu_s, wait_ready
from report import write_results

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
PY = sys.executable
WRK = shutil.which("wrk") or "/usr/bin/wrk"
ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
BATCHES = (1, 50)
PHASES = ("throughput", "drain", "paced", "rss", "micro", "journal", "postgres")


class Run:
    """One bench run: settings, work dir, children, results."""

    def __init__(self, args: argparse.Namespace, workdir: Path, procs: Procs) -> None:
        self.args = args
        self.workdir = workdir
        self.procs = procs
        self.results: dict[str, Any] = {"throughput": [], "errors": []}
        self.starts = payloads.now()
        self.tag = 0
        self.bodies: dict[tuple[str, int], Path] = {}
        for n in BATCHES:
            for kind, make in (("webhook", payloads.webhook_body),
                               ("alertmanager", payloads.alertmanager_body)):
                path = workdir / f"{kind}-{n}.json"
                path.write_text(make(n, self.starts))
                self.bodies[(kind, n)] = path

    def fresh_dir(self, name: str) -> Path:
        self.tag += 1
        path = self.workdir / f"{self.tag:02d}-{name}"
        path.mkdir()
        return path

    # -- servers -------------------------------------------------------------------------
    def start_bare(self) -> tuple[Proc, str]:
        port = free_port()
        d = self.fresh_dir("bare")
        proc = self.procs.start("bare", [PY, str(BENCH / "bare_server.py"), str(port)],
                                log=d / "bare.log")
        wait_ready(f"http://127.0.0.1:{port}/-/ready", proc)
        return proc, f"http://127.0.0.1:{port}/webhook"

    def start_responder(self, state: dict[str, Any] | None = None,
                        ) -> tuple[Proc, str, str, Path]:
        """A responder on fresh state; returns (proc, webhook URL, auth header, state db)."""
        port = free_port()
        d = self.fresh_dir("responder")
        token = secrets.token_urlsafe(24)
        (d / "token").write_text(token)
        config = {
            "listen": f"127.0.0.1:{port}",
            "auth": {"bearer_token_file": str(d / "token")},
            "dry_run": True,
            "state": state if state and "postgres" in state
            else {"path": str(d / "state.db"), **(state or {})},
            "rules": [str(REPO / "rules/runbooks/*.yaml")],
            "patterns": [str(REPO / "rules/patterns.yaml")],
            "templates": str(REPO / "templates"),
            "channels": {"console": {"type": "log"}, "oncall": {"type": "log"},
                         "pager": {"type": "log"}},
        }
        cfg = d / "responder.yaml"
        cfg.write_text(yaml.safe_dump(config, sort_keys=False))
        exe = str(Path(PY).with_name("responder"))
        proc = self.procs.start("responder", [exe, "serve", "-c", str(cfg)],
                                log=d / "responder.log")
        wait_ready(f"http://127.0.0.1:{port}/-/ready", proc)
        return proc, f"http://127.0.0.1:{port}/webhook", f"Bearer {token}", d / "state.db"

    def start_alertmanager(self) -> tuple[Proc, str]:
        port = free_port()
        d = self.fresh_dir("alertmanager")
        config = {
            "route": {"receiver": "null", "group_by": ["alertname", "namespace"],
                      "group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h"},
            "receivers": [{"name": "null"}],
        }
        (d / "alertmanager.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        (d / "data").mkdir()
        proc = self.procs.start("alertmanager", [
            ALERTMANAGER, f"--config.file={d / 'alertmanager.yml'}",
            f"--storage.path={d / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=", "--log.level=warn"], log=d / "alertmanager.log")
        wait_ready(f"http://127.0.0.1:{port}/-/ready", proc)
        return proc, f"http://127.0.0.1:{port}/api/v2/alerts"

    # -- load ----------------------------------------------------------------------------
    def wrk(self, url: str, body: Path, auth: str = "", duration: float | None = None,
            ) -> dict[str, Any]:
        args = self.args
        self.tag += 1
        argv = [WRK, f"-t{args.threads}", f"-c{args.connections}",
                f"-d{duration or args.duration:g}s", "--timeout", "10s", "--latency",
                "-s", str(BENCH / "lua/post.lua"), url, "--", str(body), str(self.tag), auth]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
        (self.workdir / f"wrk-{self.tag:02d}.txt").write_text(done.stdout + done.stderr)
        line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCHJSON ")), None)
        if done.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}{done.stderr}")
        out: dict[str, Any] = json.loads(line.removeprefix("BENCHJSON "))
        seconds = out["duration_us"] / 1e6
        out["rps"] = out["requests"] / seconds
        return out

    def loadgen(self, mode: str, url: str, body: Path, alerts: int, auth: str,
                *extra: str, base_id: int | None = None) -> dict[str, Any]:
        self.tag += 1
        argv = [PY, str(BENCH / "loadgen.py"), mode, "--url", url, "--body", str(body),
                "--alerts", str(alerts), "--auth", auth,
                "--base-id", hex(self.tag << 40 if base_id is None else base_id), *extra]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"loadgen failed ({done.returncode}): {done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result

    # -- responder probes ----------------------------------------------------------------
    @classmethod
    def journal_state(cls, db: Path) -> tuple[int, int]:
        """(alerts processed, backlog): receipts analysed/matched/planned, and deliveries
        journaled but not yet processed plus unsent messages."""
        parts = cls.backlog_parts(db)
        return parts["processed"], parts["deliveries_pending"] + parts["messages_unsent"]

    @staticmethod
    def backlog_parts(db: Path) -> dict[str, int]:
        """What is left to do, read-only, right now: deliveries journaled and not yet
        processed, messages queued and not yet sent, and receipts processed so far."""
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
            processed, deliveries, messages = conn.execute(
                "SELECT (SELECT COUNT(*) FROM receipts WHERE state != 'pending'), "
                "(SELECT COUNT(*) FROM deliveries WHERE state = 'pending'), "
                "(SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending'))"
            ).fetchone()
        return {"processed": int(processed), "deliveries_pending": int(deliveries),
                "messages_unsent": int(messages)}

    def settle(self, db: Path, proc: Proc, timeout: float | None = None) -> dict[str, Any]:
        """Wait (bounded) for the backlog to clear; the pipeline's rate while it drains."""
        started = time.monotonic()
        first, left = self.journal_state(db)
        done = first
        while left and time.monotonic() - started < (timeout or self.args.drain_timeout):
            if not proc.alive():
                raise RuntimeError(f"responder died while draining:\n{proc.tail()}")
            time.sleep(0.25)
            done, left = self.journal_state(db)
        elapsed = time.monotonic() - started
        return {"drain_s": round(elapsed, 2), "backlog_left": left,
                "processed_at_load_end": first, "processed": done,
                "drain_alerts_per_s": round((done - first) / elapsed, 1) if elapsed > 1 else None}

    @staticmethod
    def counters(url: str) -> dict[str, float]:
        base = url.rsplit("/", 1)[0]
        _, text = http_get(f"{base}/metrics")
        sums: dict[str, float] = {}
        for line in text.decode().splitlines():
            m = re.match(r"(responder_(?:alerts_received|alerts_duplicate|alerts_rejected|"
                         r"webhook_requests)_total)(?:\{[^}]*\})? ([0-9.e+]+)$", line)
            if m:
                sums[m.group(1)] = sums.get(m.group(1), 0.0) + float(m.group(2))
        return sums

    # -- phases --------------------------------------------------------------------------
    def throughput(self) -> None:
        for n in BATCHES:
            for target in self.args.targets.split(","):
                load = os.getloadavg()[0]
                row: dict[str, Any] = {"target": target, "alerts_per_request": n,
                                       "loadavg_before": round(load, 2)}
                if target == "bare":
                    proc, url = self.start_bare()
                    row.update(self.wrk(url, self.bodies[("webhook", n)]))
                elif target == "alertmanager":
                    proc, url = self.start_alertmanager()
                    row.update(self.wrk(url, self.bodies[("alertmanager", n)]))
                else:
                    proc, url, auth, db = self.start_responder()
                    t0 = time.monotonic()
                    row.update(self.wrk(url, self.bodies[("webhook", n)], auth))
                    row["memory_after_load"] = memory_mb(proc.pid)
                    row.update(self.settle(db, proc))
                    row["ingest_and_drain_s"] = round(time.monotonic() - t0, 2)
                    row["counters"] = self.counters(url)
                row["alerts_per_s"] = row["rps"] * n
                row["memory"] = memory_mb(proc.pid)
                self.procs.stop(proc)
                self.results["throughput"].append(row)
                print(f"  {target:12s} {n:2d} alerts/req: {row['rps']:8.0f} req/s "
                      f"{row['alerts_per_s']:9.0f} alerts/s p50 {row['latency_us']['p50']/1000:.1f}"
                      f" ms p99 {row['latency_us']['p99']/1000:.1f} ms", flush=True)

    def paced(self) -> None:
        rate = self.args.paced_alerts
        rows = []
        for n, rps in ((1, rate), (50, rate / 50)):
            proc, url, auth, db = self.start_responder()
            load = round(os.getloadavg()[0], 2)
            cpu0 = thread_cpu_s(proc.pid)
            result = self.loadgen("paced", url, self.bodies[("webhook", n)], n, auth,
                                  "--rate", str(rps), "--duration", str(self.args.duration))
            cpu1 = thread_cpu_s(proc.pid)
            # The moment the load stops, before any drain: did processing keep up?
            at_end = self.backlog_parts(db)
            result["at_load_end"] = at_end | {
                "backlog": at_end["deliveries_pending"] + at_end["messages_unsent"],
                "processed_alerts_per_s": round(at_end["processed"] / result["elapsed_s"], 1)}
            result["loadavg_after"] = round(os.getloadavg()[0], 2)
            result.update(self.settle(db, proc))
            cpu2 = thread_cpu_s(proc.pid)
            # Where the CPU went: the responder's event loop thread and its other threads
            # (the webhooks' COMMITs, WAL checkpoints) while the load ran, and again while
            # it worked off the backlog with no webhooks; the generator's own CPU.
            result["cpu"] = {
                "run_loop_s": round(cpu1["main"] - cpu0["main"], 2),
                "run_other_s": round(cpu1["other"] - cpu0["other"], 2),
                "drain_loop_s": round(cpu2["main"] - cpu1["main"], 2),
                "drain_other_s": round(cpu2["other"] - cpu1["other"], 2),
                "load_generator_s": result.get("cpu_s"), "cpus": os.cpu_count()}
            result["memory"] = memory_mb(proc.pid)
            result["counters"] = self.counters(url)
            result["loadavg_before"] = load
            self.procs.stop(proc)
            rows.append(result)
            print(f"  paced {n:2d} alerts x {rps:g}/s: achieved {result['achieved_alerts_per_s']}"
                  f" alerts/s, p99 {result['latency_from_due'].get('p99_ms')} ms, backlog at "
                  f"end {result['at_load_end']['backlog']}, drained in {result['drain_s']} s",
                  flush=True)
        self.results["paced"] = rows

    def rss(self) -> None:
        n = 50
        requests = self.args.rss_alerts // n
        proc, url, auth, db = self.start_responder()
        before = memory_mb(proc.pid)
        result = self.loadgen("count", url, self.bodies[("webhook", n)], n, auth,
                              "--requests", str(requests), "--connections", "16")
        result["memory_after_ingest"] = memory_mb(proc.pid)
        result.update(self.settle(db, proc))
        result["memory_start"] = before
        result["memory"] = memory_mb(proc.pid)
        result["counters"] = self.counters(url)
        self.procs.stop(proc)
        self.results["rss"] = result
        print(f"  rss after {requests * n} alerts: {result['memory']}", flush=True)

    @staticmethod
    def journal_files(db: Path) -> dict[str, int]:
        sizes = {}
        for name, suffix in (("db", ""), ("wal", "-wal")):
            try:
                sizes[name] = os.stat(f"{db}{suffix}").st_size
            except FileNotFoundError:
                sizes[name] = 0
        return sizes

    @staticmethod
    def used_bytes(db: Path) -> int:
        """Bytes of the database's pages in use (free pages left out), WAL included."""
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
            page, count, free = (conn.execute(f"PRAGMA {p}").fetchone()[0]
                                 for p in ("page_size", "page_count", "freelist_count"))
        return int(page) * (int(count) - int(free))

    def journal(self) -> None:
        n, burst = 50, self.args.burst_alerts
        out: dict[str, Any] = {}
        # 1. a burst: WAL peak, and what one stored alert costs
        proc, url, auth, db = self.start_responder()
        peak = [0]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], self.journal_files(db)["wal"])
                stop.wait(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            ingest = self.loadgen("count", url, self.bodies[("webhook", n)], n, auth,
                                  "--requests", str(burst // n), "--connections", "16")
            drained = self.settle(db, proc, timeout=self.args.drain_timeout * 6)
        finally:
            stop.set()
            sampler.join()
        self.procs.stop(proc)
        out["burst"] = {"alerts": burst, "ingest_s": ingest.get("elapsed_s"),
                        "ingest_alerts_per_s": ingest.get("alerts_per_s"), **drained,
                        "wal_peak_bytes": peak[0], "files": self.journal_files(db),
                        "bytes_per_alert": round(self.used_bytes(db) / burst)}
        print(f"  burst of {burst}: WAL peak {peak[0] / 2**20:.1f} MiB, "
              f"{out['burst']['bytes_per_alert']} B per alert", flush=True)
        # 2. three waves of the same alerts under a short retention
        retention = self.args.wave_retention
        proc, url, auth, db = self.start_responder({"retention": f"{retention:g}s"})
        firing = self.bodies[("webhook", n)]
        resolved = self.workdir / "webhook-resolved.json"
        resolved.write_text(firing.read_text().replace('"status":"firing"', '"status":"resolved"')
                            .replace('"endsAt":"0001-01-01T00:00:00Z"',
                                     '"endsAt":"2030-01-01T00:00:00Z"'))
        waves = []
        for wave in range(3):
            base = (0xA0 + wave) << 40
            for body in (firing, resolved):
                self.loadgen("count", url, body, n, auth, "--requests",
                             str(self.args.wave_alerts // n), "--connections", "16",
                             base_id=base)
                self.settle(db, proc)
            time.sleep(retention + 3.0)       # past retention, and a pass of the pruner
            waves.append({"wave": wave + 1, **self.journal_files(db),
                          "used_bytes": self.used_bytes(db)})
            print(f"  wave {wave + 1}: {waves[-1]}", flush=True)
        self.procs.stop(proc)
        out["waves"] = {"alerts": self.args.wave_alerts, "retention_s": retention,
                        "rows": waves}
        self.results["journal"] = out

    def drain(self) -> None:
        """``drain.py`` on this tree and on the baseline commit (``--baseline``), each in
        its own process: the rate of ``responder serve`` working off a journaled storm of
        one-alert groups, and the instrumented per-alert cost (transactions, renders, CPU
        per stage). Rounds alternate the trees, the baseline first: ``git archive`` of its
        commit with this tree's ``bench/`` copied in, so both are measured the same way."""
        trees: list[tuple[str, str, Path]] = []
        out: dict[str, Any] = {"groups": self.args.drain_groups,
                               "rounds": self.args.drain_rounds, "rows": []}
        if self.args.baseline:
            try:
                trees.append(("before", self.args.baseline, self.export(self.args.baseline)))
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                out["baseline_error"] = f"{self.args.baseline}: {str(exc)[:500]}"
                print(f"!! baseline {self.args.baseline} not measured: {exc}", file=sys.stderr)
        trees.append(("after", git_rev(REPO), REPO))
        for rnd, (label, rev, tree) in ((r, t) for r in range(self.args.drain_rounds)
                                        for t in trees):
            argv = [PY, str(tree / "bench/drain.py"), "--json", "--groups",
                    str(self.args.drain_groups)]
            done = subprocess.run(argv, capture_output=True, text=True, timeout=900,
                                  check=False, cwd=tree)
            if done.returncode != 0:
                raise RuntimeError(f"drain.py on {label} ({rev}) failed ({done.returncode}): "
                                   f"{done.stderr[-3000:]}")
            row = json.loads(done.stdout.strip().splitlines()[-1])
            row.update(tree=label, rev=rev, round=rnd + 1)
            out["rows"].append(row)
            s, i = row["serve"], row["in_process"]
            print(f"  {rnd + 1}. {label:6s} {rev}: serve {s['alerts_per_s']} alerts/s "
                  f"({s['cpu_us_per_alert']} CPU us/alert, load {s['loadavg_before']:.2f}); "
                  f"instrumented {i['transactions_per_alert']} transactions, "
                  f"{i['renders_per_alert']} renders per alert", flush=True)
        self.results["drain"] = out

    def export(self, rev: str) -> Path:
        """The tree of ``rev`` (its ``responder``, rules and templates) with this tree's
        ``bench/`` copied in."""
        dest = self.workdir / f"tree-{rev}"
        dest.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", rev,
                                  "responder", "rules", "templates"], capture_output=True,
                                 timeout=120, check=False)
        if archive.returncode != 0:
            raise RuntimeError(archive.stderr.decode(errors="replace").strip())
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True,
                       timeout=120)
        shutil.copytree(BENCH, dest / "bench", ignore=shutil.ignore_patterns(
            "out", "RESULTS.md", "__pycache__"))
        return dest

    def postgres(self) -> None:
        from bench_postgres import postgres_phase

        self.results["postgres"] = postgres_phase(self)

    def micro(self) -> None:
        argv = [PY, str(BENCH / "micro.py"), "--json"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=1200, check=False,
                              cwd=REPO)
        if done.returncode != 0:
            raise RuntimeError(f"micro.py failed ({done.returncode}): {done.stderr[-3000:]}")
        self.results["micro"] = json.loads(done.stdout.strip().splitlines()[-1])
        for row in self.results["micro"]["rows"]:
            print(f"  {row['runbooks']:6d} runbooks {row['patterns']:5d} patterns: "
                  f"{row['total_us']:.1f} us/alert", flush=True)

    def profile(self) -> None:
        spy = shutil.which("py-spy") or str(Path(PY).with_name("py-spy"))
        if not Path(spy).exists():
            raise RuntimeError("py-spy not installed: .venv/bin/pip install py-spy")
        profiles = {}
        for n in BATCHES:
            proc, url, auth, _db = self.start_responder()
            raw = OUT / f"profile-{n}.txt"
            spy_proc = self.procs.start(f"py-spy-{n}", [
                spy, "record", "--pid", str(proc.pid), "--rate", "200", "--threads",
                "--duration", str(int(self.args.duration)), "--format", "raw",
                "--output", str(raw), "--nonblocking"])
            self.wrk(url, self.bodies[("webhook", n)], auth)
            spy_proc.popen.wait(timeout=60)
            self.procs.stop(spy_proc)
            self.procs.stop(proc)
            profiles[str(n)] = summarize_profile(raw)
        self.results["profile"] = profiles


def git_rev(repo: Path) -> str:
    done = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, timeout=30, check=False)
    return done.stdout.strip() or "?"


# Frames every sample passes through (threads, the event loop, the CLI): no information.
_GENERIC = re.compile(r"\((threading|selectors|concurrent/futures/\S+|asyncio/\S+|"
                      r"responder/cli|aiohttp/web|<string>)\.py\)|^<module>")


def _short(frame: str) -> str:
    """``fn (/abs/path/site-packages/aiohttp/web.py:12)`` -> ``fn (aiohttp/web.py)``."""
    frame = re.sub(r":\d+\)$", ")", frame)
    frame = frame.replace(f"{REPO}/", "")
    return re.sub(r"\(/\S*/(?:site-packages|lib/python3\.\d+)/", "(", frame)


def summarize_profile(raw: Path, top: int = 15) -> dict[str, Any]:
    """Inclusive and self sample shares per function from py-spy's collapsed stacks."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";")]
        if frames and (frames[0].startswith("thread ") or "(idle)" in frames[0]):
            frames = frames[1:]
        if not frames:
            continue
        total += count
        for f in set(frames):
            if not _GENERIC.search(f):
                inclusive[f] = inclusive.get(f, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count

    def share(d: dict[str, int]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1))
                for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:top]]

    return {"samples": total, "self": share(own), "inclusive": share(inclusive)}


def machine() -> dict[str, str]:
    def cmd(*argv: str) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"

    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(next(ln for ln in Path("/proc/meminfo").read_text().splitlines()
                      if ln.startswith("MemTotal")).split()[1])
    versions = subprocess.run(
        [PY, "-c", "import aiohttp, msgspec, responder; "
                   "print(aiohttp.__version__, msgspec.__version__, responder.__version__)"],
        capture_output=True, text=True, check=False).stdout.split()
    versions += ["?"] * (3 - len(versions))
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "aiohttp": versions[0],
        "msgspec": versions[1],
        "responder": versions[2],
        "alertmanager": "Alertmanager " + cmd(ALERTMANAGER, "--version").split("version ")[-1],
        "wrk": "wrk " + cmd(WRK, "-v").split()[1],
        "loadavg_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load run")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--paced-alerts", type=float, default=1000.0, help="alerts/s, paced")
    parser.add_argument("--rss-alerts", type=int, default=100_000)
    parser.add_argument("--drain-timeout", type=float, default=30.0,
                        help="seconds to wait for the responder's backlog after each load")
    parser.add_argument("--burst-alerts", type=int, default=20_000,
                        help="journal phase: alerts in the burst")
    parser.add_argument("--wave-alerts", type=int, default=5_000,
                        help="journal phase: alerts per wave")
    parser.add_argument("--wave-retention", type=float, default=5.0,
                        help="journal phase: state.retention in seconds during the waves")
    parser.add_argument("--pg-alerts", type=int, default=6000,
                        help="postgres phase: alerts per setup")
    parser.add_argument("--drain-groups", type=int, default=1500,
                        help="drain phase: one-alert groups journaled, then worked off")
    parser.add_argument("--drain-rounds", type=int, default=2,
                        help="drain phase: rounds, alternating the trees (best one reported)")
    parser.add_argument("--baseline", default="4c6a1fa",
                        help="drain phase: the commit measured as 'before' ('' for none)")
    parser.add_argument("--phases", default=",".join(PHASES),
                        help="comma-separated subset of " + ",".join(PHASES) + ",profile")
    parser.add_argument("--targets", default="bare,responder,alertmanager",
                        help="throughput phase: comma-separated subset")
    parser.add_argument("--profile", action="store_true", help="also run the profile phase")
    parser.add_argument("--output", type=Path, default=BENCH / "RESULTS.md")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, state)")
    args = parser.parse_args()
    phases = [p for p in args.phases.split(",") if p] + (["profile"] if args.profile else [])
    unknown = set(phases) - {*PHASES, "profile"}
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")

    def on_term(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    OUT.mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="responder-bench-"))
    command = " ".join([".venv/bin/python", "bench/run.py", *sys.argv[1:]])
    if not sys.argv[1:]:
        command = f"make bench  (= {command})"
    started = datetime.now(UTC)
    failed = False
    results: dict[str, Any] = {}
    completed = False
    try:
        with Procs(workdir) as procs:
            run = Run(args, workdir, procs)
            results = run.results
            results["machine"] = machine()
            results["settings"] = vars(args) | {"output": str(args.output)}
            results["started"] = started.isoformat(timespec="seconds")
            results["phase_s"] = {}
            for phase in phases:
                print(f"== {phase}", flush=True)
                began = time.monotonic()
                try:
                    getattr(run, phase)()
                except (RuntimeError, OSError, subprocess.SubprocessError, ValueError) as exc:
                    failed = True
                    print(f"!! {phase} failed: {exc}", file=sys.stderr, flush=True)
                    results["errors"].append(f"{phase}: {str(exc)[:2000]}")
                results["phase_s"][phase] = round(time.monotonic() - began)
        completed = True
    finally:
        if results:
            results["minutes"] = round((datetime.now(UTC) - started).total_seconds() / 60, 1)
            (OUT / "results.json").write_text(json.dumps(results, indent=1, default=str))
            if completed:  # an interrupted run leaves the last complete RESULTS.md alone
                write_results(args.output, results, command)
                print(f"wrote {args.output}")
            print(f"wrote {OUT / 'results.json'}")
        if args.keep:
            print(f"work dir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
