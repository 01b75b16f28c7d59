"""Breaker transitions: ``on_open``/``on_close`` once per transition, and ``breaker.*``.

A breaker that opens (or closes) schedules its runbook's ``on_open`` (``on_close``)
actions as attempts of an instance named after the transition itself, so however many
alerts, replicas or re-processed deliveries see the same transition, its actions run
once. ``breaker.trip`` and ``breaker.reset`` are the runbook actions that move a breaker
by hand; they transition like any other move.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from responder.act.breaker_store import BreakerStore
from responder.act.context import action_event
from responder.config.durations import parse_duration
from responder.journal import Attempt, Event, Journal
from responder.metrics import Metrics


class Transitions:
    def __init__(self, journal: Journal, metrics: Metrics, breakers: BreakerStore,
                 clock: Callable[[], float]) -> None:
        self.journal = journal
        self.metrics = metrics
        self.breakers = breakers
        self.clock = clock

    async def breaker_action(self, a: Attempt) -> list[Event]:
        key = str(a.params.get("key", ""))
        if a.action == "breaker.trip":
            cooldown = a.params.get("for")
            seconds = parse_duration(str(cooldown)) if cooldown else None
            transition = await self.breakers.trip(key, seconds, f"runbook {a.runbook}")
        else:
            transition = await self.breakers.reset(key, f"runbook {a.runbook}")
        await self.journal.update_attempt(a.id, state="done", outcome="success",
                                          detail=f"breaker {key}: {transition or 'unchanged'}",
                                          executed_at=self.clock())
        self.metrics.actions.labels(a.action, "success").inc()
        events = [action_event(a, "success", {"breaker": key, "transition": transition})]
        if transition in ("opened", "closed"):
            spec_ctx = self.breakers.specs.get(key, {}).get("context", a.context)
            events.extend(await self.transition(key, transition, spec_ctx))
        return events

    async def transition(self, key: str, transition: str,
                         ctx: Mapping[str, Any]) -> list[Event]:
        """Schedule ``on_open``/``on_close`` once for this transition."""
        spec = self.breakers.specs.get(key) or ctx.get("breaker") or {}
        actions = spec.get("on_open" if transition == "opened" else "on_close", [])
        state = self.breakers.get(key)
        stamp = state.opened_at if transition == "opened" else self.clock()
        instance = f"breaker:{key}:{transition}:{stamp}"
        events = []
        for action in actions:
            attempt = await self.journal.schedule_attempt(
                instance=instance, runbook=str(spec.get("runbook", ctx.get("runbook", ""))),
                target=action["target"], n=1, action=action["kind"], params=action["params"],
                due_at=self.clock(), receipt_id=None,
                context={**dict(ctx), "breaker_action": True})
            if attempt is not None:
                events.append(action_event(attempt, "scheduled", {"on": transition, "breaker": key}))
        if transition == "opened":
            self.metrics.manual_interventions.inc()
        return events
