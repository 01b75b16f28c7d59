"""Turns one bench run's raw numbers into ``bench/RESULTS.md``: tables, ratios, targets."""

from __future__ import annotations

from itertools import zip_longest
from pathlib import Path
from typing import Any

# Text after this line in RESULTS.md is written by hand and kept when the tables are rewritten.
KEEP_MARK = "<!-- analysis: written by hand, kept across runs -->"
NAMES = {"bare": "bare aiohttp (parse only)", "responder": "responder full path",
         "alertmanager": "Alertmanager `POST /api/v2/alerts`"}


def _ms(us: float) -> str:
    return f"{us / 1000:.1f}"


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    return [_row(head), _row(["---"] * len(head)), *(_row(r) for r in rows), ""]


def _find(rows: list[dict[str, Any]], target: str, n: int) -> dict[str, Any] | None:
    return next((r for r in rows if r["target"] == target and r["alerts_per_request"] == n), None)


def _status(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**not met**")


def targets(results: dict[str, Any]) -> list[list[Any]]:
    rows: list[list[Any]] = []
    tp = results.get("throughput", [])
    bare1, resp1 = _find(tp, "bare", 1), _find(tp, "responder", 1)
    if bare1 and resp1:
        ratio = resp1["rps"] / bare1["rps"]
        rows.append(["full path at 1 alert/request ≥ 50% of bare aiohttp req/s",
                     f"{ratio:.0%} ({resp1['rps']:.0f} / {bare1['rps']:.0f} req/s)",
                     _status(ratio >= 0.5), f"{ratio / 0.5:.2f}x the target"])
    am50, resp50 = _find(tp, "alertmanager", 50), _find(tp, "responder", 50)
    if am50 and resp50:
        ratio = resp50["alerts_per_s"] / am50["alerts_per_s"]
        rows.append(["full path at 50 alerts/request: alerts/s ≥ Alertmanager's",
                     f"{ratio:.2f}x ({resp50['alerts_per_s']:.0f} / "
                     f"{am50['alerts_per_s']:.0f} alerts/s)",
                     _status(ratio >= 1.0), f"{ratio:.2f}x the target"])
    rate = processing_rate(results)
    if rate:
        rows.append([f"fully processed alerts/s, one-alert groups ≥ {RATE_TARGET:g}x bare "
                     "aiohttp req/s (same run)",
                     f"{rate['ratio']:.3f}x ({rate['alerts_per_s']:.0f} alerts/s by "
                     f"`responder serve` / {rate['bare_rps']:.0f} req/s)",
                     _status(rate["ratio"] >= RATE_TARGET),
                     f"{rate['ratio'] / RATE_TARGET:.2f}x the target"])
    for p in results.get("paced", []):
        p99 = p["latency_from_due"].get("p99_ms")
        end = p.get("at_load_end")
        ok = p99 is not None and p99 < 20 and set(p["statuses"]) == {"200"} \
            and p["achieved_alerts_per_s"] >= 0.95 * p["target_alerts_per_s"] \
            and end is not None and end["backlog"] == 0
        kept_up = f", backlog at the end {end['backlog']:,}" if end else ""
        rows.append([f"p99 < 20 ms at {p['target_alerts_per_s']:.0f} alerts/s "
                     f"({p['alerts_per_request']} alert(s)/request, {p['target_rps']:g} req/s) "
                     "while processing keeps up (backlog at the end 0)",
                     f"p99 {p99} ms, achieved {p['achieved_alerts_per_s']:.0f} alerts/s"
                     + kept_up, _status(ok), f"{20 / p99:.1f}x headroom" if p99 else ""])
    micro = results.get("micro", {}).get("rows", [])
    rb = {r["runbooks"]: r for r in micro if r["sweep"] == "runbooks" and not r["note"]}
    if 10 in rb and 10000 in rb:
        ratio = rb[10000]["total_us"] / rb[10]["total_us"]
        rows.append(["per-alert cost at 10,000 runbooks within 2x of 10 runbooks",
                     f"{ratio:.2f}x ({rb[10000]['total_us']:.1f} / {rb[10]['total_us']:.1f} µs)",
                     _status(ratio <= 2.0), f"{2.0 / ratio:.1f}x margin"])
    pt = {r["patterns"]: r for r in micro if r["sweep"] == "patterns" and not r["note"]}
    if 10 in pt and 1000 in pt:
        ratio = pt[1000]["analyze_us"] / pt[10]["analyze_us"]
        rows.append(["analysis flat in patterns (1,000 vs 10 patterns; flat taken as ≤ 1.5x)",
                     f"{ratio:.2f}x ({pt[1000]['analyze_us']:.1f} / {pt[10]['analyze_us']:.1f} µs)",
                     _status(ratio <= 1.5), ""])
    journal = results.get("journal")
    if journal:
        b, waves = journal["burst"], journal["waves"]["rows"]
        wal = b["wal_peak_bytes"] / 2 ** 20
        rows.append([f"WAL < 256 MiB through a {b['alerts']:,}-alert burst", f"{wal:.1f} MiB",
                     _status(wal < 256), f"{256 / max(wal, 0.1):.1f}x margin"])
        rows.append(["a stored alert with its events and messages ≤ 4 KiB",
                     f"{b['bytes_per_alert']:,} B", _status(b["bytes_per_alert"] <= 4096),
                     f"{4096 - b['bytes_per_alert']:+,} B"])
        sizes = [r["db"] for r in waves]
        flat = all(later <= sizes[0] for later in sizes[1:])
        rows.append(["journal file does not grow over 3 waves under retention",
                     " → ".join(f"{x / 2 ** 20:.2f}" for x in sizes) + " MiB", _status(flat), ""])
    rss = results.get("rss")
    if rss:
        peak = rss["memory"].get("VmHWM", 0.0)
        rows.append([f"RSS < 150 MB after {rss['requests'] * rss['alerts_per_request']:,} alerts",
                     f"peak {peak:.0f} MB (now {rss['memory'].get('VmRSS', 0):.0f} MB)",
                     _status(peak < 150), f"{150 - peak:+.0f} MB"])
    return rows


RATE_TARGET = 0.1   # fully processed one-alert groups per second, as a share of bare req/s


def processing_rate(results: dict[str, Any]) -> dict[str, Any] | None:
    """The drain phase's ``responder serve`` rate on this tree against the bare framework's
    1-alert req/s of the same run."""
    bare = _find(results.get("throughput", []), "bare", 1)
    after = _drain_row(results, "after")
    if not bare or not after or not after["serve"].get("alerts_per_s"):
        return None
    rate = float(after["serve"]["alerts_per_s"])
    return {"alerts_per_s": rate, "bare_rps": bare["rps"], "ratio": rate / bare["rps"]}


def _drain_row(results: dict[str, Any], tree: str) -> dict[str, Any] | None:
    """The tree's least disturbed round: the highest ``responder serve`` rate."""
    rows = [r for r in (results.get("drain") or {}).get("rows", []) if r["tree"] == tree]
    return max(rows, key=lambda r: r["serve"].get("alerts_per_s") or 0.0, default=None)


def _load(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "?"


def paced_cpu(p: dict[str, Any]) -> dict[str, float] | None:
    """What one alert of a paced run costs in CPU, and what the machine had for it (ms):
    processing from the drain after the load (no webhooks competing), ingest as what is
    left of the event loop thread's CPU during the run, the generator's own. None when
    the row has no CPU readings or the drain processed nothing to measure it by."""
    cpu, end = p.get("cpu"), p.get("at_load_end")
    if not cpu or not end or not cpu.get("load_generator_s"):
        return None
    alerts = p["requests"] * p["alerts_per_request"]
    generator = cpu["load_generator_s"] / alerts
    drained = p.get("processed", 0) - p.get("processed_at_load_end", 0)
    split: dict[str, float] = {}
    if end["backlog"] == 0:
        # Kept up: the run's CPU did all of it (ingest and processing are not told apart).
        loop, others = cpu["run_loop_s"] / alerts, cpu["run_other_s"] / alerts
    elif drained > 0:
        processing = cpu["drain_loop_s"] / drained
        ingest = max(0.0, cpu["run_loop_s"] - end["processed"] * processing) / alerts
        split = {"ingest": ingest, "processing": processing}
        loop = ingest + processing
        others = cpu["run_other_s"] / alerts + cpu["drain_other_s"] / drained
    else:
        return None
    return {k: round(v * 1000, 3) for k, v in {
        **split, "threads": others, "generator": generator, "loop_needed": loop,
        "loop_had": p["elapsed_s"] / alerts, "needed": loop + others + generator,
        "had": cpu["cpus"] * p["elapsed_s"] / alerts}.items()}


def _paced_cpu_section(paced: list[dict[str, Any]]) -> list[str]:
    rows = []
    for p in paced:
        c, cpu = paced_cpu(p), p.get("cpu") or {}
        if c is None:
            continue
        rows.append([f"{p['alerts_per_request']} x {p['target_rps']:g} req/s",
                     f"{p['elapsed_s']:.1f}", cpu["run_loop_s"], cpu["run_other_s"],
                     cpu["load_generator_s"], c.get("ingest", "kept up"),
                     c.get("processing", "kept up"), c["threads"],
                     c["generator"], f"{c['loop_needed']} of {c['loop_had']}",
                     f"{c['needed']} of {c['had']}"])
    if not rows:
        return []
    return [
        "CPU of the paced runs: the responder's event loop thread and its other threads (the "
        "webhooks' `COMMIT`s, WAL checkpoints) from `/proc/<pid>/task` while the load ran, "
        "and the generator's own CPU while it sent. Per alert: *processing* is the loop "
        "thread's CPU per alert in the drain after the load (no webhooks competing); *ingest* "
        "what is left of its CPU during the run once the alerts processed meanwhile are "
        "charged at that cost (a run that kept up has no drain to tell them apart by: its "
        "loop thread's CPU is both). Keeping up needs the loop thread's share (ingest + processing) "
        "within the time one alert has, and everything within what the machine's CPUs have "
        "per alert; the generator runs on the same CPUs.",
        "",
        *_table(["load", "run s", "responder loop thread CPU s", "responder other threads "
                 "CPU s", "load generator CPU s", "ingest ms/alert", "processing ms/alert",
                 "other threads ms/alert", "generator ms/alert",
                 "loop thread: needed of had, ms/alert",
                 "all CPUs: needed of had, ms/alert"], rows)]


def _processing_section(results: dict[str, Any]) -> list[str]:
    """Fully processed alerts/s with one-alert groups beside the bare framework's rate."""
    tp = results.get("throughput", [])
    bare = _find(tp, "bare", 1)
    drain = results.get("drain") or {}
    post = _find(tp, "responder", 1)
    if not drain.get("rows") and not post:
        return []
    bare_rps = bare["rps"] if bare else None
    head = ["how", "alerts", "processed alerts/s", "bare aiohttp req/s (1 alert/request)",
            "ratio", f"target ≥ {RATE_TARGET:g}x", "load avg before"]

    def ratio(rate: float | None) -> list[str]:
        if rate is None or not bare_rps:
            return ["n/a", "n/a"]
        return [f"{rate / bare_rps:.3f}x", _status(rate / bare_rps >= RATE_TARGET)]

    rows: list[list[Any]] = []
    for r in drain.get("rows", []):
        s = r["serve"]
        rows.append([f"drain phase, `responder serve`, {r['tree']} ({r['rev']}), "
                     f"round {r.get('round', 1)}",
                     f"{s['processed'] - s['processed_before_ready']:,}",
                     f"{s['alerts_per_s']:.0f}", f"{bare_rps:.0f}" if bare_rps else "n/a",
                     *ratio(s["alerts_per_s"]), _load(s["loadavg_before"])])
    if post and post.get("drain_alerts_per_s") is not None:
        rows.append(["after wrk, 1 alert/request (throughput row): the backlog wrk left, "
                     f"for up to {results.get('settings', {}).get('drain_timeout', 0):g} s",
                     f"{post['processed'] - post['processed_at_load_end']:,}",
                     f"{post['drain_alerts_per_s']:.0f}",
                     f"{bare_rps:.0f}" if bare_rps else "n/a",
                     *ratio(post["drain_alerts_per_s"]), _load(post["loadavg_before"])])
    lines = [
        "## Processing rate: one-alert groups against the bare framework",
        "",
        "The shape of a storm of distinct failing workflows: every group holds one alert, "
        "and each is analysed, matched and planned, its dry-run action run, and its three "
        "rendered `log` notifications sent. *processed alerts/s* counts alerts whose "
        "delivery is done, until the backlog (pending deliveries + unsent messages) is "
        f"zero. The drain phase journals {drain.get('groups', 0):,} one-alert groups, then "
        "starts `responder serve` on the file and times from `/-/ready` until the backlog "
        "is zero (`bench/drain.py`, serve mode: nothing instrumented, no webhooks "
        "competing); the rounds alternate the trees, and the targets and the cost table "
        "take each tree's fastest round. The last row is the pipeline working off what wrk's 1-alert row "
        "journaled, measured after the load stopped. The bare rate is the throughput "
        "phase's 1-alert row of the same run.",
        "",
    ]
    lines += _table(head, rows)
    if drain.get("baseline_error"):
        lines += [f"> baseline not measured: {drain['baseline_error']}", ""]
    return lines


STAGE_NOTE = ("the event loop thread's CPU in the stage's functions (exclusive: a stage "
              "called inside another is charged to itself only; a coroutine only for the "
              "steps it runs)")


def _cost_section(results: dict[str, Any]) -> list[str]:
    """Per-alert cost, before and after, from ``drain.py``'s two modes."""
    drain = results.get("drain") or {}
    trees = [r for r in (_drain_row(results, "before"), _drain_row(results, "after")) if r]
    if not trees:
        return []

    def cells(get: Any) -> list[Any]:
        out = []
        for r in trees:
            try:
                value = get(r)
            except (KeyError, TypeError):
                value = None
            out.append("n/a" if value is None else value)
        return out

    rows: list[list[Any]] = [
        ["processing rate, `responder serve`, alerts/s",
         *cells(lambda r: f"{r['serve']['alerts_per_s']:.0f}")],
        ["CPU µs per alert, `responder serve` (process tree, uninstrumented)",
         *cells(lambda r: f"{r['serve']['cpu_us_per_alert']:,}")],
        ["CPU µs per alert, instrumented, in process",
         *cells(lambda r: f"{r['in_process']['cpu_us_per_alert']:,}")],
        ["journal transactions per alert (SQLite COMMITs)",
         *cells(lambda r: r["in_process"]["transactions_per_alert"])],
        ["template renders per alert", *cells(lambda r: r["in_process"]["renders_per_alert"])],
    ]
    stages: list[str] = []
    for r in trees:
        stages += [k for k in r["in_process"].get("stages", {}) if k not in stages]
    for stage in stages:
        rows.append([f"µs per alert: {stage}", *cells(
            lambda r, st=stage: _us(r["in_process"]["stages"][st]["us_per_alert"]))])
    rows.append(["µs per alert: sum of the stages", *cells(lambda r: _us(_stage_sum(r)))])
    rows.append(["µs per alert: the rest (instrumented CPU - stages: loop, timers, "
                 "other threads)", *cells(lambda r: _us(
                     r["in_process"]["cpu_us_per_alert"] - _stage_sum(r)))])
    rows.append(["load average before (serve / in process)", *cells(
        lambda r: f"{_load(r['serve']['loadavg_before'])} / "
                  f"{_load(r['in_process']['loadavg_before'])}")])
    head = ["per alert, one-alert groups", *(f"{r['tree']} ({r['rev']})" for r in trees)]
    lines = [
        "## Per-alert cost of processing, before and after (`bench/drain.py`)",
        "",
        f"{drain.get('groups', 0):,} journaled one-alert groups, worked off twice per tree "
        "(the fastest of its rounds shown), "
        "each on its own fresh journal: by `responder serve` (the rate and its CPU, nothing "
        "measured inside), then by the same service in process, instrumented: SQLite "
        "`COMMIT`s traced on every journal connection, `jinja2.Template.render` counted, "
        f"and per stage {STAGE_NOTE}, measured with `time.thread_time` around the functions "
        "named below (no profiler). *before* is the baseline commit exported with "
        "`git archive`, run with this tree's `bench/` in the same run. n/a: the tree has "
        "none of the stage's functions, or they never ran in that process. The outbox's "
        "share moves between runs of the same code: when the pipeline keeps up, the outbox "
        "sends each delivery's messages as soon as they are queued, in small batches (more "
        "transactions per alert); when it lags, in batches of 20.",
        "",
    ]
    lines += _table(head, rows)
    functions = {stage: fs for r in trees
                 for stage, v in r["in_process"].get("stages", {}).items()
                 if (fs := v.get("functions"))}
    if functions:
        lines += ["Stage functions (`module:Qualified.name`): " + "; ".join(
            f"{stage}: " + ", ".join(f"`{f}`" for f in fs) for stage, fs in functions.items())
            + ".", ""]
    return lines


def _us(value: Any) -> str | None:
    return None if value is None else f"{value:,.0f}"


def _stage_sum(r: dict[str, Any]) -> float | None:
    values = [v["us_per_alert"] for v in r["in_process"].get("stages", {}).values()
              if v["us_per_alert"] is not None]
    return float(sum(values)) if values else None


def _journal_section(journal: dict[str, Any] | None) -> list[str]:
    if not journal:
        return []
    b, w = journal["burst"], journal["waves"]
    mib = 2 ** 20
    lines = [
        "## Journal size (SPEC §14)",
        "",
        f"A burst of {b['alerts']:,} new alerts (50 per request, 16 connections), ingested and "
        "processed with the shipped runbooks (dry run, `log` channels); the WAL sampled every "
        "0.1 s. Bytes per alert: the database's pages in use after processing (receipts, "
        "events, attempts, messages and their indexes) divided by the alerts.",
        "",
    ]
    lines += _table(["alerts", "ingest s", "processed in s", "WAL peak MiB", "bytes per alert"],
                    [[f"{b['alerts']:,}", b["ingest_s"], b["drain_s"],
                      f"{b['wal_peak_bytes'] / mib:.1f}", b["bytes_per_alert"]]])
    lines += [
        f"Three waves of the same {w['alerts']:,} alerts (firing, then resolved, each wave with "
        f"new instances), `state.retention: {w['retention_s']:g}s`, sizes taken once the "
        "retention pass has run after each wave:",
        "",
    ]
    lines += _table(["wave", "database file MiB", "WAL MiB", "pages in use KiB"],
                    [[r["wave"], f"{r['db'] / mib:.2f}", f"{r['wal'] / mib:.2f}",
                      f"{r['used_bytes'] / 1024:.0f}"] for r in w["rows"]])
    return lines


def write_results(path: Path, results: dict[str, Any], command: str) -> None:
    m = results.get("machine", {})
    s = results.get("settings", {})
    lines = [
        "# Benchmark results",
        "",
        "Written by `bench/run.py` (`make bench`); contract in SPEC §11. Raw numbers of the run:",
        "`bench/out/results.json` (not committed).",
        "",
        f"- date: {results.get('started', '?')} UTC, run took {results.get('minutes', '?')} min"
        + (" (" + ", ".join(f"{k} {v} s" for k, v in results["phase_s"].items()) + ")"
           if results.get("phase_s") else ""),
        f"- command: `{command}`",
        f"- machine: {m.get('nproc')} CPUs ({m.get('cpu')}), {m.get('memory')} RAM, "
        f"Linux {m.get('kernel')}; load average at start {m.get('loadavg_at_start')}",
        f"- software: Python {m.get('python')}, aiohttp {m.get('aiohttp')}, msgspec "
        f"{m.get('msgspec')}, alert-responder {m.get('responder')}, {m.get('alertmanager')}, "
        f"{m.get('wrk')}",
        "- everything on 127.0.0.1; the load generator shares the same CPUs as the server.",
        "",
    ]
    for error in results.get("errors", []):
        lines.append(f"> **phase failed**: {error.splitlines()[0]}")
        lines.append("")

    target_rows = targets(results)
    if target_rows:
        lines += ["## Targets", ""]
        lines += _table(["target", "measured", "status", "margin"], target_rows)

    tp = results.get("throughput", [])
    if tp:
        lines += [
            "## Throughput and latency (wrk, closed loop)",
            "",
            f"wrk {s.get('threads')} threads, {s.get('connections')} connections, "
            f"{s.get('duration'):g} s per row, `bench/lua/post.lua`. Every request carries new "
            "alerts (distinct fingerprints and workflow names: the realistic path, not the "
            "journal's duplicate path). Realistic `WorkflowFailed` alerts, ~1.4 KB per alert. "
            "Each row is a fresh process on fresh state.",
            "",
        ]
        rows = []
        for r in tp:
            lat = r["latency_us"]
            errs = sum(r["errors"].values())
            rows.append([NAMES[r["target"]], r["alerts_per_request"], f"{r['rps']:.0f}",
                         f"{r['alerts_per_s']:.0f}", _ms(lat["p50"]), _ms(lat["p99"]),
                         _ms(lat["max"]), errs, f"{r['memory'].get('VmHWM', 0):.0f}",
                         r["loadavg_before"]])
        lines += _table(["target", "alerts/req", "req/s", "alerts/s", "p50 ms", "p99 ms",
                         "max ms", "errors/non-2xx", "peak RSS MB", "load avg before"], rows)
        ratio_rows = []
        for n in (1, 50):
            resp, bare, am = _find(tp, "responder", n), _find(tp, "bare", n), \
                _find(tp, "alertmanager", n)
            if resp and bare and am:
                ratio_rows.append([n, f"{resp['rps'] / bare['rps']:.2f}",
                                   f"{resp['alerts_per_s'] / am['alerts_per_s']:.2f}",
                                   f"{lat_ratio(resp, bare):.2f}", f"{lat_ratio(resp, am):.2f}"])
        if ratio_rows:
            lines += ["Ratios (responder / other, same run):", ""]
            lines += _table(["alerts/req", "req/s vs bare (1)", "alerts/s vs Alertmanager (3)",
                             "p99 vs bare", "p99 vs Alertmanager"], ratio_rows)
        drain_rows = []
        for r in tp:
            if r["target"] != "responder":
                continue
            c = r.get("counters", {})
            accepted = c.get("responder_alerts_received_total", 0)
            drain_rows.append([r["alerts_per_request"], f"{accepted:.0f}",
                               f"{c.get('responder_alerts_duplicate_total', 0):.0f}",
                               r["processed_at_load_end"], r["drain_s"],
                               r["drain_alerts_per_s"], r["processed"], r["backlog_left"],
                               f"{r['memory_after_load'].get('VmRSS', 0):.0f}"])
        if drain_rows:
            lines += [
                "Responder background work: the 200 means journaled; analysis, matching, "
                "planning and acting (dry run) and the `log` notifications run after, in the "
                "pipeline's workers. *processed* counts alerts whose receipt left `pending`; "
                f"after the load the run waits up to {s.get('drain_timeout'):g} s for the "
                "backlog (pending deliveries + unsent messages) and measures the pipeline's "
                "rate meanwhile.",
                "",
            ]
            lines += _table(["alerts/req", "alerts journaled", "duplicates",
                             "processed during load", "drain wait s",
                             "processing alerts/s (drain)", "processed at end", "backlog left",
                             "RSS after load MB"], drain_rows)

    lines += _processing_section(results)
    lines += _cost_section(results)

    paced = results.get("paced", [])
    if paced:
        lines += [
            "## Fixed rate (open loop, `bench/loadgen.py paced`)",
            "",
            "Requests are sent on schedule whatever the server does (a Python aiohttp client "
            "in its own process; wrk2 is not in Debian); latency counts from each request's "
            "due time, so queueing is charged. *send lag* is how late the generator itself "
            "sent (its own limit on this machine). Whether processing kept up: *backlog at "
            "the end* is read from the state file (read-only SQLite) the moment the "
            "generator returns, before any drain: deliveries still pending + messages not yet "
            "sent; *processed alerts/s* is the alerts processed by then over the run's "
            f"length; then the run waits up to {s.get('drain_timeout', 0):g} s for the "
            "backlog to clear. Target: p99 < 20 ms with the backlog at the end zero.",
            "",
        ]
        rows = []
        for p in paced:
            d, lag = p["latency_from_due"], p["send_lag"]
            end = p.get("at_load_end") or {}
            p99 = d.get("p99_ms")
            ok = (p99 is not None and p99 < 20 and end.get("backlog") == 0
                  and set(p["statuses"]) == {"200"})
            rows.append([f"{p['alerts_per_request']} x {p['target_rps']:g} req/s",
                         f"{p['achieved_alerts_per_s']:.0f}", d.get("p50_ms"), p99,
                         d.get("p999_ms"), d.get("max_ms"), lag.get("p99_ms"),
                         ", ".join(f"{k}: {v}" for k, v in sorted(p["statuses"].items())),
                         end.get("processed_alerts_per_s", "n/a"),
                         f"{end['backlog']:,} ({end['deliveries_pending']:,} + "
                         f"{end['messages_unsent']:,})" if end else "n/a",
                         p["drain_s"] if not p["backlog_left"] else f"> {p['drain_s']}",
                         p["backlog_left"], f"{p['memory'].get('VmHWM', 0):.0f}",
                         _load(p.get("loadavg_before")), _status(ok)])
        lines += _table(["load", "achieved alerts/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms",
                         "send lag p99 ms", "statuses", "processed alerts/s during the run",
                         "backlog at the end (deliveries + messages)", "drain after s",
                         "backlog left after drain wait", "peak RSS MB", "load avg before",
                         "target"], rows)
        lines += _paced_cpu_section(paced)

    micro = results.get("micro")
    if micro:
        lines += ["## Per-alert cost of analysis + matching (in process, `bench/micro.py`)", ""]
        lines += [micro.get("note", ""), ""]
        rows = []
        for r in micro["rows"]:
            rows.append([r["sweep"], r["runbooks"], r["patterns"], f"{r['load_s']:.2f}",
                         f"{r['analyze_us']:.1f}", f"{r['select_us']:.1f}",
                         f"{r['total_us']:.1f}", r.get("matched", ""), r.get("note", "")])
        lines += _table(["sweep", "runbooks", "patterns", "load s", "analyze µs/alert",
                         "select µs/alert", "total µs/alert", "runbooks matched/alert", "case"],
                        rows)

    lines += _postgres_section(results.get("postgres"))

    rss = results.get("rss")
    if rss:
        c = rss.get("counters", {})
        lines += [
            "## Memory",
            "",
            f"A fresh responder, {rss['requests']:,} requests of {rss['alerts_per_request']} new "
            f"alerts (16 connections, closed loop), then up to {s.get('drain_timeout'):g} s "
            "of background processing.",
            "",
        ]
        lines += _table(
            ["alerts journaled", "ingest alerts/s", "ingest p99 ms", "RSS at start MB",
             "RSS after ingest MB", "processed at end", "backlog left", "RSS at end MB",
             "peak RSS (VmHWM) MB"],
            [[f"{c.get('responder_alerts_received_total', 0):,.0f}", f"{rss['alerts_per_s']:.0f}",
              rss["latency"].get("p99_ms"), rss["memory_start"].get("VmRSS"),
              rss["memory_after_ingest"].get("VmRSS"), rss["processed"], rss["backlog_left"],
              rss["memory"].get("VmRSS"), rss["memory"].get("VmHWM")]])

    lines += _journal_section(results.get("journal"))

    prof = results.get("profile")
    if prof:
        lines += ["## Profile of the responder under wrk (py-spy, all threads)", ""]
        for n, p in prof.items():
            lines += [f"{n} alert(s)/request, {p['samples']} samples (both threads):", ""]
            rows = [[f"`{o[0]}`" if o else "", o[1] if o else "",
                     f"`{i[0]}`" if i else "", i[1] if i else ""]
                    for o, i in zip_longest(p["self"][:12], p["inclusive"][:12])]
            lines += _table(["self", "%", "inclusive (loop and thread frames left out)", "%"],
                            rows)
    kept = ""
    if path.exists() and KEEP_MARK in path.read_text():
        kept = path.read_text().split(KEEP_MARK, 1)[1]
    lines += [KEEP_MARK + kept.rstrip()]
    path.write_text("\n".join(lines).rstrip() + "\n")


def _postgres_section(rows: list[dict[str, Any]] | None) -> list[str]:
    """SQLite against one and three replicas on PostgreSQL (``bench_postgres.py``)."""
    if not rows:
        return []
    lines = [
        "## Several replicas: SQLite against PostgreSQL",
        "",
        f"Into one replica on SQLite, one on PostgreSQL and three on one PostgreSQL database "
        "(Debian's server on this machine, fsync and synchronous_commit on), each measurement "
        f"on fresh state: {rows[0]['alerts']:,} one-alert webhooks and "
        f"{rows[0].get('alerts_50', 0):,} alerts 50 per request, closed loop (16 connections "
        "split over the replicas); *processed*: one-alert groups analysed, matched and "
        "planned per second from the first request until the backlog is empty; statements "
        "and transactions per alert: what the responder's role ran meanwhile "
        "(pg_stat_statements, pg_stat_database). Paced: open loop, each request to the next "
        "replica; *backlog at end*: deliveries not processed and messages not sent when "
        "the load stops.",
        "",
    ]

    def paced(p: dict[str, Any] | None) -> str:
        if not p:
            return ""
        return (f"{p['p99_ms']} ms at {p['alerts_per_s']:.0f} alerts/s, backlog "
                f"{p.get('backlog_at_end', '?')}")

    def cpu(c: dict[str, float] | None) -> str:
        return f"{c['responder_ms']:.2f} + {c['server_ms']:.2f}" if c else ""

    table = []
    for r in rows:
        table.append([r["backend"], r["replicas"], f"{r.get('ingest_1_alerts_per_s', 0):.0f}",
                      f"{r['ingest_alerts_per_s']:.0f}", f"{r['processed_alerts_per_s']:.0f}",
                      r.get("statements_per_alert", ""), r.get("transactions_per_alert", ""),
                      cpu(r.get("cpu_ingest_1")), cpu(r.get("cpu_processed")),
                      paced(r.get("paced")), paced(r.get("paced_50"))])
    lines += _table(["journal", "replicas", "ingest alerts/s, 1/request",
                     "ingest alerts/s, 50/request", "processed alerts/s",
                     "statements/alert", "transactions/alert",
                     "CPU ms/alert ingesting 1/request (responder + server)",
                     "CPU ms/alert until processed (responder + server)",
                     "paced p99, 1 alert/request", "paced p99, 50 alerts/request"], table)
    lines += [
        "Every journal step that SQLite does in process (microseconds) is a round trip to the "
        "server here, and the pipeline takes an alert's steps one after another, so one "
        "replica's processing rate is bound by round-trip latency, not by the database. "
        "Three replicas process in parallel, but on a 2-CPU machine they share the CPUs with "
        "the server and the load generator: read the three-replica rows as a floor.",
        "",
    ]
    return lines


def lat_ratio(a: dict[str, Any], b: dict[str, Any]) -> float:
    return float(a["latency_us"]["p99"]) / max(1.0, float(b["latency_us"]["p99"]))
