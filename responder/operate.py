"""The operator API: pauses, cancelling attempts, approvals.

Handlers validate, call the service (pauses) or ``Approvals`` (decisions), and answer
with what the journal now holds. The console calls the same functions from its forms,
so an action taken in a browser and one taken with ``responder ctl`` are the same.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from responder.act import pauses
from responder.approvals import Approvals, Refused
from responder.journal import Attempt, Event, JournalUnavailable, Pause, journal_id
from responder.receive import SERVICE, json_body, json_response, who
from responder.service import Service

APPROVALS = web.AppKey("approvals", Approvals)
LISTED_STATES = ("approval", "held", "scheduled", "waiting")
ATTEMPT_STATES = (*LISTED_STATES, "running", "done", "failed", "cancelled")


def _error(status: int, message: str) -> web.Response:
    return json_response({"error": message}, status)


def _id(request: web.Request, name: str = "id") -> int:
    raw = request.match_info[name]
    value = journal_id(raw)
    if value is None:
        raise web.HTTPNotFound(text=json.dumps({"error": f"no such {name} {raw[:40]!r}"}),
                               content_type="application/json")
    return value


async def create_pause(service: Service, body: dict[str, Any], by: str) -> Pause:
    """A pause from an API or form body; ValueError says what is wrong with it."""
    raw = body.get("matchers") or []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        raise ValueError("matchers: expected a list of matchers like namespace=\"ci\"")
    matchers = [str(m) for m in pauses.parse_matchers([m for m in raw if m != ""])]
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise ValueError("reason: expected a string")
    until = body.get("until")
    if until is not None and not isinstance(until, str):
        raise ValueError("until: expected a duration (2h) or an RFC 3339 time")
    return await service.add_pause(matchers=matchers, reason=(reason or "").strip()[:500] or None,
                                   until=pauses.parse_until(until, service.clock()), by=by)


async def cancel_attempt(service: Service, attempt_id: int, by: str) -> Attempt:
    """Cancel a scheduled, waiting, held or approval-waiting attempt; raises Refused."""
    cancelled = await service.journal.cancel_attempt(
        attempt_id, by=by, events=lambda a: [Event(
            kind="action", receipt_id=a.receipt_id, instance=a.instance, runbook=a.runbook,
            action=a.action, target=a.target, outcome="cancelled",
            detail={"attempt": a.n, "by": by, "params": a.params})])
    if cancelled is None:
        current = await service.journal.attempt_by_id(attempt_id)
        if current is None:
            raise Refused(404, f"no attempt {attempt_id}")
        raise Refused(409, f"attempt {attempt_id} is {current.state}: only scheduled, waiting, "
                           "held or approval-waiting attempts can be cancelled")
    service.metrics.actions.labels(cancelled.action, "cancelled").inc()
    service.attempts_changed.set()
    return cancelled


def attempt_dict(a: Attempt) -> dict[str, Any]:
    labels = a.context.get("alert", {}).get("labels", {})
    return {"id": a.id, "instance": a.instance, "runbook": a.runbook, "action": a.action,
            "target": a.target, "attempt": a.n,
            "state": "held" if a.state == "scheduled" and a.outcome == "paused" else a.state,
            "due_at": a.due_at,
            "outcome": a.outcome, "detail": a.detail, "labels": labels}


# -- handlers ----------------------------------------------------------------------------
async def pause_handler(request: web.Request) -> web.Response:
    body = await json_body(request)
    try:
        pause = await create_pause(request.app[SERVICE], body, who(request, body.get("by")))
    except ValueError as exc:
        return _error(400, str(exc))
    return json_response({"paused": True, "pause": pause.to_dict()})


async def pauses_handler(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    return json_response({"pauses": [p.to_dict() for p in await service.refresh_pauses()]})


async def lift_handler(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    pause_id = _id(request)
    lifted = await service.lift_pauses(who(request), pause_id)
    if not lifted:
        return _error(404, f"no active pause {pause_id}")
    return json_response({"pause": lifted[0].to_dict()})


async def resume_handler(request: web.Request) -> web.Response:
    body = await json_body(request)
    lifted = await request.app[SERVICE].lift_pauses(who(request, body.get("by")))
    return json_response({"paused": False, "lifted": len(lifted),
                          "pauses": [p.to_dict() for p in lifted]})


async def attempts_handler(request: web.Request) -> web.Response:
    states = [s for s in request.query.get("state", ",".join(LISTED_STATES)).split(",") if s]
    unknown = [s for s in states if s not in ATTEMPT_STATES]
    if unknown:   # a typo is not "nothing in that state"
        return _error(400, f"state: {', '.join(map(repr, unknown))} is not one of "
                           f"{', '.join(ATTEMPT_STATES)}")
    attempts = await request.app[SERVICE].journal.attempts_in(states)
    return json_response({"attempts": [attempt_dict(a) for a in attempts]})


async def cancel_handler(request: web.Request) -> web.Response:
    body = await json_body(request)
    try:
        attempt = await cancel_attempt(request.app[SERVICE], _id(request),
                                       who(request, body.get("by")))
    except Refused as exc:
        return _error(exc.status, exc.message)
    return json_response(attempt_dict(attempt))


async def approvals_handler(request: web.Request) -> web.Response:
    journal = request.app[SERVICE].journal
    everything = request.query.get("all") in ("1", "true")
    found = await journal.approvals(open_only=not everything)
    return json_response({"approvals": [a.to_dict() for a in found]})


async def decide_handler(request: web.Request) -> web.Response:
    body = await json_body(request)
    comment = body.get("comment")
    try:
        decided = await request.app[APPROVALS].decide(
            _id(request), request.match_info["verb"], who(request, body.get("by")),
            comment if isinstance(comment, str) else None)
    except Refused as exc:
        return _error(exc.status, exc.message)
    except JournalUnavailable:
        return _error(503, "journal unavailable")
    return json_response({"id": decided.id, "decision": decided.decision,
                          "by": decided.decided_by, "at": decided.decided_at,
                          "comment": decided.comment})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/pause", pause_handler)
    app.router.add_get("/api/v1/pauses", pauses_handler)
    app.router.add_delete("/api/v1/pauses/{id}", lift_handler)
    app.router.add_post("/api/v1/resume", resume_handler)
    app.router.add_get("/api/v1/attempts", attempts_handler)
    app.router.add_post("/api/v1/attempts/{id}/cancel", cancel_handler)
    app.router.add_get("/api/v1/approvals", approvals_handler)
    app.router.add_post("/api/v1/approvals/{id}/{verb:approve|reject}", decide_handler)
