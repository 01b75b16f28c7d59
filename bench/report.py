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
    for p in results.get("paced", []):
        p99 = p["latency_from_due"].get("p99_ms")
        ok = p99 is not None and p99 < 20 and set(p["statuses"]) == {"200"} \
            and p["achieved_alerts_per_s"] >= 0.95 * p["target_alerts_per_s"]
        rows.append([f"p99 < 20 ms at {p['target_alerts_per_s']:.0f} alerts/s "
                     f"({p['alerts_per_request']} alert(s)/request, {p['target_rps']:g} req/s)",
                     f"p99 {p99} ms, achieved {p['achieved_alerts_per_s']:.0f} alerts/s",
                     _status(ok), f"{20 / p99:.1f}x headroom" if p99 else ""])
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
        f"- date: {results.get('started', '?')} UTC, run took {results.get('minutes', '?')} min",
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

    paced = results.get("paced", [])
    if paced:
        lines += [
            "## Fixed rate (open loop, `bench/loadgen.py paced`)",
            "",
            "Requests are sent on schedule whatever the server does (a Python aiohttp client "
            "in its own process; wrk2 is not in Debian); latency counts from each request's "
            "due time, so queueing is charged. *send lag* is how late the generator itself "
            "sent (its own limit on this machine).",
            "",
        ]
        rows = []
        for p in paced:
            d, lag = p["latency_from_due"], p["send_lag"]
            rows.append([f"{p['alerts_per_request']} x {p['target_rps']:g} req/s",
                         f"{p['achieved_alerts_per_s']:.0f}", d.get("p50_ms"), d.get("p99_ms"),
                         d.get("p999_ms"), d.get("max_ms"), lag.get("p99_ms"),
                         ", ".join(f"{k}: {v}" for k, v in sorted(p["statuses"].items())),
                         p["processed_at_load_end"], p["backlog_left"],
                         f"{p['memory'].get('VmHWM', 0):.0f}"])
        lines += _table(["load", "achieved alerts/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms",
                         "send lag p99 ms", "statuses", "processed during load",
                         "backlog left after drain wait", "peak RSS MB"], rows)

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
