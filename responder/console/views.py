"""The console's pages and forms, server-rendered from the package's Jinja templates.

Pages read what the API reads (the journal's audit log, attempts, approvals, pauses, the
breaker store, the loaded runtime); forms call what the API calls (``responder.operate``,
``Approvals``, the actor's breaker reset, the service's reload), so the console, the API
and ``responder ctl`` always agree. Every form answers with a redirect back (303) and a
one-line message, so reloading a page never posts twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web
from markupsafe import Markup

from responder import access
from responder.analyze import CATEGORIES
from responder.approvals import Refused
from responder.config.durations import format_duration
from responder.console import session
from responder.corrections import correct
from responder.journal import JournalUnavailable, journal_id
from responder.operate import APPROVALS, LISTED_STATES, attempt_dict, cancel_attempt, create_pause
from responder.receive import ACTOR, BREAKERS, SERVICE, dry_run

STATIC = Path(__file__).parent / "static"
SINCE = {"1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400}
TEMPLATES = web.AppKey("console_templates", jinja2.Environment)


def when(ts: Any) -> Markup:
    """A time the browser shows in its own zone (console.js); UTC without the script."""
    if not isinstance(ts, (int, float)) or ts <= 0:
        return Markup("&ndash;")
    moment = datetime.fromtimestamp(ts, UTC)
    return Markup('<time datetime="{}">{}</time>').format(
        moment.isoformat(timespec="seconds"), moment.strftime("%Y-%m-%d %H:%M:%S UTC"))


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("responder.console", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = when
    env.filters["duration"] = format_duration
    return env


async def render(request: web.Request, name: str, status: int = 200,
                 **context: Any) -> web.Response:
    who, _ = session.browser(request)
    service = request.app[SERVICE]
    pending = len(await service.journal.approvals())
    html = request.app[TEMPLATES].get_template(name).render(
        who=who, csrf=session.csrf(request) if who else "", path=request.path_qs,
        message=request.query.get("done", ""), error=request.query.get("error", ""),
        auth=service.runtime.config.auth.enabled, pending=pending,
        paused=service.paused, **context)
    return web.Response(text=html, content_type="text/html", status=status)


def local(target: object) -> str:
    """A path on this server to go back to; anything else (another host) is ``/``."""
    text = str(target or "/")
    if not text.startswith("/") or text.startswith(("//", "/\\")) or "\n" in text:
        return "/"
    return text


def back(request: web.Request, form: Mapping[str, Any], *, done: str = "",
         error: str = "") -> web.HTTPSeeOther:
    target = local(form.get("next"))
    base = target.split("?")[0]
    query = urlencode({"done": done} if done else {"error": error})
    return web.HTTPSeeOther(f"{base}?{query}")


def _name(request: web.Request) -> str:
    return session.principal(request).name


# -- pages -----------------------------------------------------------------------------
ALERTS_SEARCHED = 500   # the latest alerts the Alerts page lists and filters


async def alerts_page(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    q = request.query
    recent = (await service.journal.recent(ALERTS_SEARCHED))["alerts"]
    namespaces = sorted({a["alert"]["labels"].get("namespace", "") for a in recent} - {""})
    runbooks = sorted({r for a in recent for r in a.get("runbooks") or []})
    since = SINCE.get(q.get("since", ""))
    now = service.clock()
    shown = [a for a in recent
             if (not q.get("status") or a["status"] == q["status"])
             and (not q.get("namespace") or a["alert"]["labels"].get("namespace") == q["namespace"])
             and (not q.get("runbook") or q["runbook"] in (a.get("runbooks") or []))
             and (since is None or a["last_delivery_at"] >= now - since)]
    return await render(request, "alerts.html.j2", alerts=shown[:100], total=len(shown),
                        searched=len(recent) if len(recent) >= ALERTS_SEARCHED else None,
                        namespaces=namespaces, runbooks=runbooks, since=list(SINCE),
                        categories=CATEGORIES,
                        filters={k: q.get(k, "") for k in ("status", "namespace", "runbook",
                                                          "since")})


async def actions_page(request: web.Request) -> web.Response:
    journal = request.app[SERVICE].journal
    attempts = [attempt_dict(a) for a in await journal.attempts_in(LISTED_STATES[1:])]
    decided = [a.to_dict() for a in await journal.approvals(open_only=False, limit=20)
               if a.decision is not None]
    return await render(request, "actions.html.j2",
                        approvals=[a.to_dict() for a in await journal.approvals()],
                        attempts=attempts, decided=decided)


async def pauses_page(request: web.Request) -> web.Response:
    pauses = await request.app[SERVICE].refresh_pauses()
    return await render(request, "pauses.html.j2", pauses=[p.to_dict() for p in pauses])


async def breakers_page(request: web.Request) -> web.Response:
    return await render(request, "breakers.html.j2",
                        breakers=request.app[BREAKERS].snapshot())


async def config_page(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    runtime = service.runtime
    config = runtime.config
    last = service.last_reload
    return await render(
        request, "config.html.j2", runbooks=runtime.runbooks,
        channels=sorted(config.channels.values(), key=lambda c: c.name),
        loaded_at=runtime.loaded_at, config_path=str(config.path), dry_run=dry_run(request.app),
        operators=[op.name for op in config.auth.operators],
        last_reload=None if last is None else {"at": last[0], "ok": last[1].ok,
                                               "errors": last[1].errors,
                                               "warnings": last[1].warnings})


# -- forms -----------------------------------------------------------------------------
def _form_id(request: web.Request, form: Any, what: str) -> int:
    """The row a form's path names; past what the journal stores: "no such", as for any
    id nothing has."""
    raw = request.match_info["id"]
    value = journal_id(raw)
    if value is None:
        raise back(request, form, error=f"no {what} {raw[:40]}")
    return value


async def decide_form(request: web.Request) -> web.Response:
    form = await request.post()
    verb = request.match_info["verb"]
    comment = str(form.get("comment") or "").strip()[:500] or None
    try:
        decided = await request.app[APPROVALS].decide(
            _form_id(request, form, "approval"), verb, _name(request), comment)
    except Refused as exc:
        raise back(request, form, error=exc.message) from None
    raise back(request, form, done=f"approval {decided.id} {decided.decision}")


async def correct_form(request: web.Request) -> web.Response:
    form = await request.post()
    try:
        done = await correct(request.app[SERVICE], request.match_info["id"],
                             form.get("category"), _name(request))
    except Refused as exc:
        raise back(request, form, error=exc.message) from None
    raise back(request, form, done=f"alert {done['id']} corrected to {done['category']} "
                                   f"(was {done['previous'] or 'not analysed'}): the same "
                                   "failure text gets it from now on")


async def cancel_form(request: web.Request) -> web.Response:
    form = await request.post()
    try:
        attempt = await cancel_attempt(request.app[SERVICE],
                                       _form_id(request, form, "attempt"), _name(request))
    except Refused as exc:
        raise back(request, form, error=exc.message) from None
    raise back(request, form, done=f"{attempt.action} {attempt.target} cancelled")


async def pause_form(request: web.Request) -> web.Response:
    form = await request.post()
    body = {"matchers": [line.strip() for line in str(form.get("matchers", "")).splitlines()
                         if line.strip()],
            "reason": str(form.get("reason", "")) or None,
            "until": str(form.get("until", "")).strip() or None}
    try:
        pause = await create_pause(request.app[SERVICE], body, _name(request))
    except ValueError as exc:
        raise back(request, form, error=str(exc)) from None
    scope = ", ".join(pause.matchers) or "everything"
    raise back(request, form, done=f"pause {pause.id} holds the actions of {scope}")


async def lift_form(request: web.Request) -> web.Response:
    form = await request.post()
    lifted = await request.app[SERVICE].lift_pauses(_name(request),
                                                    _form_id(request, form, "active pause"))
    if not lifted:
        raise back(request, form, error=f"no active pause {request.match_info['id']}")
    raise back(request, form, done=f"pause {lifted[0].id} lifted")


async def resume_form(request: web.Request) -> web.Response:
    form = await request.post()
    lifted = await request.app[SERVICE].lift_pauses(_name(request))
    raise back(request, form, done=f"{len(lifted)} pause(s) lifted: actions run again")


async def reset_form(request: web.Request) -> web.Response:
    form = await request.post()
    key = str(form.get("key", ""))
    if key not in request.app[BREAKERS].states:
        raise back(request, form, error=f"no breaker with key {key!r}")
    transition = await request.app[ACTOR].reset_breaker(key, _name(request))
    raise back(request, form, done=f"breaker {key} reset" + (
        f" ({transition})" if transition else ": it was not open"))


async def reload_form(request: web.Request) -> web.Response:
    form = await request.post()
    result = await request.app[SERVICE].reload()
    if result.ok:
        raise back(request, form, done="configuration reloaded")
    raise back(request, form, error="reload failed: " + "; ".join(result.errors[:3]))


# -- login -----------------------------------------------------------------------------
async def login_page(request: web.Request) -> web.Response:
    if not request.app[SERVICE].runtime.config.auth.enabled:
        raise web.HTTPSeeOther("/")
    return await _login(request, "", 200)


async def _login(request: web.Request, error: str, status: int) -> web.Response:
    nxt = request.query.get("next", "/")
    html = request.app[TEMPLATES].get_template("login.html.j2").render(
        csrf=session.login_csrf(request), next=local(nxt),
        error=error, who=None, path="/login", message="", auth=True, pending=0, paused=False)
    return web.Response(text=html, content_type="text/html", status=status,
                        headers=session.HEADERS)


async def login_post(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    form = await request.post()
    token = form.get("csrf")
    if not access.csrf_ok(request.app[session.CONSOLE].secret, "login",
                          token if isinstance(token, str) else None):
        return await _login(request, "the form expired: try again", 403)
    auth = service.runtime.config.auth
    who = None
    if str(form.get("token", "")).strip():
        who = access.check_token(auth, str(form["token"]).strip())
    elif form.get("username"):
        who = access.check_password(auth, str(form["username"]), str(form.get("password", "")))
    if who is None or not who.operator:
        message = ("that credential may only post webhooks: use an operator's"
                   if who is not None else "not a valid operator token or password")
        service.failed_logins.note("console login", request.remote)
        return await _login(request, message, 401)
    response = web.HTTPSeeOther(local(form.get("next")))
    session.start_session(response, request, who)
    raise response


async def logout(request: web.Request) -> web.Response:
    response = web.HTTPSeeOther("/login")
    try:
        await session.end_session(response, request)
    except JournalUnavailable:
        return web.Response(status=503, text="journal unavailable: the session could not be "
                                             "ended; try again\n")
    raise response


def add_routes(app: web.Application) -> None:
    app[TEMPLATES] = environment()
    app.router.add_get("/", alerts_page)
    app.router.add_get("/ui/actions", actions_page)
    app.router.add_get("/ui/pauses", pauses_page)
    app.router.add_get("/ui/breakers", breakers_page)
    app.router.add_get("/ui/config", config_page)
    app.router.add_post("/ui/approvals/{id:\\d+}/{verb:approve|reject}", decide_form)
    app.router.add_post("/ui/attempts/{id:\\d+}/cancel", cancel_form)
    app.router.add_post("/ui/alerts/{id}/category", correct_form)
    app.router.add_post("/ui/pause", pause_form)
    app.router.add_post("/ui/pauses/{id:\\d+}/lift", lift_form)
    app.router.add_post("/ui/resume", resume_form)
    app.router.add_post("/ui/breakers/reset", reset_form)
    app.router.add_post("/ui/reload", reload_form)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login_post)
    app.router.add_post("/logout", logout)
    app.router.add_static("/ui/static/", STATIC, append_version=True)
