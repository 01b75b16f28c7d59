"""HTTP handlers: the webhook Alertmanager calls, health, metrics, reload and the audit API.

The webhook answers as soon as the alerts are durable in the journal; analysis and actions
run in the pipeline's own tasks. Status codes follow what Alertmanager does with them: it
retries 5xx and network errors and drops 4xx, so 4xx is only for input that can never
succeed and a journal failure is a 503.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import msgspec
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from responder.access import identify
from responder.act.breaker_store import BreakerStore
from responder.actor import Actor
from responder.config.durations import format_duration
from responder.corrections import category_handler
from responder.journal import JournalUnavailable
from responder.journal.fullness import failure_level
from responder.model import DecodeError, decode_group
from responder.service import Service

log = logging.getLogger("responder.receive")
SERVICE = web.AppKey("service", Service)
ACTOR = web.AppKey("actor", Actor)
BREAKERS = web.AppKey("breakers", BreakerStore)
OPEN_PATHS = frozenset({"/metrics", "/-/healthy", "/-/ready", "/slack/interactions"})
_encode = msgspec.json.Encoder().encode
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encode(data), status=status, content_type="application/json")


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return json_response({"error": message, **extra}, status)


def is_console_path(path: str) -> bool:
    """Paths the console serves and guards itself (session cookie and CSRF token)."""
    return path in ("/", "/login", "/logout") or path.startswith("/ui/")


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def cross_site(request: web.Request) -> bool:
    """A browser's request made by a page of another site (it says so: ``Origin`` or
    ``Sec-Fetch-Site``). Alertmanager, Grafana, curl and ``responder ctl`` send neither."""
    if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        return True
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    hosts = {request.host.lower()}
    forwarded = request.headers.get("X-Forwarded-Host")
    if forwarded:
        hosts.add(forwarded.split(",")[0].strip().lower())
    parts = urlsplit(origin)
    return parts.scheme not in ("http", "https") or parts.netloc.lower() not in hosts


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    service = request.app[SERVICE]
    path = request.path
    if (request.method not in SAFE_METHODS and not is_console_path(path)
            and cross_site(request)):
        # Without auth (or with basic auth, which a browser re-sends by itself) a page
        # elsewhere could otherwise pause, approve or post alerts through a visitor's
        # browser; the console's own forms carry CSRF tokens instead.
        return _error(403, "cross-site request refused: the API takes no requests from "
                           "other sites' pages")
    if path in OPEN_PATHS or is_console_path(path):
        return await handler(request)
    auth = service.runtime.config.auth
    who = identify(auth, request.headers.get("Authorization"))
    if who is None:
        if path == "/webhook":
            service.metrics.webhook_requests.labels("401").inc()
        service.failed_logins.note(f"{request.method} {path}", request.remote)
        scheme = "Bearer" if auth.bearer_token or not auth.basic_username else "Basic"
        return web.Response(
            status=401, content_type="application/json",
            body=_encode({"error": "authentication required: missing or invalid credentials"}),
            headers={"WWW-Authenticate": f'{scheme} realm="alert-responder"'})
    if path != "/webhook" and not who.operator:
        return _error(403, "this credential may only post webhooks; "
                           "use an operator's credential (auth.operators)")
    return await handler(request)


async def webhook(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    started = time.perf_counter()
    service.webhook_started()
    try:
        response = await _webhook(request, service)
    finally:
        service.webhook_finished()
    service.metrics.webhook_requests.labels(str(response.status)).inc()
    service.metrics.webhook_duration.observe(time.perf_counter() - started)
    return response


async def _webhook(request: web.Request, service: Service) -> web.Response:
    limit = service.runtime.config.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return _error(413, f"body of {request.content_length} bytes exceeds the limit of {limit}")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _error(413, f"body exceeds the limit of {limit} bytes")
    if len(body) > limit:
        return _error(413, f"body exceeds the limit of {limit} bytes")
    try:
        group, rejected = decode_group(body)
    except DecodeError as exc:
        log.warning("webhook rejected: %s at %s", exc.message, exc.path)
        return _error(400, exc.message, path=exc.path)
    if not group.alerts:
        first = rejected[0] if rejected else None
        message = "no valid alert in payload" if rejected else "payload has no alerts"
        try:
            await service.journal.record_rejection({
                "group_key": group.group_key, "error": message,
                "errors": [msgspec.structs.asdict(r) for r in rejected[:20]]})
        except JournalUnavailable:
            pass
        return _error(400, message, path=first.path if first else "$.alerts",
                      errors=[msgspec.structs.asdict(r) for r in rejected[:100]])
    try:
        result = await service.journal.record_delivery(group, rejected)
    except JournalUnavailable as exc:
        log.log(failure_level(exc), "journal unavailable, answering 503: %s", exc)
        return _error(503, "journal unavailable; retry later")
    metrics = service.metrics
    firing = sum(1 for alert in group.alerts if alert.status == "firing")
    if firing:
        metrics.alerts_received.labels("firing").inc(firing)
    if len(group.alerts) > firing:
        metrics.alerts_received.labels("resolved").inc(len(group.alerts) - firing)
    if result.duplicates:
        metrics.alerts_duplicate.inc(result.duplicates)
    if rejected:
        metrics.alerts_rejected.inc(len(rejected))
    service.work_available.set()
    log.info("webhook group=%s accepted=%d duplicates=%d rejected=%d", group.group_key,
             result.accepted, result.duplicates, len(rejected),
             extra={"group_key": group.group_key, "accepted": result.accepted,
                    "duplicates": result.duplicates, "rejected": len(rejected)})
    answer: dict[str, Any] = {"accepted": result.accepted, "duplicates": result.duplicates}
    if rejected:
        answer["rejected"] = len(rejected)
        answer["errors"] = [msgspec.structs.asdict(r) for r in rejected[:100]]
    return json_response(answer)


async def metrics_handler(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    try:
        service.metrics.journal_pending.set(await service.journal.pending_count())
        service.metrics.journal_bytes.set(await service.journal.size_bytes())
    except JournalUnavailable:
        pass
    body = generate_latest(service.metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def healthy(request: web.Request) -> web.Response:
    return web.Response(text="OK\n")


async def ready(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    if not service.journal.healthy:
        return web.Response(status=503, text="journal unavailable\n")
    return web.Response(text="OK\n")


async def reload_handler(request: web.Request) -> web.Response:
    result = await request.app[SERVICE].reload()
    if result.ok:
        return json_response({"status": "reloaded", "warnings": result.warnings})
    return json_response({"status": "failed", "errors": result.errors}, 500)


def _limit(request: web.Request, default: int = 50, maximum: int = 1000) -> int:
    raw = request.query.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise web.HTTPBadRequest(
            text=_encode({"error": f"limit must be an integer in 1..{maximum}"}).decode(),
            content_type="application/json")
    return int(raw)


async def events_handler(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    limit = _limit(request)
    try:
        recent = await service.journal.recent(limit)
    except JournalUnavailable:
        return _error(503, "journal unavailable")
    # How far back the log reaches: rows older than ``since`` were deleted by retention
    # (``since`` is null while nothing has been deleted yet).
    retention = service.runtime.config.state_retention
    recent["retention"] = {"period": format_duration(retention), "seconds": retention,
                           "since": recent.pop("since", None)}
    return json_response(service.redactor.scrub_value(recent))


async def audit_handler(request: web.Request) -> web.Response:
    """Operator events that belong to no alert (pauses, approvals, resets), newest first."""
    journal = request.app[SERVICE].journal
    limit = _limit(request, 100)
    kinds: list[str | None] = [k for k in request.query.get("kind", "").split(",") if k]
    try:
        events = [e for k in kinds or [None] for e in await journal.events(kind=k, limit=limit)]
    except JournalUnavailable:
        return _error(503, "journal unavailable")
    events.sort(key=lambda e: -int(e["id"]))
    return json_response({"events": events[:limit]})


def dry_run(app: web.Application) -> bool:
    """The truth, not the setting: without a cluster to act on, actions run dry too."""
    return app[SERVICE].runtime.config.dry_run or app[ACTOR].backend.name == "dry-run"


async def status_handler(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    runtime = service.runtime
    backend = request.app[ACTOR].backend
    paused = await service.is_paused()
    return json_response({
        "paused": paused,
        "pauses": len(service.pauses),
        "held": len(await service.journal.attempts_in(("held",))),
        "awaiting_approval": len(await service.journal.approvals()),
        "dry_run": dry_run(request.app),
        "dry_run_reason": getattr(backend, "reason", None),
        "backend": backend.name,
        "runbooks": len(runtime.runbooks),
        "patterns": len(runtime.patterns),
        "channels": sorted(runtime.config.channels),
        "config_loaded_at": runtime.loaded_at,
        "journal_pending": await service.journal.pending_count(),
    })


def who(request: web.Request, claimed: object = None) -> str:
    """The name the audit log records: the operator's own name when operators are
    configured; otherwise what the caller says (``by``), else the credential's name."""
    auth = request.app[SERVICE].runtime.config.auth
    principal = identify(auth, request.headers.get("Authorization"))
    if auth.operators and principal is not None:
        return principal.name
    if isinstance(claimed, str) and claimed.strip():
        return claimed.strip()[:100]
    header = request.headers.get("X-Responder-User")
    if header:
        return header[:100]
    return principal.name if principal is not None else "anonymous"


