"""The console's guard: who the browser is, and whether a form really came from the console.

A browser logs in once at ``/login`` with an operator's token or basic-auth password and
gets an HttpOnly, SameSite=Strict session cookie (signed, see ``responder.access``).
Every form carries a CSRF token bound to that session; a post without it, or without a
session, is refused before any handler runs. Without auth configured the console is open
(like the API), and its forms still carry a CSRF token, bound to the journal's secret.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import quote

from aiohttp import web

from responder import access
from responder.access import Principal
from responder.receive import SERVICE, is_console_path
from responder.service import Service

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN = frozenset({"/login"})
SECRET_FLAG = "console_secret"
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; "
                               "img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@dataclass
class ConsoleState:
    """The signing secret, shared by every replica through the journal."""

    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    async def load(self, service: Service) -> None:
        stored = await service.journal.get_flag(SECRET_FLAG)
        if not isinstance(stored, str):
            await service.journal.set_flag(SECRET_FLAG, secrets.token_hex(32))
            stored = await service.journal.get_flag(SECRET_FLAG)
        self.secret = bytes.fromhex(str(stored))


CONSOLE = web.AppKey("console", ConsoleState)


def browser(request: web.Request) -> tuple[Principal | None, str]:
    """Who the request proves (session cookie, else an Authorization header), and what
    its CSRF token is bound to; (None, "") when it proves nobody."""
    service = request.app[SERVICE]
    auth = service.runtime.config.auth
    if not auth.enabled:
        return access.identify(auth, None), "anonymous"
    cookie = request.cookies.get(access.SESSION_COOKIE)
    who = access.read_session(request.app[CONSOLE].secret, auth, cookie, service.clock())
    if who is not None and cookie:
        return who, cookie
    header = request.headers.get("Authorization")
    if header:
        who = access.identify(auth, header)
        if who is not None:
            return who, header
    return None, ""


def principal(request: web.Request) -> Principal:
    who, _ = browser(request)
    assert who is not None   # the middleware let the request in
    return who


def csrf(request: web.Request) -> str:
    return access.csrf_token(request.app[CONSOLE].secret, browser(request)[1])


def login_csrf(request: web.Request) -> str:
    return access.csrf_token(request.app[CONSOLE].secret, "login")


def _refuse(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n", headers=HEADERS)


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not is_console_path(request.path):
        return await handler(request)
    if request.path.startswith("/ui/static/") or request.path in OPEN:
        response = await handler(request)
        response.headers.update(HEADERS)
        return response
    who, bound = browser(request)
    if who is not None and not who.operator:
        return _refuse(403, "this credential may only post webhooks")
    if who is None:
        if request.method in ("GET", "HEAD"):
            raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs)}"
                                   if request.path != "/" else "/login")
        return _refuse(401, "no session: log in at /login")
    if request.method not in ("GET", "HEAD"):
        form = await request.post()
        token = form.get("csrf")
        secret = request.app[CONSOLE].secret
        if not access.csrf_ok(secret, bound, token if isinstance(token, str) else None):
            return _refuse(403, "missing or invalid CSRF token: reload the page and try again")
    response = await handler(request)
    response.headers.update(HEADERS)
    return response


def start_session(response: web.StreamResponse, request: web.Request, who: Principal) -> None:
    service = request.app[SERVICE]
    value = access.make_session(request.app[CONSOLE].secret, who, service.clock())
    response.set_cookie(access.SESSION_COOKIE, value, max_age=int(access.SESSION_TTL),
                        path="/", httponly=True, samesite="Strict", secure=request.secure)


def end_session(response: web.StreamResponse) -> None:
    response.del_cookie(access.SESSION_COOKIE, path="/")
