"""Who is calling: the webhook credential, an operator, or (without auth) anybody.

Alertmanager's credential may only post webhooks once ``auth.operators`` is configured;
the people on call and their tools (the console, ``responder ctl``) use their own
credentials, and their names are what the audit log records. Without ``auth.operators``
the webhook credential serves both, as before operators existed (``responder check``
warns). Console sessions are stateless signed cookies: any replica can verify them with
the secret kept in the journal, and changing or removing an operator's credential ends
that operator's sessions (logging out ends one: ``responder.console.session``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from responder.config.main import AuthSpec

SESSION_COOKIE = "responder_session"
SESSION_TTL = 12 * 3600.0
ANONYMOUS = "anonymous"
WEBHOOK_CREDENTIAL = "webhook-credential"


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    operator: bool      # may use the operator API and the console
    fingerprint: str    # of the credential, so a changed credential ends its sessions


def _fp(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


def _eq(a: str, b: str | None) -> bool:
    return b is not None and hmac.compare_digest(a.encode(), b.encode())


def _decode_basic(value: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def identify(auth: AuthSpec, header: str | None) -> Principal | None:
    """The principal an ``Authorization`` header proves, or None when it proves nobody."""
    if not auth.enabled:
        return Principal(ANONYMOUS, True, "")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "bearer":
        return check_token(auth, value)
    if scheme == "basic":
        pair = _decode_basic(value)
        return check_password(auth, *pair) if pair else None
    return None


def check_token(auth: AuthSpec, token: str) -> Principal | None:
    found: Principal | None = None
    # every credential is compared, so timing does not tell which one matched
    for op in auth.operators:
        if op.bearer_token and _eq(token, op.bearer_token) and found is None:
            found = Principal(op.name, True, _fp("token", op.name, op.bearer_token))
    if auth.bearer_token and _eq(token, auth.bearer_token) and found is None:
        found = Principal(WEBHOOK_CREDENTIAL, not auth.operators, _fp("token", auth.bearer_token))
    return found


def check_password(auth: AuthSpec, username: str, password: str) -> Principal | None:
    found: Principal | None = None
    for op in auth.operators:
        if op.basic_username is None:
            continue
        ok = _eq(username, op.basic_username) & _eq(password, op.basic_password or "")
        if ok and found is None:
            found = Principal(op.name, True,
                              _fp("basic", op.name, username, op.basic_password or ""))
    if auth.basic_username is not None:
        ok = _eq(username, auth.basic_username) & _eq(password, auth.basic_password or "")
        if ok and found is None:
            found = Principal(username, not auth.operators,
                              _fp("basic", username, auth.basic_password or ""))
    return found


def principals(auth: AuthSpec) -> dict[str, Principal]:
    """Every operator principal by name (the sessions a cookie may name)."""
    out: dict[str, Principal] = {}
    for op in auth.operators:
        if op.bearer_token:
            out[op.name] = Principal(op.name, True, _fp("token", op.name, op.bearer_token))
        elif op.basic_username is not None:
            out[op.name] = Principal(op.name, True, _fp("basic", op.name, op.basic_username,
                                                         op.basic_password or ""))
    if not auth.operators:
        if auth.bearer_token:
            out[WEBHOOK_CREDENTIAL] = Principal(WEBHOOK_CREDENTIAL, True,
                                                _fp("token", auth.bearer_token))
        elif auth.basic_username is not None:
            out[auth.basic_username] = Principal(
                auth.basic_username, True,
                _fp("basic", auth.basic_username, auth.basic_password or ""))
    return out


def _sign(secret: bytes, payload: str) -> str:
    return hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()


def make_session(secret: bytes, who: Principal, now: float, ttl: float = SESSION_TTL) -> str:
    # "i" makes every login's cookie its own, so logging one out ends only that one
    payload = base64.urlsafe_b64encode(json.dumps(
        {"n": who.name, "e": int(now + ttl), "f": who.fingerprint,
         "i": secrets.token_urlsafe(12)}).encode()).decode().rstrip("=")
    return f"{payload}.{_sign(secret, payload)}"


def read_session(secret: bytes, auth: AuthSpec, cookie: str | None,
                 now: float) -> Principal | None:
    """The operator a session cookie names, if its signature, expiry and credential hold."""
    if not cookie or "." not in cookie:
        return None
    payload, _, signature = cookie.rpartition(".")
    if not hmac.compare_digest(signature.encode(), _sign(secret, payload).encode()):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        name, expires, fingerprint = str(data["n"]), float(data["e"]), str(data["f"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    who = principals(auth).get(name)
    if who is None or expires < now or not hmac.compare_digest(fingerprint, who.fingerprint):
        return None
    return who


def csrf_token(secret: bytes, session: str) -> str:
    """The token every console form carries: bound to the session (or, without auth, to
    the journal's secret alone)."""
    return _sign(secret, "csrf:" + session)[:40]


def csrf_ok(secret: bytes, session: str, token: str | None) -> bool:
    return token is not None and hmac.compare_digest(token.encode(),
                                                     csrf_token(secret, session).encode())


class FailedLogins:
    """Refused credentials, logged as a warning at most once per ``every`` seconds with
    the count of those in between (a scanner must not flood the log; an operator still
    sees that someone is knocking). Never the credential itself."""

    def __init__(self, every: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self._last: float | None = None
        self._since = 0

    def note(self, what: str, peer: str | None) -> None:
        now = self.clock()
        if self._last is not None and now - self._last < self.every:
            self._since += 1
            return
        more = f" ({self._since} more refused since the last report)" if self._since else ""
        logging.getLogger("responder.auth").warning(
            "authentication failed: %s from %s%s", what, peer or "?", more)
        self._last, self._since = now, 0
