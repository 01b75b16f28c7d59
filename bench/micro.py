"""Per-alert cost of analysis + matching as the rule sets grow (in process, no HTTP).

Each case writes a complete configuration to a temp dir (``responder.yaml``, generated
runbook and pattern files, the shipped templates) and loads it with
``responder.load.load_runtime``, the loader ``responder serve`` uses. Then, for the same
50 realistic WorkflowFailed alerts (eight failure texts, one per category), it times
``runtime.analyzer.analyze_alert(labels, annotations)`` and
``runtime.index.select(alert, analysis)`` per alert, best of several rounds.

Runbook sweep (shipped patterns): N runbooks, of which a handful handle WorkflowFailed the
way the shipped ones do and come LAST in file order (the worst case for a linear scan);
the others each handle their own alertname (and, in the last case, a tenth of them name
it by a regex the index cannot use). Pattern sweep (shipped runbooks): the shipped
patterns that decide the bench alerts plus generated signatures up to N; then every
shipped pattern plus generated ones, with and without a tenth of them regexes.

``python bench/micro.py [--json]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import payloads
import yaml

REPO = Path(__file__).resolve().parent.parent
WORDS = ("ledger", "quasar", "harbor", "falcon", "mosaic", "juniper", "cobalt", "saffron",
         "tundra", "vertex", "walnut", "zephyr", "orchid", "pylon", "raven", "sierra")


def workflow_runbooks() -> list[dict[str, Any]]:
    """Runbooks for WorkflowFailed shaped like the shipped ones (retry, escalate, notify)."""
    backoff = {"duration": "30s", "factor": 2, "max_duration": "5m"}
    return [
        {"name": "bench-retry-transient", "description": "Retry transient failures.",
         "match": ['alertname="WorkflowFailed"', 'namespace=~"taskmaster|ci-.*"'],
         "when": {"retryable": True},
         "actions": [{"argo.retry": {"namespace": "{{ labels.namespace }}",
                                     "workflow": "{{ labels.workflow }}"}}],
         "retry": {"limit": 3, "backoff": backoff},
         "notify": [{"channel": "oncall"}], "on_exhausted": {"notify": [{"channel": "pager"}]},
         "continue": True},
        {"name": "bench-escalate-resource", "description": "Escalate resource exhaustion.",
         "match": ['alertname="WorkflowFailed"'],
         "when": {"category": ["ResourceExhaustion", "Configuration"]},
         "notify": [{"channel": "pager"}]},
        {"name": "bench-notify-code", "description": "Tell the owners about code defects.",
         "match": ['alertname="WorkflowFailed"', 'severity!="info"'],
         "when": {"category": ["CodeDefect"]}, "notify": [{"channel": "oncall"}]},
        {"name": "bench-data-platform", "description": "Resubmit data-platform workflows.",
         "match": ['alertname="WorkflowFailed"', 'namespace="data-platform"'],
         "actions": [{"argo.resubmit": {"namespace": "{{ labels.namespace }}",
                                        "workflow": "{{ labels.workflow }}"}}],
         "notify": [{"channel": "oncall"}]},
        {"name": "bench-catch-all", "description": "Everything else goes to on-call.",
         "match": ['alertname="WorkflowFailed"'], "status": "any",
         "notify": [{"channel": "oncall"}]},
    ]


def other_runbook(i: int, unindexed: bool = False) -> dict[str, Any]:
    # An alertname regex that is not a plain list of names cannot be indexed by name.
    name = f'alertname=~"Synthetic{i:05d}(Failing|Stuck)"' if unindexed else \
        f'alertname="Synthetic{i:05d}Failing"'
    return {
        "name": f"bench-synthetic-{i:05d}",
        "description": f"Synthetic runbook {i} for its own alert.",
        "match": [name, f'namespace=~"team-{i % 97}|ci-.*"', 'severity!="info"'],
        "when": {"retryable": True},
        "actions": [{"argo.retry": {"namespace": "{{ labels.namespace }}",
                                    "workflow": "{{ labels.workflow }}"}}],
        "retry": {"limit": 2, "backoff": {"duration": "1m", "factor": 2, "max_duration": "10m"}},
        "notify": [{"channel": "oncall"}],
    }


def runbook_files(directory: Path, total: int, unindexed_share: float = 0.0,
                  per_file: int = 500) -> None:
    mine = workflow_runbooks()
    every = int(1 / unindexed_share) if unindexed_share else 0
    books = [other_runbook(i, bool(every) and i % every == 0)
             for i in range(max(0, total - len(mine)))] + mine
    for start in range(0, len(books), per_file):
        path = directory / f"runbooks-{start // per_file:03d}.yaml"
        path.write_text(yaml.safe_dump({"runbooks": books[start:start + per_file]},
                                       sort_keys=False))


def shipped_patterns() -> tuple[str, list[dict[str, Any]]]:
    data = yaml.safe_load((REPO / "rules/patterns.yaml").read_text())
    key = next(k for k, v in data.items() if isinstance(v, list))
    return key, list(data[key])


def filler_pattern(i: int, regex: bool) -> dict[str, Any]:
    a, b, c = WORDS[i % 16], WORDS[(i // 16) % 16], WORDS[(i // 256) % 16]
    pattern: dict[str, Any] = {
        "name": f"bench-filler-{i:04d}",
        "category": ("ExternalDependency", "Network", "Configuration", "CodeDefect")[i % 4],
        "confidence": 0.6,
        "recommendations": [f"See the {a} runbook."],
    }
    if regex:
        pattern["regex"] = f"{a}-{b} (gateway|broker) {c} rejected code E{i:04d}[0-9]+"
    else:
        pattern["signatures"] = [f"{a} {b} {c} backend refused E{i:04d}",
                                 f"{c}-{a} quota {i:04d} exceeded"]
    return pattern


def pattern_file(path: Path, total: int, regex_share: float, decisive: list[str],
                 all_shipped: bool) -> int:
    """``total`` patterns: the shipped ones that decide the bench alerts (so every case
    classifies the alerts the same way), the other shipped ones if ``all_shipped``, then
    generated ones that never match the bench alerts."""
    key, shipped = shipped_patterns()
    chosen = [p for p in shipped if all_shipped or p["name"] in decisive][:total]
    fillers = max(0, total - len(chosen))
    every = int(1 / regex_share) if regex_share else 0
    chosen = chosen + [filler_pattern(i, bool(every) and i % every == 0) for i in range(fillers)]
    path.write_text(yaml.safe_dump({key: chosen}, sort_keys=False))
    return len(chosen)


def bench_alerts() -> list[Any]:
    from responder.model import decode_group

    group, _ = decode_group(payloads.fill(payloads.webhook_body(50, payloads.now()), 1).encode())
    return list(group.alerts)


def config_file(directory: Path, rules: str, patterns: str) -> Path:
    config = {
        "listen": "127.0.0.1:9095",
        "dry_run": True,
        "state": {"path": str(directory / "state.db")},
        "rules": [rules],
        "patterns": [patterns],
        "templates": str(REPO / "templates"),
        "channels": {"console": {"type": "log"}, "oncall": {"type": "log"},
                     "pager": {"type": "log"}},
    }
    path = directory / "responder.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class Case:
    """One loaded configuration and the bench alerts with their analyses."""

    def __init__(self, sweep: str, config: Path, note: str = "", copies: int = 40) -> None:
        from responder.load import load_runtime

        started = time.perf_counter()
        runtime = load_runtime(config)
        self.load_s = time.perf_counter() - started
        self.sweep, self.note = sweep, note
        self.runbooks, self.patterns = len(runtime.runbooks), len(runtime.patterns)
        self.analyzer, self.index = runtime.analyzer, runtime.index
        self.alerts = bench_alerts() * copies  # 50 alerts x copies per round
        self.analyses = [self.analyzer.analyze_alert(a.labels, a.annotations)
                         for a in self.alerts]
        self.matched = sum(len(list(self.index.select(a, x)))
                           for a, x in zip(self.alerts, self.analyses, strict=True))
        self.analyze_us = self.select_us = float("inf")

    def round(self) -> None:
        """Time one pass of each stage; keep the best (least disturbed) per alert."""
        analyze, select = self.analyzer.analyze_alert, self.index.select
        started = time.perf_counter()
        for a in self.alerts:
            analyze(a.labels, a.annotations)
        middle = time.perf_counter()
        for a, x in zip(self.alerts, self.analyses, strict=True):
            for _ in select(a, x):
                pass
        ended = time.perf_counter()
        n = len(self.alerts)
        self.analyze_us = min(self.analyze_us, (middle - started) / n * 1e6)
        self.select_us = min(self.select_us, (ended - middle) / n * 1e6)

    def row(self) -> dict[str, Any]:
        return {"sweep": self.sweep, "runbooks": self.runbooks, "patterns": self.patterns,
                "load_s": self.load_s, "analyze_us": self.analyze_us,
                "select_us": self.select_us, "total_us": self.analyze_us + self.select_us,
                "matched": round(self.matched / len(self.alerts), 2),
                "categories": sorted({x.category for x in self.analyses}), "note": self.note}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON line on stdout")
    parser.add_argument("--runbooks", default="10,1000,10000")
    parser.add_argument("--patterns", default="10,100,1000")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    cases: list[Case] = []
    with tempfile.TemporaryDirectory(prefix="responder-micro-") as tmp:
        base = Path(tmp)
        sizes = [(int(x), 0.0) for x in args.runbooks.split(",")]
        sizes.append((sizes[-1][0], 0.1))
        for n, share in sizes:
            d = base / f"rb-{n}-{share}"
            (d / "runbooks").mkdir(parents=True)
            runbook_files(d / "runbooks", n, share)
            cfg = config_file(d, str(d / "runbooks/*.yaml"), str(REPO / "rules/patterns.yaml"))
            note = f"{share:.0%} of runbooks match alertname by a regex (not indexable)" \
                if share else ""
            cases.append(Case("runbooks", cfg, note, copies=4 if share else 40))
        from responder.load import load_runtime

        shipped = load_runtime(config_file(base, str(REPO / "rules/runbooks/*.yaml"),
                                           str(REPO / "rules/patterns.yaml"))).analyzer
        decisive = sorted({name for a in bench_alerts()
                           if (name := shipped.analyze_alert(a.labels, a.annotations).pattern)})
        sizes = [int(x) for x in args.patterns.split(",")]
        pattern_cases = [(n, 0.0, False) for n in sizes]
        pattern_cases += [(sizes[-1], 0.0, True), (sizes[-1], 0.1, True)]
        for n, share, all_shipped in pattern_cases:
            d = base / f"pt-{n}-{share}-{all_shipped}"
            d.mkdir()
            pattern_file(d / "patterns.yaml", n, share, decisive, all_shipped)
            cfg = config_file(d, str(REPO / "rules/runbooks/*.yaml"), str(d / "patterns.yaml"))
            note = "all shipped patterns + generated" if all_shipped else ""
            if share:
                note += f", {share:.0%} of generated patterns are regexes"
            cases.append(Case("patterns", cfg, note))
        # Rounds interleave the cases, so a busy moment on the machine hits them all alike.
        for _ in range(args.rounds):
            for case in cases:
                case.round()
        rows = [case.row() for case in cases]
        for row in rows:
            print(f"{row['runbooks']:6d} runbooks {row['patterns']:5d} patterns "
                  f"{row['note']}: analyze {row['analyze_us']:.1f} us, select "
                  f"{row['select_us']:.1f} us", file=sys.stderr)
    result = {"rows": rows, "note": (
        f"Best of {args.rounds} interleaved rounds of 2,000 alerts (200 in the unindexed "
        "case; 50 distinct alerts, 8 failure texts). Runbook "
        "sweep: shipped patterns; the WorkflowFailed runbooks come last in file order, the "
        "others match their own alertnames. Pattern sweep: shipped runbooks; every case holds "
        f"the {len(decisive)} shipped patterns that decide the bench alerts (same verdicts in "
        "every row) plus generated signatures that never match them; the last two rows hold "
        "every shipped pattern (their regexes run on the lines where their required literal "
        "occurs) plus generated ones.")}
    if args.json:
        print(json.dumps(result))
    else:
        for row in rows:
            print(row)


if __name__ == "__main__":
    main()
