"""The console's guard: who the browser is, and whether a form really came from the console.

A browser logs in once at ``/login`` with an operator's token or basic-auth password and
gets an HttpOnly, SameSite=Strict session cookie (signed, see ``responder.access``).
Every form carries a CSRF token bound to that session; a post without it, or without a
session, is refused before any handler runs. Without auth configured the console is open
(like the API), and its forms still carry a CSRF token, bound to the journal's secret.

Logging out revokes the session in the journal (the hash of its cookie, until the cookie
expires), so a copy of the cookie is refused afterwards, after a restart and on every
replica. Each replica reads the revoked sessions again at most every ``REFRESH`` seconds
(one small query, only when a console request comes): a logout on another replica holds
here within that time, one on this replica at once.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import quote

from aiohttp import web

from responder import access
from responder.access import Principal
from responder.journal import JournalUnavailable
from responder.receive import SERVICE, is_console_path
from responder.service import Service

log = logging.getLogger("responder.console")
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


def session_id(cookie: str) -> str:
    """What the journal keeps of a revoked session: a hash, never the cookie itself."""
    return hashlib.sha256(cookie.encode()).hexdigest()[:32]


@dataclass
class ConsoleState:
    """The signing secret and the revoked sessions, shared by every replica through the
    journal."""

    REFRESH = 1.0   # seconds a replica may go on trusting its copy of the revoked sessions

    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    revoked: frozenset[str] = frozenset()
    read_at: float = float("-inf")
    mine: dict[str, float] = field(default_factory=dict)   # revoked here: id -> until

    async def load(self, service: Service) -> None:
        stored = await service.journal.get_flag(SECRET_FLAG)
        if not isinstance(stored, str):
            await service.journal.set_flag(SECRET_FLAG, secrets.token_hex(32))
            stored = await service.journal.get_flag(SECRET_FLAG)
        self.secret = bytes.fromhex(str(stored))
        await self.refresh(service)

    async def refresh(self, service: Service) -> None:
        """Read the revoked sessions again when the copy is ``REFRESH`` seconds old."""
        now = service.clock()
        if now - self.read_at < self.REFRESH:
            return
        self.read_at = now   # requests meanwhile use the copy: one read at a time
        try:
            self.revoked = frozenset(await service.journal.revoked_sessions())
        except JournalUnavailable as exc:
            self.read_at = float("-inf")
            log.warning("revoked console sessions not read (the last copy holds): %s", exc)
        self.mine = {k: until for k, until in self.mine.items() if until >= now}

    def is_revoked(self, cookie: str) -> bool:
        key = session_id(cookie)
        return key in self.revoked or key in self.mine

    async def revoke(self, service: Service, cookie: str) -> None:
        """End the session of ``cookie`` everywhere; raises JournalUnavailable when the
        journal could not record it (the session then still holds on other replicas)."""
        key, until = session_id(cookie), service.clock() + access.SESSION_TTL
        await service.journal.revoke_session(key, until=until)
        self.mine[key] = until


CONSOLE = web.AppKey("console", ConsoleState)


def browser(request: web.Request) -> tuple[Principal | None, str]:
    """Who the request proves (session cookie, else an Authorization header), and what
    its CSRF token is bound to; (None, "") when it proves nobody."""
    service = request.app[SERVICE]
    auth = service.runtime.config.auth
    if not auth.enabled:
        return access.identify(auth, None), "anonymous"
    cookie = request.cookies.get(access.SESSION_COOKIE)
    state = request.app[CONSOLE]
    who = access.read_session(state.secret, auth, cookie, service.clock())
    if who is not None and cookie and not state.is_revoked(cookie):
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
    if request.cookies.get(access.SESSION_COOKIE):
        await request.app[CONSOLE].refresh(request.app[SERVICE])
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


async def end_session(response: web.StreamResponse, request: web.Request) -> None:
    """Revoke the browser's session (see ``ConsoleState.revoke``) and drop its cookie."""
    cookie = request.cookies.get(access.SESSION_COOKIE)
    if cookie and request.app[SERVICE].runtime.config.auth.enabled:
        await request.app[CONSOLE].revoke(request.app[SERVICE], cookie)
    response.del_cookie(access.SESSION_COOKIE, path="/")
