"""What happens to an attempt once the gate has spoken, and the facts the gate reads.

A verdict becomes journal state here: a held attempt is looked at again shortly, a
refused one is done and escalates, a run calls the backend. The backend's answer decides
the rest: ``TemporaryError`` comes back with the ``TRANSIENT_ACTION`` backoff, a
``PermanentError`` fails the attempt (and counts toward the breaker, and escalates), a
success chains attempt ``n+1`` of a workflow retry ``Backoff`` later, until the budget is
spent and a final ``escalate`` attempt waits for the next confirmation.

Breaker transitions and ``breaker.*`` actions are ``act/transitions.py``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

from responder.act import gate as g
from responder.act.argo import ActionResult, Backend
from responder.act.breaker_store import BreakerStore
from responder.act.context import action_event, attempt_backoff
from responder.act.escalation import Escalations
from responder.act.plan import CHAINED
from responder.act.transitions import Transitions
from responder.backoff import TRANSIENT_ACTION
from responder.errors import PermanentError, TemporaryError
from responder.journal import Attempt, Event, Journal
from responder.metrics import Metrics

log = logging.getLogger("responder.act")
HOLD_RECHECK = 1.0   # a held attempt is looked at again this often while paused


class Attempts:
    def __init__(self, journal: Journal, metrics: Metrics, backend: Backend,
                 breakers: BreakerStore, transitions: Transitions, escalations: Escalations, *,
                 clock: Callable[[], float], can_read: bool,
                 random: Callable[[], float] = random.random) -> None:
        self.journal = journal
        self.metrics = metrics
        self.backend = backend
        self.breakers = breakers
        self.transitions = transitions
        self.escalations = escalations
        self.clock = clock
        self.can_read = can_read
        self.random = random

    # -- the facts the gate asks for ---------------------------------------------------
    async def fact(self, a: Attempt, name: str) -> tuple[Any, list[Event]]:
        key = str(a.context.get("breaker_key") or "")
        if name == "breaker_allows":
            return await self.breakers.allow(key), []
        if name == "phase":
            return await self._phase(a), []
        if name == "failure_opened":
            transition = await self.breakers.failure(key, a.context["breaker"], "still failing")
            if transition == "opened":
                return True, await self.transitions.transition(key, "opened", a.context)
            return False, []
        if name == "rate_wait":
            spec = a.context["rate_limit"]
            max_actions, window = int(spec["max_actions"]), float(spec["window"])
            ok, wait = await self.journal.acquire_rate(f"{a.target}|{max_actions}/{window:g}",
                                                       max_actions, window, self.clock())
            return (0.0 if ok else max(wait, 1e-3)), []
        raise ValueError(f"the gate asked for an unknown fact {name!r}")

    async def _phase(self, a: Attempt) -> str:
        ns, name = a.params.get("namespace"), a.params.get("workflow")
        if not (self.can_read and ns and name):
            return g.UNREADABLE   # a waiting attempt gets here only once a re-send confirmed it
        try:
            workflow = await self.backend.get_workflow(str(ns), str(name))
        except (TemporaryError, PermanentError):
            return g.UNREADABLE
        if workflow is None:
            return g.UNREADABLE
        return str((workflow.get("status") or {}).get("phase") or "Pending")

    # -- verdicts ----------------------------------------------------------------------
    async def apply(self, a: Attempt, verdict: g.Verdict, facts: g.Facts) -> list[Event]:
        journal, metrics = self.journal, self.metrics
        now = facts.now
        ctx = a.context
        if isinstance(verdict, g.Run):
            if a.action.startswith("breaker."):
                return await self.transitions.breaker_action(a)
            return await self._call(a)
        if isinstance(verdict, g.Hold):
            first = a.outcome != "paused"
            await journal.update_attempt(a.id, state="scheduled", outcome="paused",
                                         detail=verdict.reason, due_at=now + HOLD_RECHECK)
            if not first:
                return []
            metrics.actions.labels(a.action, "paused").inc()
            return [action_event(a, "paused", {"reason": verdict.reason})]
        if isinstance(verdict, g.Refuse):
            await journal.update_attempt(a.id, state="done", outcome=verdict.outcome,
                                         detail=verdict.reason)
            metrics.actions.labels(a.action, verdict.outcome).inc()
            return [action_event(a, verdict.outcome, {"breaker": ctx.get("breaker_key")}),
                    *await self.escalations.escalate(ctx, a.receipt_id, a.instance,
                                                     verdict.reason)]
        if isinstance(verdict, g.Wait):
            await journal.update_attempt(a.id, state="scheduled", due_at=verdict.until)
            if verdict.outcome == "rate_limited":
                metrics.actions.labels(a.action, "rate_limited").inc()
                return [action_event(a, "rate_limited", {"retry_in": round(verdict.until - now, 3)})]
            return [action_event(a, "waiting", {"phase": facts.phase})]
        if isinstance(verdict, g.Recovered):
            await journal.update_attempt(a.id, state="done", outcome="recovered",
                                         detail=f"workflow {verdict.phase}")
            metrics.retry_success.inc()
            return [action_event(a, "recovered", {"phase": verdict.phase})]
        if isinstance(verdict, g.Exhausted):
            await journal.update_attempt(a.id, state="done", outcome="exhausted",
                                         detail=f"retry budget of {verdict.limit} spent")
            metrics.retry_budget_exhausted.labels(a.runbook).inc()
            return [action_event(a, "exhausted", {"limit": verdict.limit}),
                    *await self.escalations.escalate(ctx, a.receipt_id, a.instance,
                                                     verdict.reason)]
        raise AssertionError(f"unhandled verdict {verdict!r}")

    # -- the backend call --------------------------------------------------------------
    async def _call(self, a: Attempt) -> list[Event]:
        started = time.perf_counter()
        try:
            result = await self.backend.execute(a.action, a.params)
        except TemporaryError as exc:
            self.metrics.action_duration.labels(a.action).observe(time.perf_counter() - started)
            tries = int(a.context.get("_tries", 0)) + 1
            if TRANSIENT_ACTION.gives_up(tries):
                return await self._failed(a, f"gave up after {tries} tries: {exc}")
            delay = TRANSIENT_ACTION.delay(tries, retry_after=exc.delay, random=self.random)
            await self._retry_later(a, self.clock() + delay, tries)
            self.metrics.actions.labels(a.action, "retrying").inc()
            return [action_event(a, "retrying", {"error": str(exc), "try": tries,
                                               "retry_in": delay})]
        except PermanentError as exc:
            self.metrics.action_duration.labels(a.action).observe(time.perf_counter() - started)
            return await self._failed(a, str(exc))
        self.metrics.action_duration.labels(a.action).observe(time.perf_counter() - started)
        return await self._succeeded(a, result)

    async def _retry_later(self, a: Attempt, due: float, tries: int) -> None:
        await self.journal.retry_attempt(a.id, due_at=due, tries=tries)

    async def _succeeded(self, a: Attempt, result: ActionResult) -> list[Event]:
        self.metrics.actions.labels(a.action, result.outcome).inc()
        await self.journal.update_attempt(a.id, state="done", outcome=result.outcome,
                                          detail=result.detail, executed_at=self.clock())
        events = [action_event(a, result.outcome, {"detail": result.detail,
                                                 "phase": result.phase, "attempt": a.n})]
        if a.action in CHAINED and result.outcome in ("success", "dry_run"):
            if result.outcome == "success":
                self.metrics.retry_attempts.inc()
            events.extend(await self._chain(a))
        return events

    async def _chain(self, a: Attempt) -> list[Event]:
        """Schedule attempt n+1, or the final ``escalate`` once the budget is spent."""
        retry = a.context["retry"]
        n = a.n + 1
        due = self.clock() + attempt_backoff(a.context).delay(n)
        state = "scheduled" if self.can_read else "waiting"
        nxt = await self.journal.schedule_attempt(
            instance=a.instance, runbook=a.runbook, target=a.target, n=n,
            action=a.action if a.n < int(retry["limit"]) else g.ESCALATE, params=a.params,
            due_at=due, receipt_id=a.receipt_id, context=a.context, state=state)
        if nxt is None:
            return []
        return [action_event(nxt, state, {"due_in": round(due - self.clock(), 3),
                                        "reason": "runs if the failure persists after the backoff"})]

    async def _failed(self, a: Attempt, error: str) -> list[Event]:
        self.metrics.actions.labels(a.action, "failed").inc()
        await self.journal.update_attempt(a.id, state="failed", outcome="failed", detail=error,
                                          executed_at=self.clock())
        events = [action_event(a, "failed", {"error": error})]
        key = a.context.get("breaker_key")
        if a.context.get("breaker_action"):
            return events
        if key:
            transition = await self.breakers.failure(key, a.context["breaker"], error)
            if transition == "opened":
                events.extend(await self.transitions.transition(key, "opened", a.context))
        return events + await self.escalations.escalate(a.context, a.receipt_id, a.instance,
                                                        f"{a.action} failed: {error}")
