"""Micro-benchmark of failure analysis: µs per analysis of a ~4 KB realistic log.

Run: ``.venv/bin/python bench/bench_analyze.py``. Not a test: timings depend on the machine.
It shows that the cost does not grow with the number of patterns (one Aho-Corasick walk
per text; regexes run only when their required literal occurs), for the shipped library
alone and with 1,000 and 10,000 synthetic patterns (a tenth of them regexes) added.
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from responder.analyze import Analyzer  # noqa: E402
from responder.config.patterns import PatternSpec, load_patterns  # noqa: E402
from responder.errors import Origin  # noqa: E402

WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
         "juliet", "kilo", "lima", "mike", "november", "oscar", "papa")

LOG_HEAD = """\
time="2024-05-03T04:11:02Z" level=info msg="capturing logs" argo=true
Collecting pandas==2.2.2
  Downloading pandas-2.2.2-cp311-cp311-manylinux_2_17_x86_64.whl (13.0 MB)
Collecting numpy>=1.23.2
  Using cached numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.whl (18.3 MB)
Installing collected packages: pytz, tzdata, six, numpy, python-dateutil, pandas
Successfully installed numpy-1.26.4 pandas-2.2.2 python-dateutil-2.9.0 pytz-2024.1
"""
LOG_LINE = ("2024-05-03 04:12:{s:02d},{ms:03d} INFO  etl.load: wrote batch {n} "
            "(5000 rows, 1.2 MB) to s3://lake-raw/orders/2024/05/03/part-{n:05d}.parquet\n")
LOG_TAIL = """\
Traceback (most recent call last):
  File "/app/etl/load.py", line 214, in <module>
    main()
  File "/app/etl/load.py", line 201, in main
    upload(batch)
  File "/usr/local/lib/python3.11/site-packages/botocore/client.py", line 1009, in _make_api_call
    raise error_class(parsed_response, operation_name)
botocore.exceptions.ClientError: An error occurred (SlowDown) when calling the PutObject \
operation (reached max retries: 4): Please reduce your request rate.
time="2024-05-03T04:13:40Z" level=info msg="sub-process exited" argo=true error="<nil>"
Error: exit status 1
"""


def realistic_log(size: int = 4096) -> str:
    lines = [LOG_HEAD]
    n = 0
    while sum(map(len, lines)) + len(LOG_TAIL) < size:
        lines.append(LOG_LINE.format(s=n % 60, ms=(n * 37) % 1000, n=n))
        n += 1
    return "".join(lines) + LOG_TAIL


NOISY_LINE = ("2024-05-03 04:12:{s:02d} ERROR worker-{n}: request failed, status 200 after "
              "retry; error count {n}; test_{n} FAILED? no: warning only, conflict none\n")


def noisy_log(size: int = 4096) -> str:
    """Every line holds words that wake regex prefilters (error, failed, status, conflict)."""
    lines: list[str] = []
    n = 0
    while sum(map(len, lines)) < size:
        lines.append(NOISY_LINE.format(s=n % 60, n=n))
        n += 1
    return "".join(lines)


def synthetic(count: int) -> list[PatternSpec]:
    """Patterns shaped like real ones, none matching the log (so the shipped verdict stands)."""
    out = []
    for i in range(count):
        a, b, c = WORDS[i % 16], WORDS[(i // 16) % 16], WORDS[(i // 256) % 16]
        regex = i % 10 == 0
        out.append(PatternSpec(
            name=f"synthetic-{i:05d}", category="ExternalDependency", confidence=0.7,
            signatures=() if regex else (f"{a} {b} {c} backend refused E{i:05d}",
                                         f"{c}-{a} quota {i:05d} exceeded"),
            regex=rf"{a}-{b} gateway {c} rejected code E{i:05d}\d+" if regex else None,
            retryable=None, recommendations=("see runbook",), origin=Origin("bench", i)))
    return out


def per_call_us(analyzer: Analyzer, text: str, rounds: int = 7, number: int = 2000) -> float:
    best = min(timeit.repeat(lambda: analyzer.analyze(text), repeat=rounds, number=number))
    return best / number * 1e6


def main() -> None:
    shipped = list(load_patterns([REPO / "rules/patterns.yaml"]))
    log = realistic_log()
    unknown = log.replace(LOG_TAIL, "Error: exit status 1\n")
    noisy = noisy_log()
    print(f"match:    {len(log)} chars, a pip + ETL log ending in a traceback (verdict: "
          f"{Analyzer(shipped).analyze(log).pattern})")
    print(f"no-match: {len(unknown)} chars, the same log ending in 'Error: exit status 1'")
    print(f"noisy:    {len(noisy)} chars, every line says error/failed/status/conflict "
          f"(verdict: {Analyzer(shipped).analyze(noisy).category})")
    print(f"{'patterns':>9} {'build ms':>9} {'match µs':>9} {'no-match µs':>12} "
          f"{'noisy µs':>9}")
    baseline = None
    for extra in (0, 1_000, 10_000):
        patterns = shipped + synthetic(extra)
        start = timeit.default_timer()
        analyzer = Analyzer(patterns)
        build_ms = (timeit.default_timer() - start) * 1e3
        assert analyzer.analyze(log).pattern == Analyzer(shipped).analyze(log).pattern
        hit, miss = per_call_us(analyzer, log), per_call_us(analyzer, unknown)
        loud = per_call_us(analyzer, noisy, number=500)
        baseline = baseline or hit
        print(f"{len(patterns):>9} {build_ms:>9.1f} {hit:>9.1f} {miss:>12.1f} {loud:>9.1f}"
              f"   (match {hit / baseline:.2f}x the shipped-only cost)")


if __name__ == "__main__":
    main()