async def json_body(request: web.Request) -> dict[str, Any]:
    """An operator request's optional JSON object body; anything else is a 400."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise web.HTTPBadRequest(text=_encode({"error": f"body is not JSON: {exc}"}).decode(),
                                 content_type="application/json") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text=_encode({"error": "body must be a JSON object"}).decode(),
                                 content_type="application/json")
    return data


async def breakers_handler(request: web.Request) -> web.Response:
    return json_response({"breakers": request.app[BREAKERS].snapshot()})


async def breaker_reset_handler(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    breakers = request.app[BREAKERS]
    if key not in breakers.states:
        return _error(404, f"no breaker with key {key!r}")
    transition = await request.app[ACTOR].reset_breaker(key, who(request))
    return json_response({"key": key, "state": breakers.get(key).state,
                          "transition": transition})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/webhook", webhook)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    app.router.add_post("/-/reload", reload_handler)
    app.router.add_get("/api/v1/events", events_handler)
    app.router.add_get("/api/v1/status", status_handler)
    app.router.add_get("/api/v1/audit", audit_handler)
    app.router.add_get("/api/v1/breakers", breakers_handler)
    app.router.add_post("/api/v1/breakers/{key:.+}/reset", breaker_reset_handler)
    app.router.add_post("/api/v1/alerts/{id}/category", category_handler(lambda r: r.app[SERVICE], who))
