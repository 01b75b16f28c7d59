"""A load generator in its own process, for what wrk cannot do.

``paced``: open loop at a fixed request rate (wrk2 is not in Debian). Request ``i`` is due
at ``t0 + i / rate`` whatever happened to the ones before, and its latency counts from
when it was due, so a server that stalls is charged for the queue it causes (no
coordinated omission). ``count``: a fixed number of requests, closed loop with a fixed
concurrency (to put a known number of alerts through the responder).

Prints one JSON line. Bodies are ``payloads`` templates, filled per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from payloads import fill


def _percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {}
    s = sorted(samples)

    def at(q: float) -> float:
        return round(s[min(len(s) - 1, int(q * len(s)))] * 1000, 3)

    return {"p50_ms": at(0.50), "p90_ms": at(0.90), "p99_ms": at(0.99),
            "p999_ms": at(0.999), "max_ms": round(s[-1] * 1000, 3)}


async def _post(session: aiohttp.ClientSession, url: str, body: str,
                headers: dict[str, str]) -> int:
    try:
        async with session.post(url, data=body.encode(), headers=headers) as resp:
            await resp.read()
            return resp.status
    except (aiohttp.ClientError, TimeoutError):
        return 0


def _with_auth(headers: dict[str, str], auth: str) -> dict[str, str]:
    return {**headers, "Authorization": auth} if auth else headers


async def paced(args: argparse.Namespace, template: str, headers: dict[str, str]) -> dict[str, Any]:
    """Request ``i`` goes to the ``i``-th ``--url`` in turn (several replicas), each with
    its own ``--auth`` when several are given."""
    auths = args.auth or [""]
    targets = [(url, _with_auth(headers, auths[k % len(auths)])) for k, url in enumerate(args.url)]
    total = int(args.rate * args.duration)
    interval = 1.0 / args.rate
    statuses: Counter[int] = Counter()
    from_due: list[float] = []
    from_sent: list[float] = []
    lag: list[float] = []
    connector = aiohttp.TCPConnector(limit=args.connections)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(i: int, due: float) -> None:
            sent = time.perf_counter()
            lag.append(sent - due)
            url, auth = targets[i % len(targets)]
            status = await _post(session, url, fill(template, args.base_id + i), auth)
            end = time.perf_counter()
            statuses[status] += 1
            from_due.append(end - due)
            from_sent.append(end - sent)

        tasks: list[asyncio.Task[None]] = []
        cpu0 = time.process_time()   # the generator's own CPU while it sends
        t0 = time.perf_counter() + 0.05
        i = 0
        while i < total:
            now = time.perf_counter()
            while i < total and t0 + i * interval <= now:
                tasks.append(asyncio.create_task(one(i, t0 + i * interval)))
                i += 1
            if i < total:
                await asyncio.sleep(max(0.0, t0 + i * interval - time.perf_counter()))
        last_due = t0 + (total - 1) * interval
        await asyncio.gather(*tasks)
        finished = time.perf_counter()
        cpu = time.process_time() - cpu0
    elapsed = finished - t0
    return {
        "mode": "paced", "cpu_s": round(cpu, 3), "requests": total, "alerts_per_request": args.alerts,
        "target_rps": args.rate, "target_alerts_per_s": args.rate * args.alerts,
        "achieved_rps": round(total / elapsed, 1),
        "achieved_alerts_per_s": round(total * args.alerts / elapsed, 1),
        "send_span_s": round(last_due - t0, 3), "elapsed_s": round(elapsed, 3),
        "statuses": {str(k): v for k, v in statuses.items()},
        "latency_from_due": _percentiles(from_due),
        "latency_from_send": _percentiles(from_sent),
        "send_lag": _percentiles(lag),
    }


async def count(args: argparse.Namespace, template: str, headers: dict[str, str]) -> dict[str, Any]:
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    next_id = iter(range(args.requests))
    connector = aiohttp.TCPConnector(limit=args.connections)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            for i in next_id:
                started = time.perf_counter()
                status = await _post(session, args.url[0], fill(template, args.base_id + i),
                                     _with_auth(headers, (args.auth or [""])[0]))
                latencies.append(time.perf_counter() - started)
                statuses[status] += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.connections)))
        elapsed = time.perf_counter() - t0
    return {
        "mode": "count", "requests": args.requests, "alerts_per_request": args.alerts,
        "elapsed_s": round(elapsed, 3), "rps": round(args.requests / elapsed, 1),
        "alerts_per_s": round(args.requests * args.alerts / elapsed, 1),
        "statuses": {str(k): v for k, v in statuses.items()},
        "latency": _percentiles(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["paced", "count"])
    parser.add_argument("--url", required=True, action="append",
                        help="paced: may repeat (requests go to each in turn)")
    parser.add_argument("--body", required=True, type=Path, help="body template file")
    parser.add_argument("--alerts", type=int, required=True, help="alerts per request")
    parser.add_argument("--auth", action="append", default=[],
                        help="Authorization header value (one per --url, or one for all)")
    parser.add_argument("--base-id", type=lambda s: int(s, 0), default=0,
                        help="first request id (keeps runs' alerts distinct)")
    parser.add_argument("--rate", type=float, default=1000.0, help="paced: requests per second")
    parser.add_argument("--duration", type=float, default=10.0, help="paced: seconds")
    parser.add_argument("--requests", type=int, default=1000, help="count: requests")
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    headers = {"Content-Type": "application/json"}
    template = args.body.read_text()
    run = paced if args.mode == "paced" else count
    print(json.dumps(asyncio.run(run(args, template, headers))), flush=True)


if __name__ == "__main__":
    main()
