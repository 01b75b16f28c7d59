"""Breakers as the service keeps them: the pure state machine applied in the journal.

Every change runs the state machine on the breaker's current row inside one journal
transaction (``Journal.change_breaker``), and the transition is written there with its
audit event, so ``on_open``/``on_close`` run once per transition across restarts and
across every process on the journal. ``states`` is this process's copy of the rows, for
reads that may lag a moment (the API, the gauge, planning); ``tick`` refreshes it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from responder.act import breaker as sm
from responder.journal import Breaker, BreakerChange, Event, Journal
from responder.metrics import Metrics

Step = Callable[[sm.BreakerState], tuple[sm.BreakerState, str | None]]


def _state(row: Breaker) -> sm.BreakerState:
    data = dict(row.state)
    data["failures"] = tuple(data.get("failures", ()))
    data["key"] = row.key
    return sm.BreakerState(**data)


def _new(key: str) -> sm.BreakerState:
    return sm.BreakerState(key=key, state="closed", failures=(), opened_at=None,
                           trial_in_flight=False)


class BreakerStore:
    def __init__(self, journal: Journal, metrics: Metrics, clock: Callable[[], float]) -> None:
        self.journal = journal
        self.metrics = metrics
        self.clock = clock
        self.states: dict[str, sm.BreakerState] = {}
        self.specs: dict[str, dict[str, Any]] = {}

    async def load(self) -> None:
        """Refresh this process's copy from the journal (another process may have moved)."""
        for row in await self.journal.load_breakers():
            self._remember(row)
        self._forget_idle()

    def _remember(self, row: Breaker) -> None:
        self.states[row.key] = _state(row)
        if row.spec:
            self.specs[row.key] = row.spec
        self._gauge(self.states[row.key])

    def _forget_idle(self) -> None:
        """Drop closed breakers with nothing in their window, and their gauge series."""
        now = self.clock()
        for key, state in list(self.states.items()):
            if sm.is_idle(state, now, float(self.specs.get(key, {}).get("window", 900.0))):
                del self.states[key]
                self.specs.pop(key, None)
                self.metrics.breaker_state.remove(key)

    def get(self, key: str) -> sm.BreakerState:
        return self.states.get(key) or _new(key)

    def _gauge(self, state: sm.BreakerState) -> None:
        self.metrics.breaker_state.labels(state.key).set(sm.STATE_VALUES[state.state])

    async def _change(self, key: str, step: Step, spec: dict[str, Any] | None, reason: str,
                      *, only_existing: bool = False) -> str | None:
        """Apply ``step`` to the breaker's stored state in one journal transaction;
        ``spec`` (when given) replaces the stored spec. Returns the transition made."""
        (made,) = await self._changes([(key, step, spec, reason, only_existing)])
        return made

    async def _changes(self, changes: Sequence[tuple[str, Step, dict[str, Any] | None, str, bool]],
                       ) -> list[str | None]:
        """``_change`` for each of ``changes``, in order, in one journal transaction."""
        made: list[str | None] = [None] * len(changes)

        def change_for(i: int, key: str, step: Step, spec: dict[str, Any] | None, reason: str,
                       only_existing: bool) -> BreakerChange:
            def change(row: Breaker | None) -> tuple[Breaker, list[Event]] | None:
                if row is None and only_existing:
                    return None
                old = _state(row) if row is not None else _new(key)
                new, transition = step(old)
                made[i] = transition
                if new == old and spec is None:
                    return None
                events = []
                if transition is not None:
                    events.append(Event(kind="breaker", target=key, action=transition,
                                        outcome=new.state, detail={"reason": reason}))
                return Breaker(key, new.to_row(),
                               spec if spec is not None else (row.spec if row else None)), events
            return change

        rows = await self.journal.change_breakers(
            [(c[0], change_for(i, *c)) for i, c in enumerate(changes)])
        for row in rows:
            if row is not None:
                self._remember(row)
        return made

    def cooldown(self, key: str) -> float:
        return float(self.specs.get(key, {}).get("cooldown", 600.0))

    async def failure(self, key: str, spec: dict[str, Any], reason: str) -> str | None:
        (made,) = await self.failures([(key, spec, reason)])
        return made

    async def failures(self, failures: Sequence[tuple[str, dict[str, Any], str]],
                       ) -> list[str | None]:
        """A failure counted against each (key, spec, reason), in one journal transaction
        (the breakers one firing alert reaches); the transitions made, in order."""
        now = self.clock()

        def step(spec: dict[str, Any]) -> Step:
            return lambda s: sm.record_failure(s, now, int(spec["threshold"]),
                                               float(spec["window"]))

        return await self._changes([(key, step(spec), spec, reason, False)
                                    for key, spec, reason in failures]) if failures else []

    async def success(self, key: str, reason: str) -> str | None:
        now = self.clock()
        return await self._change(key, lambda s: sm.record_success(s, now), None, reason,
                                  only_existing=True)

    async def allow(self, key: str) -> bool:
        now, cooldown = self.clock(), self.cooldown(key)
        allowed = [False]

        def step(s: sm.BreakerState) -> tuple[sm.BreakerState, str | None]:
            allowed[0], new, transition = sm.allow(s, now, cooldown)
            return new, transition

        await self._change(key, step, None, "cooldown elapsed")
        return allowed[0]

    async def trip(self, key: str, cooldown: float | None, reason: str) -> str | None:
        now = self.clock()
        spec = dict(self.specs.get(key, {}))
        if cooldown is not None:
            spec["cooldown"] = cooldown
        return await self._change(key, lambda s: sm.trip(s, now), spec or None, reason)

    async def reset(self, key: str, reason: str) -> str | None:
        now = self.clock()
        return await self._change(key, lambda s: sm.reset(s, now), None, reason)

    async def tick(self) -> list[str]:
        """Move breakers whose cooldown has elapsed to half-open; returns their keys."""
        await self.load()
        moved = []
        now = self.clock()
        for key, state in list(self.states.items()):
            cooldown = self.cooldown(key)
            due = sm.next_half_open(state, cooldown)
            if state.state != "open" or due is None or due > now:
                continue

            def step(s: sm.BreakerState, cooldown: float = cooldown) -> tuple[
                    sm.BreakerState, str | None]:
                _, new, transition = sm.allow(s, now, cooldown)
                # Moving to half-open must not spend the single trial: keep it unclaimed.
                if transition == "half_opened":
                    new = dataclasses.replace(new, trial_in_flight=False)
                return new, transition

            if await self._change(key, step, None, "cooldown elapsed") == "half_opened":
                moved.append(key)
        self._forget_idle()
        return moved

    def next_half_open_at(self) -> float | None:
        """The earliest moment an open breaker's cooldown ends (for the scheduler's sleep)."""
        times = [t for key, state in self.states.items() if state.state == "open"
                 for t in [sm.next_half_open(state, self.cooldown(key))] if t is not None]
        return min(times) if times else None

    def snapshot(self) -> list[dict[str, Any]]:
        now = self.clock()
        out = []
        for key in sorted(self.states):
            state = self.states[key]
            spec = self.specs.get(key, {})
            window = float(spec.get("window", 0.0))
            out.append({
                "key": key,
                "state": state.state,
                "failures_in_window": sum(1 for t in state.failures if t > now - window)
                if window else len(state.failures),
                "threshold": spec.get("threshold"),
                "opened_at": state.opened_at,
                "next_half_open": sm.next_half_open(state, self.cooldown(key)),
                "runbook": spec.get("runbook"),
            })
        return out
