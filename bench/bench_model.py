"""Failure analysis with the learned model on: latency per message, startup cost, memory.

Run: ``.venv/bin/python bench/bench_model.py`` (one process, nothing else started). Not a
test: timings depend on the machine. Prints Markdown rows for ``bench/RESULTS.md``:

- per-message latency (p50, p99: CPU time and wall clock) of ``Analyzer.analyze`` as the
  service calls it,
  over every holdout message of ``rules/corpus`` (patterns first; the model answers those
  no pattern decides), over the model-decided ones alone, over a ~4 KB log and a 10 MB one;
- the model's startup cost: importing numpy, reading the shipped ``.npz``, building the
  analyzer (patterns + model), in a fresh process;
- RSS before and after loading it.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def main() -> None:
    rss_start = rss_mb()
    t0 = time.perf_counter()
    import numpy  # noqa: F401

    t_numpy = time.perf_counter() - t0
    from responder.analyze import Analyzer, load_model, shipped_model_path
    from responder.analyze.corpus import load_split
    from responder.config.patterns import load_patterns

    patterns = load_patterns([REPO / "rules/patterns.yaml"])
    rss_patterns = rss_mb()
    t1 = time.perf_counter()
    model = load_model(shipped_model_path())
    t_load = time.perf_counter() - t1
    t2 = time.perf_counter()
    analyzer = Analyzer(patterns, model=model)
    t_build = time.perf_counter() - t2
    without = Analyzer(patterns)
    rss_model = rss_mb()

    holdout = [c.text for c in load_split(REPO / "rules/corpus", "holdout")]
    sys.path.insert(0, str(REPO / "bench"))
    from bench_analyze import realistic_log

    log4k = realistic_log().replace("SlowDown", "Slow").replace("reduce your request rate",
                                                                 "slow down")
    big = ("2024-05-03 04:12:00 INFO step running\n" * 260_000)[:10_000_000] + \
        "error: the build agent vanished mid-run and the job was lost\n"

    def timings(texts: list[str], a: Analyzer, repeat: int) -> tuple[list[float], list[float]]:
        """(wall µs, CPU µs) per call: on a shared machine the wall clock also counts the
        time other processes held the CPU; the thread's CPU time does not."""
        wall: list[float] = []
        cpu: list[float] = []
        for _ in range(repeat):
            for text in texts:
                c0, w0 = time.thread_time_ns(), time.perf_counter_ns()
                a.analyze(text)
                w1, c1 = time.perf_counter_ns(), time.thread_time_ns()
                wall.append((w1 - w0) / 1e3)
                cpu.append((c1 - c0) / 1e3)
        return wall, cpu

    for text in holdout[:50]:  # warm up
        analyzer.analyze(text)
    by_model = [t for t in holdout if analyzer.analyze(t).source in ("model", "none")]
    rows = [
        ("holdout, every message (patterns + model)", timings(holdout, analyzer, 5)),
        ("holdout, patterns only (model off)", timings(holdout, without, 5)),
        (f"holdout, the {len(by_model)} no pattern decides (model)",
         timings(by_model, analyzer, 20)),
        ("~4 KB log, only a last-resort pattern (model consulted)",
         timings([log4k], analyzer, 2000)),
        ("10 MB log (16 KiB read by patterns, 1.25 KiB by the model)",
         timings([big], analyzer, 20)),
    ]
    print(f"verdict of the 4 KB log: {analyzer.analyze(log4k).source}; "
          f"10 MB: {analyzer.analyze(big).category} ({analyzer.analyze(big).source})\n")
    print("| messages | n | CPU p50 µs | CPU p99 µs | wall p50 µs | wall p99 µs | wall max µs |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, (wall, cpu) in rows:
        qw = statistics.quantiles(wall, n=100, method="inclusive")
        qc = statistics.quantiles(cpu, n=100, method="inclusive")
        print(f"| {name} | {len(wall)} | {qc[49]:.0f} | {qc[98]:.0f} | {qw[49]:.0f} | "
              f"{qw[98]:.0f} | {max(wall):.0f} |")
    print()
    print("| startup step (fresh process) | ms |")
    print("| --- | --- |")
    print(f"| import numpy | {t_numpy * 1e3:.0f} |")
    print(f"| read the shipped model ({shipped_model_path().stat().st_size / 1024:.0f} KiB "
          f".npz, {len(model.categories)} classes) | {t_load * 1e3:.0f} |")
    print(f"| build the analyzer ({len(patterns)} patterns + model) | {t_build * 1e3:.0f} |")
    print()
    print("| RSS | MB |")
    print("| --- | --- |")
    print(f"| interpreter start | {rss_start:.1f} |")
    print(f"| patterns loaded | {rss_patterns:.1f} |")
    print(f"| numpy + model loaded, analyzer built | {rss_model:.1f} |")


if __name__ == "__main__":
    main()
