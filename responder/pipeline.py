"""The one place that knows the order: analyze -> match -> plan -> act -> notify.

A worker takes journaled deliveries in order and, for each new alert, classifies the
failure (enriched from the workflow itself when the cluster is reachable), selects the
runbooks, renders their plans, hands them to the actor (attempts, breakers, budgets) and
queues one notification per Alertmanager group per channel in the outbox. Duplicate
deliveries go to the actor only, as "still failing" signals. The delivery is marked done
in the same journal transaction as its audit events, so a crash re-runs it whole; every
step downstream is idempotent on journal keys.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from responder.act.budget import backoff_delay
from responder.act.enrich import failure_messages
from responder.act.plan import PlanError, RunbookPlan, plan
from responder.actor import CHAINED, Actor, Escalation
from responder.config.runbooks import NotifySpec
from responder.journal import Event, JournalUnavailable, OutboxMessage, PendingDelivery, Receipt
from responder.load import Runtime
from responder.model import AlertGroup, alert_from_dict, group_from_dict
from responder.notify.render import RenderError, build_context
from responder.outbox import Notifier, Target
from responder.service import Service
from responder.work import AlertWork

log = logging.getLogger("responder.pipeline")


class Pipeline:
    GIVE_WAY = 0.05   # the longest a pipeline step waits for webhooks in flight (seconds)

    def __init__(self, service: Service, actor: Actor, notifier: Notifier, *,
                 enrich_timeout: float = 2.0) -> None:
        self.service = service
        self.actor = actor
        self.notifier = notifier
        self.enrich_timeout = enrich_timeout
        self._enrich_slots = asyncio.Semaphore(8)

    async def run(self) -> None:
        """Process journaled deliveries until cancelled; resumes what a crash left."""
        service = self.service
        while True:
            service.work_available.clear()
            try:
                batch = await service.journal.pending_deliveries(limit=50, max_alerts=50)
            except JournalUnavailable as exc:
                log.error("journal unavailable: %s", exc)
                await asyncio.sleep(1.0)
                continue
            for delivery in batch:
                await service.give_way_to_webhooks(self.GIVE_WAY)
                try:
                    await self.process(delivery)
                except JournalUnavailable as exc:
                    log.error("journal unavailable while processing delivery %d: %s",
                              delivery.id, exc)
                    await asyncio.sleep(1.0)
                    break
                except Exception:
                    log.exception("delivery %d failed to process; marking it failed", delivery.id)
                    await service.journal.finish_delivery(
                        delivery.id, [(r.id, "failed", None, []) for r in delivery.new],
                        [Event(kind="error", receipt_id=r.id, instance=r.instance,
                               outcome="failed", detail={"error": "processing failed; see logs"})
                         for r in delivery.new])
            if not batch:
                await service.work_available.wait()

    async def process(self, delivery: PendingDelivery) -> None:
        runtime = self.service.runtime
        group = group_from_dict(delivery.group, [r.alert for r in delivery.new])
        events: list[Event] = []
        works = await asyncio.gather(*(self._analyze(runtime, group, r) for r in delivery.new))
        escalations: list[Escalation] = []
        for work in works:
            events.append(Event(
                kind="alert", receipt_id=work.receipt.id, instance=work.receipt.instance,
                outcome=work.alert.status, detail={
                    "alertname": work.alert.alertname,
                    "analysis": work.analysis.to_dict(),
                    "runbooks": [p.runbook.name for p in work.plans],
                }))
            events.extend(await self._plan_errors(group, work, escalations))
            await self.service.give_way_to_webhooks(self.GIVE_WAY)
            if work.alert.status == "firing":
                events.extend(await self.actor.on_firing(runtime, group, work, escalations))
            else:
                events.extend(await self.actor.on_resolved(runtime, group, work))
        for receipt in delivery.duplicates:
            events.extend(await self.actor.on_resend(runtime, receipt, alert_from_dict(receipt.alert)))
        messages: list[OutboxMessage] = []
        events.extend(await self._notify(runtime, group, delivery.id, works, messages))
        if escalations:
            events.extend(await self.actor.notify_escalations(
                runtime, group, escalations, scope=f"d{delivery.id}", collect=messages))
        queued = await self.service.journal.finish_delivery(
            delivery.id,
            [(w.receipt.id, "done", w.analysis.to_dict(), [p.runbook.name for p in w.plans])
             for w in works],
            events, messages)
        if queued:
            self.service.outbox_changed.set()

    async def _analyze(self, runtime: Runtime, group: AlertGroup, receipt: Receipt) -> AlertWork:
        alert = alert_from_dict(receipt.alert)
        extra: list[str] = []
        namespace, workflow = alert.labels.get("namespace"), alert.labels.get("workflow")
        if self.actor.can_read and namespace and workflow and alert.status == "firing":
            async with self._enrich_slots:
                extra = await failure_messages(self.actor.backend, namespace, workflow,
                                               timeout=self.enrich_timeout)
        started = time.perf_counter()
        analysis = runtime.analyzer.analyze_alert(alert.labels, alert.annotations, extra)
        self.service.metrics.analysis_duration.observe(time.perf_counter() - started)
        if alert.status == "firing":
            self.service.metrics.failure_category.labels(analysis.category).inc()
        plans: list[RunbookPlan] = []
        work = AlertWork(receipt, alert, analysis, plans)
        for runbook in runtime.index.select(alert, analysis):
            self.service.metrics.runbook_matches.labels(runbook.name).inc()
            try:
                plans.append(plan(runbook, alert, group, analysis))
            except PlanError as exc:
                work.actions.setdefault("_errors", []).append(
                    {"runbook": runbook.name, "error": str(exc), "spec": runbook})
        return work

    async def _plan_errors(self, group: AlertGroup, work: AlertWork,
                           escalations: list[Escalation]) -> list[Event]:
        """A runbook whose templates fail for this alert: logged, counted, recorded and, for
        a firing alert, escalated (``on_exhausted``): nothing automatic will happen."""
        events: list[Event] = []
        for e in work.actions.pop("_errors", []):
            name, error = e["runbook"], e["error"]
            log.warning("alert %s: runbook %s cannot be planned: %s",
                        work.receipt.instance, name, error)
            self.service.metrics.plan_errors.labels(name).inc()
            events.append(Event(kind="error", receipt_id=work.receipt.id,
                                instance=work.receipt.instance, runbook=name,
                                outcome="plan_failed", detail={"error": error}))
            if work.alert.status == "firing":
                events.extend(await self.actor.escalate_plan_error(
                    group, work, e["spec"], f"runbook {name} cannot be planned: {error}",
                    escalations))
        return events

    async def _notify(self, runtime: Runtime, group: AlertGroup, delivery_id: int,
                      works: Sequence[AlertWork], messages: list[OutboxMessage]) -> list[Event]:
        """One message per group per runbook and channel, unless the runbook asks per alert."""
        buckets: dict[tuple[str, str, str | None], tuple[NotifySpec, RunbookPlan, list[AlertWork]]]
        buckets = {}
        for work in works:
            for p in work.plans:
                for spec in p.notify:
                    key = (p.runbook.name, spec.channel,
                           work.receipt.instance if spec.per_alert else None)
                    buckets.setdefault(key, (spec, p, []))[2].append(work)
        events: list[Event] = []
        for (runbook, channel, per_alert), (spec, p, members) in buckets.items():
            await self.service.give_way_to_webhooks(self.GIVE_WAY)
            event = "resolved" if all(w.alert.status == "resolved" for w in members) else "firing"
            actions = [a for w in members for a in w.actions.get(runbook, [])]
            events.extend(await self.notifier.notify(
                runtime, group=group, alerts=[w.alert for w in members],
                analysis=members[0].analysis.to_dict(), actions=actions,
                runbook={"name": runbook, "description": p.runbook.description},
                target=Target(spec.channel, spec.template, spec.fallback), event=event,
                dedup=f"d{delivery_id}:{runbook}:{channel}:{per_alert or 'group'}",
                receipt_id=members[0].receipt.id, collect=messages))
        return events


def explain(runtime: Runtime, group: AlertGroup) -> dict[str, Any]:
    """The dry run of ``responder explain``: analysis, matches, plans and rendered messages.

    The same stages as ``Pipeline.process`` in the same order, touching nothing: no
    journal, no cluster (analysis uses the alert's own text), no delivery.
    """
    config = runtime.config
    alerts_out: list[dict[str, Any]] = []
    buckets: dict[tuple[str, str], tuple[NotifySpec, RunbookPlan, list[Any], list[Any]]] = {}
    for index, alert in enumerate(group.alerts):
        analysis = runtime.analyzer.analyze_alert(alert.labels, alert.annotations)
        entry: dict[str, Any] = {"index": index, "alertname": alert.alertname,
                                 "status": alert.status, "labels": dict(alert.labels),
                                 "analysis": analysis.to_dict(), "runbooks": [], "errors": []}
        for runbook in runtime.index.select(alert, analysis):
            try:
                p = plan(runbook, alert, group, analysis)
            except PlanError as exc:
                entry["errors"].append({"runbook": runbook.name, "error": str(exc)})
                continue
            chained = [a for a in p.actions if a.kind in CHAINED]
            refused = None
            if chained and not analysis.retryable and runbook.when_retryable is None:
                refused = f"analysis says {analysis.category} is not retryable: on_exhausted"
            would = []
            for action in p.actions:
                if refused:
                    would.append({**_action_dict(action), "would": "refused", "reason": refused})
                elif action.kind in CHAINED:
                    r = runbook.retry
                    delays = [backoff_delay(n, r.duration, r.factor, r.max_duration)
                              for n in range(1, r.limit + 1)]
                    would.append({**_action_dict(action), "would": "schedule",
                                  "attempts": r.limit, "delays_seconds": delays})
                else:
                    would.append({**_action_dict(action), "would": "run"})
            entry["runbooks"].append({**p.to_dict(), "would": would,
                                      "dry_run": config.dry_run})
            for spec in p.notify:
                key = (runbook.name, spec.channel)
                bucket = buckets.setdefault(key, (spec, p, [], []))
                bucket[2].append(alert)
                bucket[3].extend(
                    {"kind": w["kind"], "target": w["target"], "params": w["params"],
                     "outcome": w["would"], "detail": w.get("reason", ""), "attempt": 1,
                     "limit": runbook.retry.limit} for w in would)
        alerts_out.append(entry)
    notifications = []
    for (runbook_name, channel_name), (spec, p, alerts, actions) in buckets.items():
        channel = config.channels[channel_name]
        first = runtime.analyzer.analyze_alert(alerts[0].labels, alerts[0].annotations)
        context = build_context(
            group, alerts=alerts, analysis=first.to_dict(), actions=actions,
            runbook={"name": runbook_name, "description": p.runbook.description},
            argo_ui_url=config.argo.ui_url if config.argo else None,
            dashboard_url=config.dashboard_url,
            event="resolved" if all(a.status == "resolved" for a in alerts) else "firing")
        try:
            message = runtime.templates.render(channel, context, spec.template)
            notifications.append({"runbook": runbook_name, "channel": channel_name,
                                  "type": message.type, "body": message.body})
        except RenderError as exc:
            notifications.append({"runbook": runbook_name, "channel": channel_name,
                                  "error": str(exc)})
    return {"group": group.to_dict(with_alerts=False), "alerts": alerts_out,
            "notifications": notifications}


def _action_dict(action: Any) -> dict[str, Any]:
    return {"kind": action.kind, "target": action.target, "params": action.params}
