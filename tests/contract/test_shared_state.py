"""Breakers, flags and rate limits are journal state: every owner sees and changes one copy."""

from __future__ import annotations

import asyncio

from responder.journal import Breaker, BreakerChange, Event
from tests.contract.conftest import Backend


def count_failure(row: Breaker | None) -> tuple[Breaker, list[Event]]:
    failures = (row.state["failures"] if row else 0) + 1
    opened = failures == 3
    state = {"state": "open" if failures >= 3 else "closed", "failures": failures}
    events = [Event(kind="breaker", target="k", action="opened")] if opened else []
    return Breaker("k", state, {"threshold": 3}), events


async def test_breaker_changes_from_every_owner_count_and_the_transition_happens_once(
        backend: Backend) -> None:
    a, b, c = await backend.open("a"), await backend.open("b"), await backend.open("c")
    await asyncio.gather(*(j.change_breaker("k", count_failure) for j in (a, b, c, a, b)))
    (row,) = await c.load_breakers()
    assert row == Breaker("k", {"state": "open", "failures": 5}, {"threshold": 3})
    assert len(await a.events(kind="breaker")) == 1


async def test_a_breaker_change_that_changes_nothing_writes_nothing(backend: Backend) -> None:
    a = await backend.open("a")
    assert await a.change_breaker("k", lambda row: None) is None
    assert await a.load_breakers() == []
    await a.change_breaker("k", count_failure)
    seen: list[Breaker | None] = []

    def look(row: Breaker | None) -> None:
        seen.append(row)

    after = await a.change_breaker("k", look)   # type: ignore[arg-type]
    assert seen == [after] and after is not None and after.state["failures"] == 1


def count(key: str) -> BreakerChange:
    def change(row: Breaker | None) -> tuple[Breaker, list[Event]]:
        return Breaker(key, {"failures": (row.state["failures"] if row else 0) + 1}, None), []
    return change


async def test_several_breakers_change_in_one_call_in_order_and_owners_never_deadlock(
        backend: Backend) -> None:
    a, b = await backend.open("a"), await backend.open("b")
    rows = await a.change_breakers([("x", count("x")), ("y", count("y")), ("x", count("x"))])
    assert [(r.key, r.state["failures"]) for r in rows if r] == [("x", 1), ("y", 1), ("x", 2)]
    assert await a.change_breakers([]) == []
    # Owners changing the same keys named in opposite orders at the same moment take
    # turns (no deadlock), and every change counts.
    await asyncio.gather(*(j.change_breakers(changes) for j, changes in (
        (a, [("x", count("x")), ("y", count("y"))]),
        (b, [("y", count("y")), ("x", count("x"))]),
        (a, [("y", count("y")), ("x", count("x"))]),
        (b, [("x", count("x")), ("y", count("y"))]))))
    assert {r.key: r.state["failures"] for r in await b.load_breakers()} == {"x": 6, "y": 5}


async def test_a_flag_set_by_one_owner_is_what_every_owner_reads(backend: Backend) -> None:
    a, b = await backend.open("a"), await backend.open("b")
    assert await b.get_flag("paused") is None
    await a.set_flag("paused", True, [Event(kind="pause", outcome="ok", detail={"by": "op"})])
    assert await b.get_flag("paused") is True
    await b.set_flag("paused", False)
    assert await a.get_flag("paused") is False
    assert [e["detail"] for e in await a.events(kind="pause")] == [{"by": "op"}]


async def test_a_rate_limit_is_shared_by_every_owner(backend: Backend) -> None:
    a, b = await backend.open("a"), await backend.open("b")
    t = backend.now
    assert await a.acquire_rate("ns/wf", 2, 60.0, t) == (True, 0.0)
    assert await b.acquire_rate("ns/wf", 2, 60.0, t + 10) == (True, 0.0)
    assert await a.acquire_rate("ns/wf", 2, 60.0, t + 20) == (False, 40.0)
    assert await b.acquire_rate("other", 2, 60.0, t + 20) == (True, 0.0)
    assert await b.acquire_rate("ns/wf", 2, 60.0, t + 60) == (True, 0.0)   # the first expired
    assert await a.acquire_rate("ns/wf", 2, 60.0, t + 61) == (False, 9.0)


async def test_concurrent_rate_acquisitions_never_exceed_the_limit(backend: Backend) -> None:
    owners = [await backend.open(name) for name in "abcd"]
    results = await asyncio.gather(*(j.acquire_rate("k", 3, 60.0, backend.now)
                                     for j in owners * 3))
    assert [ok for ok, _ in results].count(True) == 3
