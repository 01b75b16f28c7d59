"""Escalation: a runbook's ``on_exhausted``, once per alert instance, resolved with it.

An alert is escalated when its actions are refused (not retryable, breaker open), fail,
or spend their budget. It pages once per instance and runbook: a marker attempt
``(instance, runbook, "escalation", 0)`` makes a second escalation of the same instance
a no-op, and keeps what a resolve needs. One delivery that escalates many alerts of one
Alertmanager group sends one message per runbook and channel listing all of them; the
page (PagerDuty: one ``dedup_key``) resolves when the last escalated alert of the group
resolves, not the first.

The sending itself is handed in (``Send``): this module knows whom to tell and when,
``responder.outbox`` knows how.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from responder.grouping import Target, bucket
from responder.journal import Event, Journal, OutboxMessage
from responder.metrics import Metrics
from responder.model import Alert, AlertGroup, alert_from_dict, group_from_dict


@dataclasses.dataclass(frozen=True, slots=True)
class Escalation:
    """An escalation decided, its message not yet sent."""

    context: Mapping[str, Any]
    receipt_id: int | None
    instance: str
    reason: str


class Send(Protocol):
    async def __call__(self, *, group: AlertGroup, alerts: Sequence[Alert],
                       analysis: Mapping[str, Any] | None,
                       actions: Sequence[Mapping[str, Any]], runbook: Mapping[str, Any],
                       target: Target, event: str, dedup: str, receipt_id: int | None,
                       collect: list[OutboxMessage] | None = None) -> list[Event]: ...


class Escalations:
    def __init__(self, journal: Journal, metrics: Metrics, send: Send,
                 channel_type: Callable[[str], str | None],
                 clock: Callable[[], float]) -> None:
        self.journal = journal
        self.metrics = metrics
        self.send = send
        self.channel_type = channel_type
        self.clock = clock

    async def escalate(self, ctx: Mapping[str, Any], receipt_id: int | None, instance: str,
                       reason: str, collect: list[Escalation] | None = None) -> list[Event]:
        """``on_exhausted`` once per alert instance and runbook; counted as manual work.

        With ``collect`` the message is left to the caller, which sends one per group,
        runbook and channel for everything a delivery escalated (``notify``)."""
        runbook = str(ctx.get("runbook", ""))
        # The marker keeps what a resolve needs: an escalation refused before any attempt
        # existed (not retryable, breaker open) has no other row to read it from.
        marker = await self.journal.schedule_attempt(
            instance=instance, runbook=runbook, target="escalation", n=0, action="notify",
            params={"reason": reason}, due_at=self.clock(), receipt_id=receipt_id,
            context={"on_exhausted": list(ctx.get("on_exhausted", [])),
                     "analysis": ctx.get("analysis"),
                     "group_key": ctx.get("group", {}).get("groupKey")}, state="done")
        if marker is None and not (collect is not None
                                   and await self._escalated_by(instance, runbook) == receipt_id):
            return []
        # (A marker of this very receipt means its delivery is being processed again after
        # a crash: its message went out with the delivery's commit, so it is queued again,
        # under the same per-delivery dedup key.)
        self.metrics.manual_interventions.inc()
        events = [Event(kind="escalation", receipt_id=receipt_id, instance=instance,
                        runbook=runbook, outcome="escalated", detail={"reason": reason})]
        escalation = Escalation(ctx, receipt_id, instance, reason)
        if collect is not None:
            collect.append(escalation)
            return events
        group = group_from_dict(ctx["group"], [ctx["alert"]])
        return events + await self.notify(group, [escalation], scope=instance)

    async def notify(self, group: AlertGroup, escalations: Sequence[Escalation], scope: str,
                     collect: list[OutboxMessage] | None = None) -> list[Event]:
        """One ``on_exhausted`` message per runbook and channel for ``escalations``.

        The pipeline passes everything one delivery escalated (``scope`` is the delivery),
        so an alert storm in one Alertmanager group pages once, listing every escalated
        alert; the scheduler passes one alert's escalation (``scope`` is its instance)."""
        buckets = bucket(
            ((e, str(e.context.get("runbook", "")), _target(t), False)
             for e in escalations for t in e.context.get("on_exhausted", [])),
            key=lambda e: e.instance)
        events: list[Event] = []
        for b in buckets:
            first = b.members[0].context
            events.extend(await self.send(
                group=group, alerts=[alert_from_dict(m.context["alert"]) for m in b.members],
                analysis=first.get("analysis"),
                actions=[{"kind": "escalation", "outcome": "escalated", "detail": m.reason,
                          "target": m.instance} for m in b.members],
                runbook={"name": b.runbook, "description": first.get("description", "")},
                target=_target(b.target), event="escalation",
                dedup=f"esc:{scope}:{b.runbook}:{b.channel}",
                receipt_id=b.members[0].receipt_id, collect=collect))
        return events

    async def resolve(self, group: AlertGroup, alert: Alert, receipt_id: int,
                      instance: str) -> list[Event]:
        """A resolved alert resolves what its escalation opened (PagerDuty: same dedup_key)."""
        events: list[Event] = []
        for attempt in await self.journal.attempts_for(instance):
            if attempt.action != "notify" or attempt.target != "escalation":
                continue
            ctx = await self._firing_context(instance, attempt.runbook)
            if ctx is None:
                continue
            # The page is per group and runbook (one PagerDuty dedup_key): it is resolved
            # when the last escalated alert of the group resolves, not the first.
            still = await self._open_in_group(group, attempt.runbook, instance)
            if still:
                events.append(Event(kind="escalation", receipt_id=receipt_id,
                                    instance=instance, runbook=attempt.runbook,
                                    outcome="resolve_deferred",
                                    detail={"still_firing": still}))
                continue
            for target in ctx.get("on_exhausted", []):
                if self.channel_type(target["channel"]) != "pagerduty":
                    continue
                events.extend(await self.send(
                    group=group, alerts=[alert], analysis=ctx.get("analysis"),
                    actions=[], runbook={"name": attempt.runbook},
                    target=Target(target["channel"], target.get("template")),
                    event="resolved",
                    dedup=f"res:{instance}:{attempt.runbook}:{target['channel']}",
                    receipt_id=receipt_id))
        return events

    # -- journal reads -----------------------------------------------------------------
    async def _escalated_by(self, instance: str, runbook: str) -> int | None:
        """The receipt whose processing escalated ``instance`` by ``runbook``, if any."""
        marker = await self.journal.attempt(instance, runbook, "escalation", 0)
        return marker.receipt_id if marker is not None else None

    async def _open_in_group(self, group: AlertGroup, runbook: str, instance: str) -> int:
        """Other alerts of the group whose escalation by ``runbook`` is still firing."""
        markers = await self.journal.open_escalations(runbook, other_than=instance)
        return sum(1 for m in markers if m.context.get("group_key") == group.group_key)

    async def _firing_context(self, instance: str, runbook: str) -> dict[str, Any] | None:
        with_context = [a for a in await self.journal.attempts_for(instance, runbook)
                        if a.context]
        return max(with_context, key=lambda a: a.n).context if with_context else None


def _target(t: Any) -> Target:
    if isinstance(t, Mapping):
        return Target(str(t["channel"]), t.get("template"), t.get("fallback"))
    return Target(t.channel, t.template, t.fallback)
