"""A breaker with nothing left to remember is forgotten, and its metric series with it.

Breaker keys are often one per workflow; without forgetting, ``circuit_breaker_state``
would keep a series for every workflow that ever failed.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from responder.act.breaker_store import BreakerStore
from responder.journal import SqliteJournal
from responder.metrics import Metrics

SPEC = {"threshold": 3, "window": 60.0, "cooldown": 30.0}


def series(registry: CollectorRegistry) -> list[str]:
    return [line for line in generate_latest(registry).decode().splitlines()
            if line.startswith("responder_circuit_breaker_state{")]


async def test_a_closed_breaker_whose_failures_left_the_window_is_forgotten(
        tmp_path: Path) -> None:
    now = [1000.0]
    journal = SqliteJournal(tmp_path / "state.db", clock=lambda: now[0])
    await journal.open()
    registry = CollectorRegistry()
    store = BreakerStore(journal, Metrics(registry), lambda: now[0])
    await store.failure("ns/etl-1", SPEC, "failed")
    await store.failure("ns/etl-2", SPEC, "failed")
    assert series(registry) == ['responder_circuit_breaker_state{key="ns/etl-1"} 0.0',
                                'responder_circuit_breaker_state{key="ns/etl-2"} 0.0']
    now[0] += 30
    await store.failure("ns/etl-2", SPEC, "failed again")
    now[0] += 31    # etl-1's only failure is now out of its 60 s window; etl-2's is not
    await store.tick()
    assert series(registry) == ['responder_circuit_breaker_state{key="ns/etl-2"} 0.0']
    assert [b["key"] for b in store.snapshot()] == ["ns/etl-2"]

    # Restarted, the journal's copy of a forgotten breaker does not bring it back.
    now[0] += 60
    again = BreakerStore(journal, Metrics(fresh := CollectorRegistry()), lambda: now[0])
    await again.load()
    assert series(fresh) == [] and again.snapshot() == []
    await journal.close()


async def test_an_open_breaker_is_kept_whatever_its_age(tmp_path: Path) -> None:
    now = [1000.0]
    journal = SqliteJournal(tmp_path / "state.db", clock=lambda: now[0])
    await journal.open()
    registry = CollectorRegistry()
    store = BreakerStore(journal, Metrics(registry), lambda: now[0])
    await store.trip("ns/cron", None, "tripped by hand")
    now[0] += 10_000
    await store.tick()   # half-open now: not idle either
    assert [b["state"] for b in store.snapshot()] == ["half_open"]
    assert len(series(registry)) == 1
    await journal.close()
