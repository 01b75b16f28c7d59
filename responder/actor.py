"""The pipeline's side of acting: a decided alert becomes attempts, breaker counts, pages.

Every action is an attempt row before it runs: ``(instance, runbook, target, n)`` is
unique, so a duplicate delivery can never make attempt n run twice, and a scheduled
attempt survives a restart or ``kill -9``. ``on_firing`` turns ``decide``'s decisions
into attempts (attempt 1 of a workflow retry waits the backoff ``duration``, as Argo's
own retryStrategy does) or into refusals that escalate; ``on_resend`` is Alertmanager's
"still failing" for an attempt waiting out its backoff; ``on_resolved`` closes it all.

What runs an attempt once it is due lives in ``responder.act``: the gate (``gate.py``),
the scheduler around it (``scheduler.py``, with the clock and sleeper passed in), what a
verdict does (``attempts.py``) and escalation (``escalation.py``). This module wires them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from responder.act import scheduler
from responder.act.argo import Backend, DryRunBackend
from responder.act.attempts import Attempts
from responder.act.breaker_store import BreakerStore
from responder.act.context import action_event, attempt_context, summary
from responder.act.escalation import Escalation, Escalations
from responder.act.plan import CHAINED, RunbookPlan
from responder.act.transitions import Transitions
from responder.config.durations import format_duration
from responder.decide import ASKED, PAUSED, RunbookDecision, State, decide_runbook
from responder.grouping import Target
from responder.journal import Attempt, Event, OutboxMessage, Receipt
from responder.load import Runtime
from responder.model import Alert, AlertGroup
from responder.outbox import Notifier
from responder.outbox import Target as OutboxTarget
from responder.service import Service
from responder.work import AlertWork

log = logging.getLogger("responder.act")
__all__ = ["Actor", "Escalation"]


class Actor:
    def __init__(self, service: Service, backend: Backend, notifier: Notifier,
                 breakers: BreakerStore, *, sleep: scheduler.Sleep = scheduler.sleep) -> None:
        self.service = service
        self.backend = backend
        self.notifier = notifier
        self.breakers = breakers
        self.escalations = Escalations(service.journal, service.metrics, self._send,
                                       self._channel_type, service.clock)
        self.transitions = Transitions(service.journal, service.metrics, breakers,
                                       service.clock)
        self.attempts = Attempts(service.journal, service.metrics, backend, breakers,
                                 self.transitions, self.escalations, clock=service.clock,
                                 can_read=self.can_read)
        self.scheduler = scheduler.Scheduler(
            self.attempts, breakers, clock=service.clock, sleep=sleep,
            wakeup=service.attempts_changed, paused=self._paused)

    @property
    def can_read(self) -> bool:
        """Whether workflow phases can be read (a dry run may still read the cluster)."""
        backend = self.backend
        return not isinstance(backend, DryRunBackend) or backend.reader is not None

    def _now(self) -> float:
        return self.service.clock()

    async def run(self) -> None:
        await self.scheduler.run()

    async def _paused(self, a: Attempt) -> bool:
        """Whether a pause holds this attempt (one without matchers holds every one)."""
        await self.service.refresh_pauses(older_than=1.0)
        return self.service.pause_for(a.context.get("alert", {}).get("labels", {})) is not None

    def _channel_type(self, name: str) -> str | None:
        channel = self.service.runtime.config.channels.get(name)
        return channel.type if channel is not None else None

    async def _send(self, *, group: AlertGroup, alerts: Sequence[Alert],
                    analysis: Mapping[str, Any] | None, actions: Sequence[Mapping[str, Any]],
                    runbook: Mapping[str, Any], target: Target, event: str, dedup: str,
                    receipt_id: int | None,
                    collect: list[OutboxMessage] | None = None) -> list[Event]:
        return await self.notifier.notify(
            self.service.runtime, group=group, alerts=alerts, analysis=analysis,
            actions=actions, runbook=runbook,
            target=OutboxTarget(target.channel, target.template, target.fallback),
            event=event, dedup=dedup, receipt_id=receipt_id, collect=collect)

    async def notify_escalations(self, runtime: Runtime, group: AlertGroup,
                                 escalations: Sequence[Escalation], scope: str,
                                 collect: list[OutboxMessage] | None = None) -> list[Event]:
        """One ``on_exhausted`` message per runbook and channel (see ``Escalations``)."""
        return await self.escalations.notify(group, escalations, scope, collect)

    async def reset_breaker(self, key: str, who: str) -> str | None:
        """The operator's manual close: runs ``on_close`` like any other closing."""
        transition = await self.breakers.reset(key, f"manual reset by {who}")
        events: list[Event] = []
        if transition == "closed":
            events = await self.transitions.transition(key, "closed",
                                                    self.breakers.specs.get(key, {}))
            self.service.attempts_changed.set()
        await self.service.journal.add_events(events)
        return transition

    # -- the pipeline's entry points ---------------------------------------------------
    async def on_firing(self, runtime: Runtime, group: AlertGroup, work: AlertWork,
                        escalations: list[Escalation] | None = None) -> list[Event]:
        """Schedule the alert's actions. Escalations are added to ``escalations`` when
        given (the caller sends one message per group, see ``notify_escalations``)."""
        events: list[Event] = []
        contexts = [attempt_context(group, work.alert, work.analysis, d.plan)
                    for d in work.decision.runbooks]
        # The failure counts against every breaker the alert reaches, in one transaction.
        guarded = [i for i, d in enumerate(work.decision.runbooks)
                   if d.plan.breaker_key and d.plan.runbook.breaker is not None]
        made = dict(zip(guarded, await self.breakers.failures(
            [(str(work.decision.runbooks[i].plan.breaker_key), contexts[i]["breaker"],
              f"{work.alert.alertname} firing") for i in guarded]), strict=True))
        for i, decided in enumerate(work.decision.runbooks):
            p, context = decided.plan, contexts[i]
            if i in made and p.breaker_key:
                if made[i] == "opened":
                    events.extend(await self.transitions.transition(p.breaker_key, "opened", context))
                    self.service.attempts_changed.set()   # on_open runs now
                if decided.refusal is None and self.breakers.get(p.breaker_key).state == "open":
                    # This alert's failure, or an earlier one's of the delivery, opened it.
                    decided = decide_runbook(p, work.analysis,
                                             State(open_breakers={p.breaker_key}))
            if not p.actions:
                continue
            if decided.refusal is not None and decided.refusal.escalates:
                events.extend(await self._refuse(work, decided, context, escalations))
            else:
                events.extend(await self._schedule(group, work, decided, context))
        return events

    async def _refuse(self, work: AlertWork, decided: RunbookDecision, context: dict[str, Any],
                      escalations: list[Escalation] | None) -> list[Event]:
        """The runbook's actions refused (not retryable, breaker open): recorded, escalated."""
        p, refusal = decided.plan, decided.refusal
        assert refusal is not None
        summaries = work.actions.setdefault(p.runbook.name, [])
        events: list[Event] = []
        for action, d in zip(p.actions, decided.actions, strict=True):
            summaries.append(summary(action, *d.first_outcome(p.runbook),
                                     p.runbook.retry.limit))
            self.service.metrics.actions.labels(action.kind, refusal.outcome).inc()
            events.append(Event(kind="action", receipt_id=work.receipt.id,
                                instance=work.receipt.instance, runbook=p.runbook.name,
                                action=action.kind, target=action.target,
                                outcome=refusal.outcome,
                                detail={"reason": refusal.reason, "params": action.params}))
        return events + await self.escalations.escalate(
            context, work.receipt.id, work.receipt.instance, refusal.reason, collect=escalations)

    async def _schedule(self, group: AlertGroup, work: AlertWork, decided: RunbookDecision,
                        context: dict[str, Any]) -> list[Event]:
        """Attempt 1 of each action; held (SPEC §4: not dropped) while paused; waiting in
        state ``approval`` when the runbook asks a person first (paused or not)."""
        p = decided.plan
        held = decided.refusal is not None   # only a pause refuses without escalating
        ask = p.runbook.approval is not None
        asked: list[Attempt] = []
        limit = p.runbook.retry.limit
        summaries = work.actions.setdefault(p.runbook.name, [])
        events: list[Event] = []
        for action, d in zip(p.actions, decided.actions, strict=True):
            delay = d.first_delay
            due_at = self._now() + delay
            attempt = await self.service.journal.schedule_attempt(
                instance=work.receipt.instance, runbook=p.runbook.name, target=action.target,
                n=1, action=action.kind, params=action.params, due_at=due_at,
                receipt_id=work.receipt.id, context=context,
                state="approval" if ask else "scheduled")
            if attempt is not None and not ask:
                self.scheduler.due(due_at)
            summaries.append(summary(action, *d.first_outcome(p.runbook), limit))
            if attempt is None:
                continue
            if ask:
                asked.append(attempt)
            elif held:
                await self.service.journal.update_attempt(
                    attempt.id, state="scheduled", outcome="paused", detail=PAUSED)
                self.service.metrics.actions.labels(action.kind, "paused").inc()
            what = "awaiting_approval" if ask else "paused" if held else "scheduled"
            why = ASKED if ask else PAUSED if held else None
            events.append(Event(kind="action", receipt_id=work.receipt.id,
                                instance=work.receipt.instance, runbook=p.runbook.name,
                                action=action.kind, target=action.target, outcome=what,
                                detail={"attempt": 1, "due_in": delay, "params": action.params,
                                        **({"reason": why} if why else {})}))
        if asked:
            events.extend(await self.ask_approval(group, work, p, asked))
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
                target=OutboxTarget(n.channel, n.template, n.fallback), event="approval",
                dedup=f"approval:{approval.id}:{n.channel}", receipt_id=work.receipt.id))
        return events

    async def escalate_plan_error(self, runtime: Runtime, group: AlertGroup, work: AlertWork,
                                  runbook: str, reason: str,
                                  collect: list[Escalation]) -> list[Event]:
        """A runbook that cannot even be planned for a firing alert needs a person."""
        spec = next((r for r in runtime.runbooks if r.name == runbook), None)
        if spec is None:
            return []
        ctx = {"runbook": spec.name, "description": spec.description,
               "group": group.to_dict(with_alerts=False), "alert": work.alert.to_dict(),
               "analysis": work.analysis.to_dict(),
               "on_exhausted": [{"channel": n.channel, "template": n.template,
                                 "fallback": n.fallback} for n in spec.on_exhausted]}
        return await self.escalations.escalate(ctx, work.receipt.id, work.receipt.instance,
                                               reason, collect=collect)

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
            if attempt.state in ("scheduled", "waiting", "approval"):
                await journal.update_attempt(attempt.id, state="cancelled", outcome="resolved",
                                             detail="alert resolved")
                # On the receipt that scheduled it: the audit log's last word on the firing
                # alert is then this, not "scheduled".
                events.append(action_event(attempt, "cancelled", {"reason": "alert resolved"}))
            if attempt.action in CHAINED and attempt.outcome in ("success", "dry_run"):
                acted = True
            key = attempt.context.get("breaker_key")
            if key:
                keys[key] = attempt.context
        for p in work.plans:
            if p.breaker_key:
                keys.setdefault(p.breaker_key, attempt_context(group, work.alert, work.analysis, p))
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
                events.extend(await self.transitions.transition(key, "closed", context))
        await journal.close_approvals(work.receipt.instance, "resolved", "alert resolved")
        events.extend(await self.escalations.resolve(group, work.alert, work.receipt.id,
                                                     work.receipt.instance))
        self.service.attempts_changed.set()
        return events

    # -- helpers -----------------------------------------------------------------------
    async def state(self) -> State:
        """What a decision made now sees: the pause switch and the open breakers."""
        return State(paused=await self.service.is_paused(older_than=self.service.PAUSES_FRESH),
                     open_breakers=_OpenBreakers(self.breakers))


class _OpenBreakers:
    """The open breakers as a container, each key read from the store when asked."""

    def __init__(self, store: BreakerStore) -> None:
        self.store = store

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.store.get(key).state == "open"
