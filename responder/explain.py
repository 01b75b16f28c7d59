"""``responder explain``: what the service would decide for one payload, touching nothing.

The decisions are ``decide``'s, the messages are rendered with the service's templates;
nothing here reads the journal or the cluster (analysis uses the alerts' own text) or
delivers anything. The answer is a plain dict: ``--json`` prints it, the CLI formats it.
"""

from __future__ import annotations

from typing import Any

from responder.act.context import summary
from responder.config.runbooks import RunbookSpec
from responder.decide import ActionDecision, AlertDecision, decide
from responder.grouping import Bucket, event_of
from responder.load import Runtime
from responder.model import AlertGroup
from responder.notify.render import RenderError, build_context


def explain(runtime: Runtime, group: AlertGroup) -> dict[str, Any]:
    """Analysis, matches, plans, refusals and rendered messages for ``group``."""
    decisions = decide(runtime, group)
    alerts_out: list[dict[str, Any]] = []
    for d in decisions.alerts:
        alerts_out.append({
            "index": d.index, "alertname": d.alert.alertname, "status": d.alert.status,
            "labels": dict(d.alert.labels), "analysis": d.analysis.to_dict(),
            "runbooks": [{**r.plan.to_dict(), "would": [_would(a) for a in r.actions],
                          "dry_run": runtime.config.dry_run, **_approval(r.plan.runbook)}
                         for r in d.runbooks],
            "errors": [{"runbook": e.runbook, "error": e.error} for e in d.errors]})
    return {"group": group.to_dict(with_alerts=False), "alerts": alerts_out,
            "notifications": _render(runtime, group, decisions.notifications),
            "escalations": _render(runtime, group, decisions.escalations,
                                   event="escalation")}


def _approval(runbook: RunbookSpec) -> dict[str, Any]:
    """A runbook that asks a person first says so (its actions wait for the decision)."""
    spec = runbook.approval
    if spec is None:
        return {}
    return {"approval": {"timeout_seconds": spec.timeout, "on_timeout": spec.on_timeout,
                         "notify": [n.channel for n in spec.notify]}}


def _would(a: ActionDecision) -> dict[str, Any]:
    out: dict[str, Any] = {**a.action.to_dict(), "would": a.verdict}
    if a.refusal is not None:
        out["reason"] = f"{a.refusal.reason}: on_exhausted" if a.refusal.escalates \
            else a.refusal.reason
    elif a.chained:
        out.update(attempts=len(a.delays), delays_seconds=list(a.delays))
    return out


def _actions(d: AlertDecision, runbook: str) -> list[dict[str, Any]]:
    """The ``actions`` a message shows: each as the service records it when decided."""
    return [summary(a.action, *a.first_outcome(r.plan.runbook), r.plan.runbook.retry.limit)
            for r in d.runbooks if r.name == runbook for a in r.actions]


def _render(runtime: Runtime, group: AlertGroup,
            buckets: tuple[Bucket[AlertDecision], ...], event: str | None = None
            ) -> list[dict[str, Any]]:
    config = runtime.config
    out = []
    for b in buckets:
        first = b.members[0]
        runbook = first.runbook(b.runbook)
        context = build_context(
            group, alerts=[m.alert for m in b.members], analysis=first.analysis.to_dict(),
            actions=[a for m in b.members for a in _actions(m, b.runbook)],
            runbook={"name": b.runbook, "description": runbook.description},
            argo_ui_url=config.argo.ui_url if config.argo else None,
            dashboard_url=config.dashboard_url,
            event=event or event_of(m.alert for m in b.members))
        entry: dict[str, Any] = {"runbook": b.runbook, "channel": b.channel,
                                 "alerts": [m.index for m in b.members]}
        try:
            message = runtime.templates.render(config.channels[b.channel], context,
                                               b.target.template)
            entry.update(type=message.type, body=message.body)
        except RenderError as exc:
            entry["error"] = str(exc)
        out.append(entry)
    return out
