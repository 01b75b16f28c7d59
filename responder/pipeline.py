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
from dataclasses import dataclass, field
from typing import Any, Protocol

from responder.act.enrich import failure_messages
from responder.act.plan import PlanError, RunbookPlan, plan
from responder.analyze import Analysis
from responder.config.runbooks import NotifySpec
from responder.journal import Event, JournalUnavailable, PendingDelivery, Receipt
from responder.load import Runtime
from responder.work import AlertWork
from responder.model import Alert, AlertGroup, alert_from_dict, group_from_dict
from responder.service import Service

log = logging.getLogger("responder.pipeline")


class Actor(Protocol):
    async def on_firing(self, runtime: Runtime, group: AlertGroup, work: AlertWork) -> list[Event]: ...
    async def on_resend(self, runtime: Runtime, receipt: Receipt, alert: Alert) -> list[Event]: ...
    async def on_resolved(self, runtime: Runtime, group: AlertGroup,
                          work: AlertWork) -> list[Event]: ...


class Notifier(Protocol):
    async def notify(self, runtime: Runtime, group: AlertGroup, spec: NotifySpec,
                     works: Sequence[AlertWork], runbook: RunbookPlan, *, event: str,
                     dedup: str) -> list[Event]: ...


class Workflows(Protocol):
    """What enrichment needs from the action backend (reads only)."""

    async def get_workflow(self, namespace: str, name: str) -> Any: ...


class Pipeline:
    def __init__(self, service: Service, actor: Actor, notifier: Notifier,
                 workflows: Workflows | None, *, enrich_timeout: float = 2.0) -> None:
        self.service = service
        self.actor = actor
        self.notifier = notifier
        self.workflows = workflows
        self.enrich_timeout = enrich_timeout
        self._enrich_slots = asyncio.Semaphore(8)

    async def run(self) -> None:
        """Process journaled deliveries until cancelled; resumes what a crash left."""
        service = self.service
        while True:
            service.work_available.clear()
            try:
                batch = await service.journal.pending_deliveries(limit=50)
            except JournalUnavailable as exc:
                log.error("journal unavailable: %s", exc)
                await asyncio.sleep(1.0)
                continue
            for delivery in batch:
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
            if len(batch) < 50:
                await service.work_available.wait()

    async def process(self, delivery: PendingDelivery) -> None:
        runtime = self.service.runtime
        group = group_from_dict(delivery.group, [r.alert for r in delivery.new])
        events: list[Event] = []
        works = await asyncio.gather(*(self._analyze(runtime, group, r) for r in delivery.new))
        for work in works:
            events.append(Event(
                kind="alert", receipt_id=work.receipt.id, instance=work.receipt.instance,
                outcome=work.alert.status, detail={
                    "alertname": work.alert.alertname,
                    "analysis": work.analysis.to_dict(),
                    "runbooks": [p.runbook.name for p in work.plans],
                }))
            events.extend(self._plan_errors(work))
            if work.alert.status == "firing":
                events.extend(await self.actor.on_firing(runtime, group, work))
            else:
                events.extend(await self.actor.on_resolved(runtime, group, work))
        for receipt in delivery.duplicates:
            events.extend(await self.actor.on_resend(runtime, receipt, alert_from_dict(receipt.alert)))
        events.extend(await self._notify(runtime, group, delivery.id, works))
        await self.service.journal.finish_delivery(
            delivery.id,
            [(w.receipt.id, "done", w.analysis.to_dict(), [p.runbook.name for p in w.plans])
             for w in works],
            events)

    async def _analyze(self, runtime: Runtime, group: AlertGroup, receipt: Receipt) -> AlertWork:
        alert = alert_from_dict(receipt.alert)
        extra: list[str] = []
        namespace, workflow = alert.labels.get("namespace"), alert.labels.get("workflow")
        if self.workflows is not None and namespace and workflow and alert.status == "firing":
            async with self._enrich_slots:
                extra = await failure_messages(self.workflows, namespace, workflow,  # type: ignore[arg-type]
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
                    {"runbook": runbook.name, "error": str(exc)})
        return work

    @staticmethod
    def _plan_errors(work: AlertWork) -> list[Event]:
        return [Event(kind="error", receipt_id=work.receipt.id, instance=work.receipt.instance,
                      runbook=e["runbook"], outcome="plan_failed", detail={"error": e["error"]})
                for e in work.actions.pop("_errors", [])]

    async def _notify(self, runtime: Runtime, group: AlertGroup, delivery_id: int,
                      works: Sequence[AlertWork]) -> list[Event]:
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
            dedup = f"d{delivery_id}:{runbook}:{channel}:{per_alert or 'group'}"
            event = "resolved" if all(w.alert.status == "resolved" for w in members) else "firing"
            events.extend(await self.notifier.notify(runtime, group, spec, members, p,
                                                     event=event, dedup=dedup))
        return events
