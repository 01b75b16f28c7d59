"""Actions under retry budgets, breakers and rate limits, durable as journal attempts.

Every action is an attempt row before it runs: ``(instance, runbook, target, n)`` is
unique, so a duplicate delivery can never make attempt n run twice, and a scheduled
attempt survives a restart or ``kill -9``. Attempt 1 of a workflow retry waits the
backoff ``duration`` (as Argo's own retryStrategy does); attempt n+1 is scheduled when n
has run, ``duration * factor^n`` later (capped). It runs only once the failure is
confirmed: the workflow's phase says Failed/Error where it can be read, otherwise
Alertmanager's re-send of the still-firing alert after the backoff. When the budget is
spent, a final ``escalate`` attempt turns the next confirmation into ``on_exhausted``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from responder.act.argo import ActionResult, Backend, DryRunBackend
from responder.act.breaker_store import BreakerStore
from responder.act.budget import backoff_delay
from responder.act.plan import PlannedAction, RunbookPlan
from responder.act.ratelimit import SlidingWindow
from responder.config.durations import format_duration, parse_duration
from responder.errors import PermanentError, TemporaryError
from responder.journal import Attempt, Event, JournalUnavailable, OutboxMessage, Receipt
from responder.load import Runtime
from responder.model import Alert, AlertGroup, alert_from_dict, group_from_dict
from responder.outbox import Notifier, Target
from responder.service import Service
from responder.work import AlertWork

log = logging.getLogger("responder.act")
CHAINED = frozenset({"argo.retry", "argo.resubmit"})
ESCALATE = "escalate"
MAX_TRANSIENT_TRIES = 6
FAILED_PHASES = frozenset({"Failed", "Error"})


@dataclasses.dataclass(frozen=True, slots=True)
class Escalation:
    """An escalation decided while a delivery is processed, its message not yet sent."""

    context: Mapping[str, Any]
    receipt_id: int | None
    instance: str
    reason: str


class Actor:
    def __init__(self, service: Service, backend: Backend, notifier: Notifier,
                 breakers: BreakerStore) -> None:
        self.service = service
        self.backend = backend
        self.notifier = notifier
        self.breakers = breakers
        self._limiters: dict[tuple[int, float], SlidingWindow] = {}

    @property
    def can_read(self) -> bool:
        """Whether workflow phases can be read (a dry run may still read the cluster)."""
        backend = self.backend
        return not isinstance(backend, DryRunBackend) or backend.reader is not None

    def _limiter(self, max_actions: int, window: float) -> SlidingWindow:
        key = (max_actions, window)
        if key not in self._limiters:
            self._limiters[key] = SlidingWindow(max_actions, window)
        return self._limiters[key]

    def _now(self) -> float:
        return self.service.clock()

    # -- the pipeline's entry points ---------------------------------------------------
    async def on_firing(self, runtime: Runtime, group: AlertGroup, work: AlertWork,
                        escalations: list[Escalation] | None = None) -> list[Event]:
        """Schedule the alert's actions. Escalations are added to ``escalations`` when
        given (the caller sends one message per group, see ``notify_escalations``)."""
        events: list[Event] = []
        for p in work.plans:
            summaries = work.actions.setdefault(p.runbook.name, [])
            context = self._context(group, work, p)
            if p.breaker_key and p.runbook.breaker is not None:
                transition = await self.breakers.failure(
                    p.breaker_key, context["breaker"], f"{work.alert.alertname} firing")
                if transition == "opened":
                    events.extend(await self._transition(p.breaker_key, "opened", context))
            if not p.actions:
                continue
            refusal = await self._refusal(p, work)
            if refusal is not None:
                outcome, reason = refusal
                for action in p.actions:
                    summaries.append(_summary(action, outcome, reason, 0, p.runbook.retry.limit))
                    self.service.metrics.actions.labels(action.kind, outcome).inc()
                    events.append(Event(kind="action", receipt_id=work.receipt.id,
                                        instance=work.receipt.instance, runbook=p.runbook.name,
                                        action=action.kind, target=action.target, outcome=outcome,
                                        detail={"reason": reason, "params": action.params}))
                events.extend(await self._escalate(context, work.receipt.id,
                                                   work.receipt.instance, reason,
                                                   collect=escalations))
                continue
            state, outcome, why = "scheduled", "scheduled", ""
            pause = self.service.pause_for(work.alert.labels)
            if p.runbook.approval is not None:
                state, outcome, why = "approval", "awaiting_approval", "waits for a person"
            elif pause is not None:
                state, outcome, why = "held", "paused", f"held by pause {pause.id}"
            asked: list[Attempt] = []
            for action in p.actions:
                delay = (backoff_delay(1, **_backoff(context)) if action.kind in CHAINED else 0.0)
                attempt = await self.service.journal.schedule_attempt(
                    instance=work.receipt.instance, runbook=p.runbook.name, target=action.target,
                    n=1, action=action.kind, params=action.params, due_at=self._now() + delay,
                    receipt_id=work.receipt.id, context=context, state=state)
                summaries.append(_summary(action, outcome, why or (
                    f"attempt 1 of {p.runbook.retry.limit} in {delay:g}s"
                    if action.kind in CHAINED else "runs now"), 1, p.runbook.retry.limit))
                if attempt is not None:
                    asked.append(attempt)
                    if outcome == "paused":
                        self.service.metrics.actions.labels(action.kind, "paused").inc()
                    events.append(Event(kind="action", receipt_id=work.receipt.id,
                                        instance=work.receipt.instance, runbook=p.runbook.name,
                                        action=action.kind, target=action.target,
                                        outcome=outcome,
                                        detail={"attempt": 1, "due_in": delay,
                                                "params": action.params,
                                                **({"reason": why} if why else {}),
                                                **({"pause": pause.id}
                                                   if pause is not None else {})}))
            if state == "approval" and asked:
                events.extend(await self.ask_approval(group, work, p, asked))
        self.service.attempts_changed.set()
        return events

    async def ask_approval(self, group: AlertGroup, work: AlertWork, p: RunbookPlan,
                           attempts: Sequence[Attempt]) -> list[Event]:
        """Record the question (once per instance and runbook) and ask the runbook's
        ``approval.notify`` channels; Slack channels with a signing secret get buttons."""
        spec = p.runbook.approval
        assert spec is not None
        runtime = self.service.runtime
        actions = [{"kind": a.action, "target": a.target, "params": a.params} for a in attempts]
        approval = await self.service.journal.ask_approval(
            instance=work.receipt.instance, runbook=p.runbook.name, receipt_id=work.receipt.id,
            attempts=[a.id for a in attempts], timeout_at=self._now() + spec.timeout,
            on_timeout=spec.on_timeout,
            summary={"labels": dict(work.alert.labels), "actions": actions,
                     "category": work.analysis.category,
                     "notify": [n.channel for n in spec.notify]})
        if approval is None:
            return []
        events = [Event(kind="approval", receipt_id=work.receipt.id,
                        instance=work.receipt.instance, runbook=p.runbook.name, outcome="asked",
                        detail={"approval": approval.id, "timeout_at": approval.timeout_at,
                                "on_timeout": spec.on_timeout, "actions": actions})]
        detail = (", ".join(f"{a['kind']} {a['target']}" for a in actions)
                  + f"; no decision in {format_duration(spec.timeout)}: {spec.on_timeout}")
        for n in spec.notify:
            channel = runtime.config.channels.get(n.channel)
            settings = channel.settings if channel is not None else None
            buttons = bool(getattr(settings, "signing_secret", None))
            events.extend(await self.notifier.notify(
                runtime, group=group, alerts=[work.alert], analysis=work.analysis.to_dict(),
                actions=[{"kind": a["kind"], "target": a["target"], "outcome": "awaiting_approval",
                          "detail": detail, "approval_id": approval.id, "buttons": buttons}
                         for a in actions],
                runbook={"name": p.runbook.name, "description": p.runbook.description},
                target=Target(n.channel, n.template, n.fallback), event="approval",
                dedup=f"approval:{approval.id}:{n.channel}", receipt_id=work.receipt.id))
        return events

    async def on_resend(self, runtime: Runtime, receipt: Receipt, alert: Alert) -> list[Event]:
        """A re-send of a firing alert: confirms 'still failing' for attempts now due."""
        if receipt.status != "firing":
            return []
        events: list[Event] = []
        now = self._now()
        for attempt in await self.service.journal.attempts_for(receipt.instance):
            if attempt.state == "waiting" and attempt.due_at <= now:
                if await self.service.journal.update_attempt(
                        attempt.id, state="scheduled", due_at=now, expect_state="waiting"):
                    events.append(Event(kind="action", receipt_id=receipt.id,
                                        instance=receipt.instance, runbook=attempt.runbook,
                                        action=attempt.action, target=attempt.target,
                                        outcome="confirmed",
                                        detail={"attempt": attempt.n,
                                                "reason": "alert re-sent after backoff: still failing"}))
        if events:
            self.service.attempts_changed.set()
        return events

    async def on_resolved(self, runtime: Runtime, group: AlertGroup,
                          work: AlertWork) -> list[Event]:
        """Close the instance's attempts, count recovery, close half-open breakers."""
        journal = self.service.journal
        metrics = self.service.metrics
        events: list[Event] = []
        attempts = await journal.attempts_for(work.receipt.instance)
        acted = False
        keys: dict[str, dict[str, Any]] = {}
        for attempt in attempts:
            if attempt.state in ("scheduled", "waiting", "held", "approval"):
                await journal.update_attempt(attempt.id, state="cancelled", outcome="resolved",
                                             detail="alert resolved")
            if attempt.action in CHAINED and attempt.outcome in ("success", "dry_run"):
                acted = True
            key = attempt.context.get("breaker_key")
            if key:
                keys[key] = attempt.context
        for p in work.plans:
            if p.breaker_key:
                keys.setdefault(p.breaker_key, self._context(group, work, p))
        if acted:
            metrics.retry_success.inc()
            metrics.recovery_success.inc()
        if attempts:
            events.append(Event(kind="recovery", receipt_id=work.receipt.id,
                                instance=work.receipt.instance,
                                outcome="recovered" if acted else "resolved",
                                detail={"attempts": len(attempts)}))
        for key, context in keys.items():
            transition = await self.breakers.success(key, "alert resolved")
            if transition == "closed":
                events.extend(await self._transition(key, "closed", context))
        await journal.close_approvals(work.receipt.instance, "resolved", "alert resolved")
        events.extend(await self._resolve_escalations(runtime, group, work))
        self.service.attempts_changed.set()
        return events

    # -- the scheduler -----------------------------------------------------------------
    async def run(self) -> None:
        service = self.service
        await self._recover_running()
        while True:
            service.attempts_changed.clear()
            try:
                for key in await self.breakers.tick():
                    log.info("breaker %s half-open", key)
                await self.release_held()
                due = await service.journal.due_attempts(self._now(), limit=50)
                for attempt in due:
                    await self.execute(attempt)
                next_due = await service.journal.next_attempt_due()
            except JournalUnavailable as exc:
                log.error("journal unavailable: %s", exc)
                await asyncio.sleep(1.0)
                continue
            if len(due) == 50:
                continue
            wake = [t for t in (next_due, self.breakers.next_half_open_at(),
                                self._next_pause_end()) if t is not None]
            timeout = min(5.0, max(0.0, min(wake) - self._now())) if wake else 5.0
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that races with the event, and then shutdown waits for ever.
            try:
                async with asyncio.timeout(timeout):
                    await service.attempts_changed.wait()
            except TimeoutError:
                pass

    def _next_pause_end(self) -> float | None:
        ends = [p.until for p in self.service.pauses if p.until is not None]
        return min(ends) if ends else None

    async def release_held(self) -> int:
        """Held attempts whose pause has ended (lifted, expired) are scheduled again; their
        alert still fires (a resolve cancels them) and the action re-reads the phase."""
        service = self.service
        await service.refresh_pauses()
        held = await service.journal.attempts_in(("held",))
        free = [a for a in held if service.pause_for(a.context.get("alert", {}).get("labels", {}))
                is None]
        if not free:
            return 0
        count = await service.journal.release_held(
            [a.id for a in free], [self._event(a, "released", {"reason": "pause ended"})
                                   for a in free])
        log.info("%d held actions released", count)
        return count

    async def _recover_running(self) -> None:
        """An attempt caught mid-flight by a crash runs again (the phase check guards it)."""
        def reset(db: Any) -> int:
            return int(db.execute("UPDATE attempts SET state = 'scheduled' "
                                  "WHERE state = 'running'").rowcount)

        count = await self.service.journal.tx(reset)
        if count:
            log.warning("%d attempts were running at the last stop; rescheduled", count)

    async def execute(self, attempt: Attempt) -> None:
        journal = self.service.journal
        if not await journal.update_attempt(attempt.id, state="running", expect_state="scheduled"):
            return
        try:
            events = await self._execute(attempt)
        except JournalUnavailable:
            raise
        except Exception as exc:
            log.exception("attempt %d failed unexpectedly", attempt.id)
            await journal.update_attempt(attempt.id, state="failed", outcome="failed",
                                         detail=f"internal error: {type(exc).__name__}")
            events = [self._event(attempt, "failed", {"error": f"internal error: {exc}"})]
        await journal.add_events(events)

    async def _execute(self, a: Attempt) -> list[Event]:
        journal = self.service.journal
        metrics = self.service.metrics
        ctx = a.context
        now = self._now()
        pause = self.service.pause_for(ctx.get("alert", {}).get("labels", {}))
        if pause is not None and a.action != ESCALATE:
            await journal.update_attempt(a.id, state="held", outcome="paused",
                                         detail=f"held by pause {pause.id}")
            metrics.actions.labels(a.action, "paused").inc()
            return [self._event(a, "paused", {"reason": f"held by pause {pause.id}",
                                              "pause": pause.id})]
        key = ctx.get("breaker_key")
        if a.action.startswith("breaker."):
            return await self._breaker_action(a)
        if key and not ctx.get("breaker_action") and a.action != ESCALATE:
            if not await self.breakers.allow(key):
                await journal.update_attempt(a.id, state="done", outcome="breaker_open",
                                             detail=f"breaker {key} is open")
                metrics.actions.labels(a.action, "breaker_open").inc()
                return [self._event(a, "breaker_open", {"breaker": key}),
                        *await self._escalate(ctx, a.receipt_id, a.instance,
                                              f"breaker {key} is open")]
        if a.n > 1 or a.action == ESCALATE:
            confirmed = await self._still_failing(a)
            if confirmed is not None:
                return confirmed
            events: list[Event] = []
            opened = False
            if key:
                transition = await self.breakers.failure(key, ctx["breaker"], "still failing")
                if transition == "opened":
                    opened = True
                    events.extend(await self._transition(key, "opened", ctx))
            if a.action == ESCALATE:
                limit = int(ctx.get("retry", {}).get("limit", 0))
                await journal.update_attempt(a.id, state="done", outcome="exhausted",
                                             detail=f"retry budget of {limit} spent")
                metrics.retry_budget_exhausted.labels(a.runbook).inc()
                return [*events, self._event(a, "exhausted", {"limit": limit}),
                        *await self._escalate(ctx, a.receipt_id, a.instance,
                                              f"retry budget of {limit} spent, still failing")]
            if opened:
                await journal.update_attempt(a.id, state="done", outcome="breaker_open",
                                             detail=f"breaker {key} opened")
                return [*events, self._event(a, "breaker_open", {"breaker": key}),
                        *await self._escalate(ctx, a.receipt_id, a.instance,
                                              f"breaker {key} opened")]
        limit_spec = ctx.get("rate_limit") or {}
        if limit_spec:
            limiter = self._limiter(int(limit_spec["max_actions"]), float(limit_spec["window"]))
            ok, wait = limiter.try_acquire(a.target, now)
            if not ok:
                await journal.update_attempt(a.id, state="scheduled", due_at=now + wait)
                metrics.actions.labels(a.action, "rate_limited").inc()
                return [self._event(a, "rate_limited", {"retry_in": round(wait, 3)})]
        started = time.perf_counter()
        try:
            result = await self.backend.execute(a.action, a.params)
        except TemporaryError as exc:
            tries = int(ctx.get("_tries", 0)) + 1
            metrics.action_duration.labels(a.action).observe(time.perf_counter() - started)
            if tries < MAX_TRANSIENT_TRIES:
                delay = exc.delay if exc.delay is not None else min(0.5 * 2.0 ** (tries - 1), 60.0)
                await journal.tx(lambda db: db.execute(
                    "UPDATE attempts SET state = 'scheduled', due_at = ?, context = json_set("
                    "context, '$._tries', ?) WHERE id = ?", (now + delay, tries, a.id)))
                metrics.actions.labels(a.action, "retrying").inc()
                return [self._event(a, "retrying", {"error": str(exc), "try": tries,
                                                    "retry_in": delay})]
            return await self._failed(a, f"gave up after {tries} tries: {exc}")
        except PermanentError as exc:
            metrics.action_duration.labels(a.action).observe(time.perf_counter() - started)
            return await self._failed(a, str(exc))
        metrics.action_duration.labels(a.action).observe(time.perf_counter() - started)
        return await self._succeeded(a, result)

    async def _still_failing(self, a: Attempt) -> list[Event] | None:
        """None when the failure is confirmed; else the events of a recovery or a wait."""
        journal = self.service.journal
        ns, name = a.params.get("namespace"), a.params.get("workflow")
        if not (self.can_read and ns and name):
            return None  # a waiting attempt reaches here only after a re-send confirmed it
        try:
            workflow = await self.backend.get_workflow(str(ns), str(name))
        except (TemporaryError, PermanentError):
            return None
        phase = ((workflow or {}).get("status") or {}).get("phase")
        if phase in FAILED_PHASES or workflow is None:
            return None
        if phase == "Succeeded":
            await journal.update_attempt(a.id, state="done", outcome="recovered",
                                         detail="workflow Succeeded")
            self.service.metrics.retry_success.inc()
            return [self._event(a, "recovered", {"phase": phase})]
        retry = a.context.get("retry", {})
        await journal.update_attempt(a.id, state="scheduled",
                                     due_at=self._now() + float(retry.get("duration", 30.0)))
        return [self._event(a, "waiting", {"phase": phase})]

    async def _succeeded(self, a: Attempt, result: ActionResult) -> list[Event]:
        journal = self.service.journal
        metrics = self.service.metrics
        metrics.actions.labels(a.action, result.outcome).inc()
        await journal.update_attempt(a.id, state="done", outcome=result.outcome,
                                     detail=result.detail, executed_at=self._now())
        events = [self._event(a, result.outcome, {"detail": result.detail, "phase": result.phase,
                                                   "attempt": a.n})]
        if a.action in CHAINED and result.outcome in ("success", "dry_run"):
            if result.outcome == "success":
                metrics.retry_attempts.inc()
            retry = a.context["retry"]
            n = a.n + 1
            action = a.action if a.n < int(retry["limit"]) else ESCALATE
            due = self._now() + backoff_delay(n, **_backoff(a.context))
            nxt = await journal.schedule_attempt(
                instance=a.instance, runbook=a.runbook, target=a.target, n=n, action=action,
                params=a.params, due_at=due, receipt_id=a.receipt_id, context=a.context,
                state="scheduled" if self.can_read else "waiting")
            if nxt is not None:
                events.append(self._event(nxt, "waiting" if not self.can_read else "scheduled", {
                    "due_in": round(due - self._now(), 3),
                    "reason": "runs if the failure persists after the backoff"}))
        return events

    async def _failed(self, a: Attempt, error: str) -> list[Event]:
        journal = self.service.journal
        self.service.metrics.actions.labels(a.action, "failed").inc()
        await journal.update_attempt(a.id, state="failed", outcome="failed", detail=error,
                                     executed_at=self._now())
        events = [self._event(a, "failed", {"error": error})]
        key = a.context.get("breaker_key")
        if key and not a.context.get("breaker_action"):
            transition = await self.breakers.failure(key, a.context["breaker"], error)
            if transition == "opened":
                events.extend(await self._transition(key, "opened", a.context))
        if not a.context.get("breaker_action"):
            events.extend(await self._escalate(a.context, a.receipt_id, a.instance,
                                               f"{a.action} failed: {error}"))
        return events

    async def _breaker_action(self, a: Attempt) -> list[Event]:
        key = str(a.params.get("key", ""))
        if a.action == "breaker.trip":
            cooldown = a.params.get("for")
            seconds = parse_duration(str(cooldown)) if cooldown else None
            transition = await self.breakers.trip(key, seconds, f"runbook {a.runbook}")
        else:
            transition = await self.breakers.reset(key, f"runbook {a.runbook}")
        await self.service.journal.update_attempt(a.id, state="done", outcome="success",
                                                  detail=f"breaker {key}: {transition or 'unchanged'}",
                                                  executed_at=self._now())
        self.service.metrics.actions.labels(a.action, "success").inc()
        events = [self._event(a, "success", {"breaker": key, "transition": transition})]
        if transition in ("opened", "closed"):
            spec_ctx = self.breakers.specs.get(key, {}).get("context", a.context)
            events.extend(await self._transition(key, transition, spec_ctx))
        return events

    async def reset_breaker(self, key: str, who: str) -> str | None:
        """The operator's manual close: runs ``on_close`` like any other closing."""
        transition = await self.breakers.reset(key, f"manual reset by {who}")
        events: list[Event] = []
        if transition == "closed":
            events = await self._transition(key, "closed", self.breakers.specs.get(key, {}))
        await self.service.journal.add_events(events)
        return transition

    # -- transitions and escalation ----------------------------------------------------
    async def _transition(self, key: str, transition: str, ctx: Mapping[str, Any]) -> list[Event]:
        """Schedule ``on_open``/``on_close`` once for this transition."""
        spec = self.breakers.specs.get(key) or ctx.get("breaker") or {}
        actions = spec.get("on_open" if transition == "opened" else "on_close", [])
        state = self.breakers.get(key)
        stamp = state.opened_at if transition == "opened" else self._now()
        instance = f"breaker:{key}:{transition}:{stamp}"
        events = []
        for action in actions:
            context = {**dict(ctx), "breaker_action": True}
            attempt = await self.service.journal.schedule_attempt(
                instance=instance, runbook=str(spec.get("runbook", ctx.get("runbook", ""))),
                target=action["target"], n=1, action=action["kind"], params=action["params"],
                due_at=self._now(), receipt_id=None, context=context)
            if attempt is not None:
                events.append(self._event(attempt, "scheduled", {"on": transition, "breaker": key}))
        if transition == "opened":
            self.service.metrics.manual_interventions.inc()
        self.service.attempts_changed.set()
        return events

    async def escalate(self, ctx: Mapping[str, Any], receipt_id: int | None, instance: str,
                       reason: str) -> list[Event]:
        """``on_exhausted`` for one alert instance, from outside a delivery."""
        return await self._escalate(ctx, receipt_id, instance, reason)

    async def _escalate(self, ctx: Mapping[str, Any], receipt_id: int | None, instance: str,
                        reason: str, collect: list[Escalation] | None = None) -> list[Event]:
        """``on_exhausted`` once per alert instance and runbook; counted as manual work.

        With ``collect`` the message is left to ``notify_escalations``, which sends one
        per group, runbook and channel for everything a delivery escalated."""
        runbook = str(ctx.get("runbook", ""))
        # The marker keeps what a resolve needs: an escalation refused before any attempt
        # existed (not retryable, breaker open) has no other row to read it from.
        marker = await self.service.journal.schedule_attempt(
            instance=instance, runbook=runbook, target="escalation", n=0, action="notify",
            params={"reason": reason}, due_at=self._now(), receipt_id=receipt_id,
            context={"on_exhausted": list(ctx.get("on_exhausted", [])),
                     "analysis": ctx.get("analysis"),
                     "group_key": ctx.get("group", {}).get("groupKey")}, state="done")
        if marker is None and not (collect is not None
                                   and await self._escalated_by(instance, runbook) == receipt_id):
            return []
        # (A marker of this very receipt means its delivery is being processed again after
        # a crash: its message went out with the delivery's commit, so it is queued again,
        # under the same per-delivery dedup key.)
        self.service.metrics.manual_interventions.inc()
        events = [Event(kind="escalation", receipt_id=receipt_id, instance=instance,
                        runbook=runbook, outcome="escalated", detail={"reason": reason})]
        escalation = Escalation(ctx, receipt_id, instance, reason)
        if collect is not None:
            collect.append(escalation)
            return events
        group = group_from_dict(ctx["group"], [ctx["alert"]])
        return events + await self.notify_escalations(self.service.runtime, group,
                                                      [escalation], scope=instance)

    async def notify_escalations(self, runtime: Runtime, group: AlertGroup,
                                 escalations: Sequence[Escalation], scope: str,
                                 collect: list[OutboxMessage] | None = None) -> list[Event]:
        """One ``on_exhausted`` message per runbook and channel for ``escalations``.

        The pipeline passes everything one delivery escalated (``scope`` is the delivery),
        so an alert storm in one Alertmanager group pages once, listing every escalated
        alert; the scheduler passes one alert's escalation (``scope`` is its instance)."""
        buckets: dict[tuple[str, str], tuple[Mapping[str, Any], list[Escalation]]] = {}
        for escalation in escalations:
            runbook = str(escalation.context.get("runbook", ""))
            for target in escalation.context.get("on_exhausted", []):
                buckets.setdefault((runbook, target["channel"]), (target, []))[1].append(
                    escalation)
        events: list[Event] = []
        for (runbook, channel), (target, members) in buckets.items():
            first = members[0].context
            events.extend(await self.notifier.notify(
                runtime, group=group,
                alerts=[alert_from_dict(m.context["alert"]) for m in members],
                analysis=first.get("analysis"),
                actions=[{"kind": "escalation", "outcome": "escalated", "detail": m.reason,
                          "target": m.instance} for m in members],
                runbook={"name": runbook, "description": first.get("description", "")},
                target=Target(channel, target.get("template"), target.get("fallback")),
                event="escalation", dedup=f"esc:{scope}:{runbook}:{channel}",
                receipt_id=members[0].receipt_id, collect=collect))
        return events

    async def _escalated_by(self, instance: str, runbook: str) -> int | None:
        """The receipt whose processing escalated ``instance`` by ``runbook``, if any."""
        row = await self.service.journal.read(lambda db: db.execute(
            "SELECT receipt_id FROM attempts WHERE instance = ? AND runbook = ? AND "
            "target = 'escalation' AND n = 0", (instance, runbook)).fetchone())
        return row[0] if row is not None else None

    async def _open_escalations_in_group(self, group: AlertGroup, runbook: str,
                                         instance: str) -> int:
        """Other alerts of the group whose escalation by ``runbook`` is still firing."""
        rows = await self.service.journal.read(lambda db: db.execute(
            "SELECT a.context FROM attempts a WHERE a.target = 'escalation' AND "
            "a.action = 'notify' AND a.runbook = ? AND a.instance != ? AND NOT EXISTS ("
            "SELECT 1 FROM receipts r WHERE r.instance = a.instance AND "
            "r.status = 'resolved')", (runbook, instance)).fetchall())
        return sum(1 for (context,) in rows
                   if msgspec.json.decode(context).get("group_key") == group.group_key)

    async def _resolve_escalations(self, runtime: Runtime, group: AlertGroup,
                                   work: AlertWork) -> list[Event]:
        """A resolved alert resolves what its escalation opened (PagerDuty: same dedup_key)."""
        events: list[Event] = []
        firing_instance = work.receipt.instance
        for attempt in await self.service.journal.attempts_for(firing_instance):
            if attempt.action != "notify" or attempt.target != "escalation":
                continue
            ctx = await self._firing_context(firing_instance, attempt.runbook)
            if ctx is None:
                continue
            # The page is per group and runbook (one PagerDuty dedup_key): it is resolved
            # when the last escalated alert of the group resolves, not the first.
            still = await self._open_escalations_in_group(group, attempt.runbook,
                                                          firing_instance)
            if still:
                events.append(Event(kind="escalation", receipt_id=work.receipt.id,
                                    instance=firing_instance, runbook=attempt.runbook,
                                    outcome="resolve_deferred",
                                    detail={"still_firing": still}))
                continue
            for target in ctx.get("on_exhausted", []):
                channel = runtime.config.channels.get(target["channel"])
                if channel is None or channel.type != "pagerduty":
                    continue
                events.extend(await self.notifier.notify(
                    runtime, group=group, alerts=[work.alert], analysis=ctx.get("analysis"),
                    actions=[], runbook={"name": attempt.runbook},
                    target=Target(target["channel"], target.get("template")),
                    event="resolved", dedup=f"res:{firing_instance}:{attempt.runbook}:"
                                            f"{target['channel']}", receipt_id=work.receipt.id))
        return events

    async def _firing_context(self, instance: str, runbook: str) -> dict[str, Any] | None:
        row = await self.service.journal.read(lambda db: db.execute(
            "SELECT context FROM attempts WHERE instance = ? AND runbook = ? AND "
            "context IS NOT NULL AND context != '{}' ORDER BY n DESC LIMIT 1",
            (instance, runbook)).fetchone())
        if row is None:
            return None
        data: dict[str, Any] = msgspec.json.decode(row[0])
        return data

    # -- helpers -----------------------------------------------------------------------
    async def _refusal(self, p: RunbookPlan, work: AlertWork) -> tuple[str, str] | None:
        chained = any(a.kind in CHAINED for a in p.actions)
        if chained and not work.analysis.retryable and p.runbook.when_retryable is None:
            return ("not_retryable",
                    f"analysis says {work.analysis.category} is not retryable")
        if p.breaker_key and self.breakers.get(p.breaker_key).state == "open":
            return "breaker_open", f"breaker {p.breaker_key} is open"
        return None

    def _context(self, group: AlertGroup, work: AlertWork, p: RunbookPlan) -> dict[str, Any]:
        rb = p.runbook
        return {
            "runbook": rb.name,
            "description": rb.description,
            "group": group.to_dict(with_alerts=False),
            "alert": work.alert.to_dict(),
            "analysis": work.analysis.to_dict(),
            "retry": {"limit": rb.retry.limit, "duration": rb.retry.duration,
                      "factor": rb.retry.factor, "max_duration": rb.retry.max_duration},
            "rate_limit": {"max_actions": rb.rate_limit.max_actions,
                           "window": rb.rate_limit.window},
            "breaker_key": p.breaker_key,
            "breaker": None if rb.breaker is None else {
                "runbook": rb.name,
                "threshold": rb.breaker.threshold, "window": rb.breaker.window,
                "cooldown": rb.breaker.cooldown,
                "on_open": [_planned(x) for x in p.on_open],
                "on_close": [_planned(x) for x in p.on_close],
            },
            "on_exhausted": [{"channel": n.channel, "template": n.template,
                              "fallback": n.fallback} for n in p.on_exhausted],
        }

    @staticmethod
    def _event(a: Attempt, outcome: str, detail: dict[str, Any]) -> Event:
        return Event(kind="action", receipt_id=a.receipt_id, instance=a.instance,
                     runbook=a.runbook, action=a.action, target=a.target, outcome=outcome,
                     detail={"attempt": a.n, "params": a.params, **detail})


def _planned(action: PlannedAction) -> dict[str, Any]:
    return {"kind": action.kind, "params": action.params, "target": action.target}


def _backoff(ctx: Mapping[str, Any]) -> dict[str, float]:
    retry = ctx.get("retry") or {}
    return {"duration": float(retry.get("duration", 30.0)),
            "factor": float(retry.get("factor", 2.0)),
            "max_duration": float(retry.get("max_duration", 300.0))}


def _summary(action: PlannedAction, outcome: str, detail: str, attempt: int,
             limit: int) -> dict[str, Any]:
    return {"kind": action.kind, "target": action.target, "params": action.params,
            "outcome": outcome, "detail": detail, "attempt": attempt, "limit": limit}


