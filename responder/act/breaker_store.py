"""Breakers as the service keeps them: the pure state machine plus journal persistence.

Every transition is written to the journal together with its audit event before anyone
acts on it, so ``on_open``/``on_close`` run once per transition even across restarts, and
``/api/v1/breakers`` and the ``circuit_breaker_state`` gauge read the same state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from responder.act import breaker as sm
from responder.journal import Event, Journal
from responder.metrics import Metrics


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
        for key, (state, spec) in (await self.journal.load_breakers()).items():
            data = dict(state)
            data["failures"] = tuple(data.get("failures", ()))
            self.states[key] = sm.BreakerState(**data)
            if spec:
                self.specs[key] = spec
            self._gauge(self.states[key])
        self._forget_idle()

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

    async def _save(self, new: sm.BreakerState, transition: str | None,
                    spec: dict[str, Any] | None, reason: str, **detail: Any) -> None:
        old = self.states.get(new.key)
        if old == new and spec is None:
            return
        events = []
        if transition is not None:
            events.append(Event(kind="breaker", target=new.key, action=transition,
                                outcome=new.state, detail={"reason": reason, **detail}))
        state = dataclasses.asdict(new)
        state["failures"] = list(new.failures)
        await self.journal.save_breaker(new.key, state, spec, events)
        self.states[new.key] = new
        if spec is not None:
            self.specs[new.key] = spec
        self._gauge(new)

    def cooldown(self, key: str) -> float:
        return float(self.specs.get(key, {}).get("cooldown", 600.0))

    async def failure(self, key: str, spec: dict[str, Any], reason: str) -> str | None:
        now = self.clock()
        new, transition = sm.record_failure(self.get(key), now, int(spec["threshold"]),
                                            float(spec["window"]))
        await self._save(new, transition, spec, reason)
        return transition

    async def success(self, key: str, reason: str) -> str | None:
        if key not in self.states:
            return None
        new, transition = sm.record_success(self.get(key), self.clock())
        await self._save(new, transition, None, reason)
        return transition

    async def allow(self, key: str) -> bool:
        allowed, new, transition = sm.allow(self.get(key), self.clock(), self.cooldown(key))
        await self._save(new, transition, None, "cooldown elapsed")
        return allowed

    async def trip(self, key: str, cooldown: float | None, reason: str) -> str | None:
        new, transition = sm.trip(self.get(key), self.clock())
        spec = dict(self.specs.get(key, {}))
        if cooldown is not None:
            spec["cooldown"] = cooldown
        await self._save(new, transition, spec or None, reason)
        return transition

    async def reset(self, key: str, reason: str) -> str | None:
        new, transition = sm.reset(self.get(key), self.clock())
        await self._save(new, transition, None, reason)
        return transition

    async def tick(self) -> list[str]:
        """Move breakers whose cooldown has elapsed to half-open; returns their keys."""
        moved = []
        for key, state in list(self.states.items()):
            if state.state != "open":
                continue
            due = sm.next_half_open(state, self.cooldown(key))
            if due is not None and due <= self.clock():
                _, new, transition = sm.allow(state, self.clock(), self.cooldown(key))
                if transition == "half_opened":
                    # Moving to half-open must not spend the single trial: keep it unclaimed.
                    new = dataclasses.replace(new, trial_in_flight=False)
                    await self._save(new, transition, None, "cooldown elapsed")
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
