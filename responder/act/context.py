"""What an attempt carries in the journal, and how the gate and the backoff read it back.

An attempt is decided at plan time and run later, maybe by another process after a
restart or a reload: everything it needs from its runbook (the retry budget and backoff,
the rate limit, the breaker and its ``on_open``/``on_close``, whom ``on_exhausted``
tells) is written with it, as it was when the alert was planned.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from responder.act import gate as g
from responder.act.plan import PlannedAction, RunbookPlan
from responder.analyze import Analysis
from responder.backoff import Backoff
from responder.journal import Attempt, Event
from responder.model import Alert, AlertGroup


def attempt_context(group: AlertGroup, alert: Alert, analysis: Analysis,
                    p: RunbookPlan) -> dict[str, Any]:
    """The context journaled with each of the plan's attempts."""
    rb = p.runbook
    return {
        "runbook": rb.name,
        "description": rb.description,
        "group": group.to_dict(with_alerts=False),
        "alert": alert.to_dict(),
        "analysis": analysis.to_dict(),
        "retry": {"limit": rb.retry.limit, "duration": rb.retry.duration,
                  "factor": rb.retry.factor, "max_duration": rb.retry.max_duration},
        "rate_limit": {"max_actions": rb.rate_limit.max_actions,
                       "window": rb.rate_limit.window},
        "breaker_key": p.breaker_key,
        "breaker": None if rb.breaker is None else {
            "runbook": rb.name,
            "threshold": rb.breaker.threshold, "window": rb.breaker.window,
            "cooldown": rb.breaker.cooldown,
            "on_open": [a.to_dict() for a in p.on_open],
            "on_close": [a.to_dict() for a in p.on_close],
        },
        "on_exhausted": [{"channel": n.channel, "template": n.template,
                          "fallback": n.fallback} for n in p.on_exhausted],
    }


def attempt_backoff(ctx: Mapping[str, Any]) -> Backoff:
    """The runbook's attempt schedule, as journaled with the attempt."""
    retry = ctx.get("retry") or {}
    return Backoff(float(retry.get("duration", 30.0)), float(retry.get("factor", 2.0)),
                   float(retry.get("max_duration", 300.0)), int(retry.get("limit", 0)))


def gated(a: Attempt) -> g.Attempt:
    """The gate's view of a journaled attempt."""
    ctx = a.context
    retry = ctx.get("retry") or {}
    return g.Attempt(
        action=a.action, n=a.n, breaker_key=ctx.get("breaker_key") or None,
        breaker_action=bool(ctx.get("breaker_action")),
        retry_duration=float(retry.get("duration", 30.0)), limit=int(retry.get("limit", 0)),
        rate_limited=bool(ctx.get("rate_limit")))


def summary(action: PlannedAction, outcome: str, detail: str, attempt: int,
            limit: int) -> dict[str, Any]:
    """What a notification's ``actions`` shows of one planned action."""
    return {"kind": action.kind, "target": action.target, "params": action.params,
            "outcome": outcome, "detail": detail, "attempt": attempt, "limit": limit}


def action_event(a: Attempt, outcome: str, detail: dict[str, Any]) -> Event:
    """The audit event of what happened to attempt ``a``."""
    return Event(kind="action", receipt_id=a.receipt_id, instance=a.instance,
                 runbook=a.runbook, action=a.action, target=a.target, outcome=outcome,
                 detail={"attempt": a.n, "params": a.params, **detail})
