"""The worker between the journal and the actor: claimed deliveries, decided and acted on.

A worker claims journaled deliveries in order and, for each, classifies the new alerts'
failures (enriched from the workflow itself when the cluster is reachable), asks
``decide`` for everything else (runbooks, plans, refusals, message buckets: the order
lives there, not here), hands each alert's decisions to the actor (attempts, breakers,
escalations) and queues the messages ``decide`` bucketed in the outbox. Duplicate
deliveries go to the actor only, as "still failing" signals. The delivery is marked done
in the same journal transaction as its audit events and messages (with the other
deliveries of its claim: one transaction per batch), and on SQLite what the actor wrote
for it is held in that transaction too (``Journal.holding_commits``), so a crash re-runs it
whole; every step downstream is idempotent on journal keys.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from responder.act.enrich import failure_messages
from responder.actor import Actor, Escalation
from responder.analyze import Analysis
from responder.decide import AlertDecision, decide
from responder.grouping import Bucket, event_of
from responder.journal import (
    Event,
    FinishedDelivery,
    JournalUnavailable,
    OutboxItem,
    OutboxMessage,
    PendingDelivery,
)
from responder.journal.fullness import failure_level
from responder.load import Runtime
from responder.model import Alert, AlertGroup, alert_from_dict, group_from_dict
from responder.outbox import Notifier, Target
from responder.service import Service
from responder.work import AlertWork

log = logging.getLogger("responder.pipeline")


class Pipeline:
    GIVE_WAY = 0.05   # the longest a pipeline step waits for webhooks in flight (seconds)
    FLUSH_AFTER = 0.25   # the longest decided deliveries wait to be finished (seconds)
    # The most deliveries finished in one transaction: their rows, then their ``log``
    # lines, are written without a pause, and a webhook arriving meanwhile waits for them.
    FINISH_EVERY = 10

    def __init__(self, service: Service, actor: Actor, notifier: Notifier, *,
                 enrich_timeout: float = 2.0) -> None:
        self.service = service
        self.actor = actor
        self.notifier = notifier
        self.enrich_timeout = enrich_timeout
        self._enrich_slots = asyncio.Semaphore(8)

    async def run(self) -> None:
        """Process journaled deliveries until cancelled; resumes what a crash left.

        The deliveries of one claim are decided one after another and finished together,
        ``FINISH_EVERY`` at a time in one journal transaction (``finish_deliveries``), or
        sooner when the batch has been running for ``FLUSH_AFTER``; what the actor wrote
        for them (breaker counts, attempts, escalation markers) is held in the same
        transaction (``holding_commits``) unless webhooks arrive first. A crash before it
        re-runs them whole."""
        service = self.service
        while True:
            service.work_available.clear()
            try:
                batch = await service.journal.claim_deliveries(limit=50, max_alerts=50)
            except JournalUnavailable as exc:
                log.log(failure_level(exc), "journal unavailable: %s", exc)
                await asyncio.sleep(1.0)
                continue
            try:
                async with service.journal.holding_commits():
                    backoff = await self._work_off(batch)
            except JournalUnavailable as exc:   # the last commit of the claim failed
                log.log(failure_level(exc), "journal unavailable: %s", exc)
                backoff = True
            if backoff:
                await asyncio.sleep(1.0)
            elif not batch:
                await service.work_available.wait()

    async def _work_off(self, batch: Sequence[PendingDelivery]) -> bool:
        """Process a claim's deliveries, their writes held in one journal transaction
        between finishes (``holding_commits``); True when the journal failed (what was not
        finished is given back)."""
        service = self.service
        finished: list[FinishedDelivery] = []
        since = time.monotonic()
        for i, delivery in enumerate(batch):
            await service.give_way_to_webhooks(self.GIVE_WAY)
            try:
                finished.append(await self.process(delivery))
                if (len(finished) >= self.FINISH_EVERY
                        or time.monotonic() - since >= self.FLUSH_AFTER):
                    await self._finish(finished)
                    finished, since = [], time.monotonic()
            except JournalUnavailable as exc:
                await self._give_back(exc, f"processing delivery {delivery.id}",
                                      batch, finished, reached=i)
                return True
            except Exception:
                log.exception("delivery %d failed to process; marking it failed", delivery.id)
                finished.append(FinishedDelivery(
                    delivery.id, tuple((r.id, "failed", None, []) for r in delivery.new),
                    tuple(Event(kind="error", receipt_id=r.id, instance=r.instance,
                                outcome="failed",
                                detail={"error": "processing failed; see logs"})
                          for r in delivery.new)))
        try:
            await self._finish(finished)
        except JournalUnavailable as exc:
            await self._give_back(exc, "finishing deliveries", batch, finished,
                                  reached=len(batch))
            return True
        return False

    async def _give_back(self, exc: JournalUnavailable, doing: str,
                         batch: Sequence[PendingDelivery], finished: Sequence[FinishedDelivery],
                         *, reached: int) -> None:
        """The journal failed while ``doing``: log it and give back the deliveries of the
        claim not written, those decided but not finished and those not reached yet."""
        log.log(failure_level(exc), "journal unavailable while %s: %s", doing, exc)
        unwritten = {f.delivery_id for f in finished}
        await self._release([d for d in batch[:reached] if d.id in unwritten]
                            + list(batch[reached:]))

    async def _finish(self, finished: Sequence[FinishedDelivery]) -> None:
        """Finish the deliveries in one transaction, then send the messages it queued
        claimed (``log`` channels) and record them in one more: the outbox's own loop
        only wakes for the others."""
        if not finished:
            return
        claimed: list[OutboxItem] = []
        journal = self.service.journal
        queued = await journal.finish_deliveries(finished, claimed=claimed)
        await journal.commit_held()   # what the deliveries did, with them
        if sum(queued) > len(claimed):
            self.service.outbox_changed.set()
        await self.notifier.send_claimed(claimed)
        await journal.commit_held()   # what was sent, at once: not sent again after a crash

    async def _release(self, deliveries: list[PendingDelivery]) -> None:
        """Give back what this pass claimed and did not finish (else it waits for its lease)."""
        try:
            await self.service.journal.release_deliveries([d.id for d in deliveries])
            await self.service.journal.commit_held()
        except JournalUnavailable:
            pass

    async def process(self, delivery: PendingDelivery) -> FinishedDelivery:
        """Decide and act on one delivery; what ``finish_deliveries`` writes for it."""
        runtime = self.service.runtime
        group = group_from_dict(delivery.group, [r.alert for r in delivery.new])
        events: list[Event] = []
        analyses = await self._analyze_all(runtime, group)
        decisions = decide(runtime, group, analyses, await self.actor.state())
        works = [AlertWork(r, d) for r, d in zip(delivery.new, decisions.alerts, strict=True)]
        escalations: list[Escalation] = []
        for work in works:
            d = work.decision
            for name in d.matched:
                self.service.metrics.runbook_matches.labels(name).inc()
            events.append(Event(
                kind="alert", receipt_id=work.receipt.id, instance=work.receipt.instance,
                outcome=work.alert.status, detail={
                    "alertname": work.alert.alertname,
                    "analysis": work.analysis.to_dict(),
                    "runbooks": [r.name for r in d.runbooks],
                }))
            events.extend(await self._plan_errors(runtime, group, work, escalations))
            await self.service.give_way_to_webhooks(self.GIVE_WAY)
            if work.alert.status == "firing":
                events.extend(await self.actor.on_firing(runtime, group, work, escalations))
            else:
                events.extend(await self.actor.on_resolved(runtime, group, work))
        for receipt in delivery.duplicates:
            events.extend(await self.actor.on_resend(runtime, receipt, alert_from_dict(receipt.alert)))
        messages: list[OutboxMessage] = []
        events.extend(await self._notify(runtime, group, delivery.id, works,
                                         decisions.notifications, messages))
        if escalations:
            events.extend(await self.actor.notify_escalations(
                runtime, group, escalations, scope=f"d{delivery.id}", collect=messages))
        return FinishedDelivery(
            delivery.id,
            tuple((w.receipt.id, "done", w.analysis.to_dict(), [p.runbook.name for p in w.plans])
                  for w in works),
            tuple(events), tuple(messages))

    async def _analyze_all(self, runtime: Runtime, group: AlertGroup) -> list[Analysis]:
        """Every alert's verdict: the workflows read side by side when the cluster can be
        read; else one after another (no task per alert), giving way between them. The
        operators' corrections are re-read first when they are ``CORRECTIONS_FRESH`` old."""
        await self.service.refresh_corrections(older_than=self.service.CORRECTIONS_FRESH)
        if self.actor.can_read:
            # Reading the workflows waits on the network: not with the journal held.
            await self.service.journal.commit_held()
        if self.actor.can_read and len(group.alerts) > 1:
            return list(await asyncio.gather(*(self._analyze(runtime, a) for a in group.alerts)))
        analyses = []
        for i, alert in enumerate(group.alerts):
            if i:
                await self.service.give_way_to_webhooks(self.GIVE_WAY)
            analyses.append(await self._analyze(runtime, alert))
        return analyses

    async def _analyze(self, runtime: Runtime, alert: Alert) -> Analysis:
        """The verdict on one alert, enriched from the workflow when it can be read."""
        extra: list[str] = []
        namespace, workflow = alert.labels.get("namespace"), alert.labels.get("workflow")
        if self.actor.can_read and namespace and workflow and alert.status == "firing":
            async with self._enrich_slots:
                extra = await failure_messages(self.actor.backend, namespace, workflow,
                                               timeout=self.enrich_timeout)
        started = time.perf_counter()
        analysis = runtime.analyzer.analyze_alert(alert.labels, alert.annotations, extra,
                                                  corrections=self.service.corrections)
        self.service.metrics.analysis_duration.observe(time.perf_counter() - started)
        self.service.metrics.analysis_total.labels(analysis.source).inc()
        if alert.status == "firing":
            self.service.metrics.failure_category.labels(analysis.category).inc()
        return analysis

    async def _plan_errors(self, runtime: Runtime, group: AlertGroup, work: AlertWork,
                           escalations: list[Escalation]) -> list[Event]:
        """A runbook whose templates fail for this alert: logged, counted, recorded and, for
        a firing alert, escalated (``on_exhausted``): nothing automatic will happen."""
        events: list[Event] = []
        for e in work.decision.errors:
            log.warning("alert %s: runbook %s cannot be planned: %s",
                        work.receipt.instance, e.runbook, e.error)
            self.service.metrics.plan_errors.labels(e.runbook).inc()
            events.append(Event(kind="error", receipt_id=work.receipt.id,
                                instance=work.receipt.instance, runbook=e.runbook,
                                outcome="plan_failed", detail={"error": e.error}))
            if work.alert.status == "firing":
                events.extend(await self.actor.escalate_plan_error(
                    runtime, group, work, e.runbook,
                    f"runbook {e.runbook} cannot be planned: {e.error}", escalations))
        return events

    async def _notify(self, runtime: Runtime, group: AlertGroup, delivery_id: int,
                      works: Sequence[AlertWork], buckets: Sequence[Bucket[AlertDecision]],
                      messages: list[OutboxMessage]) -> list[Event]:
        """Queue the messages ``decide`` bucketed, with what the actor did in them."""
        events: list[Event] = []
        for b in buckets:
            await self.service.give_way_to_webhooks(self.GIVE_WAY)
            members = [works[d.index] for d in b.members]
            actions = [a for w in members for a in w.actions.get(b.runbook, [])]
            runbook = members[0].decision.runbook(b.runbook)
            scope = members[0].receipt.instance if b.scope is not None else "group"
            events.extend(await self.notifier.notify(
                runtime, group=group, alerts=[w.alert for w in members],
                analysis=members[0].analysis.to_dict(), actions=actions,
                runbook={"name": b.runbook, "description": runbook.description},
                target=Target(b.target.channel, b.target.template, b.target.fallback),
                event=event_of(w.alert for w in members),
                dedup=f"d{delivery_id}:{b.runbook}:{b.channel}:{scope}",
                receipt_id=members[0].receipt.id, collect=messages))
        return events
