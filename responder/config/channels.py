"""Notification channels (SPEC §3 ``channels:``) parsed into frozen, typed specs.

Each channel type has its own settings dataclass so senders never read raw dicts, and
every mistake is reported at its file and line. Credentials (Slack and webhook URLs,
routing keys, passwords, tokens) are held in ``Secret``: its repr and str are masked, so a
spec can be logged, printed by ``responder check`` or put in an exception without leaking.
With no channels configured, the embedded default is one ``console`` channel of type log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from responder.config.reader import Section
from responder.errors import Origin

CHANNEL_TYPES: Final = ("slack", "email", "pagerduty", "webhook", "log")
PAGERDUTY_EVENTS_URL: Final = "https://events.pagerduty.com/v2/enqueue"
DEFAULT_ORIGIN: Final = Origin("(embedded default)")

#: Token bucket defaults: Slack incoming webhooks allow about one message per second,
#: PagerDuty 120 events per minute per routing key; mail servers dislike bursts.
DEFAULT_RATE: Final[dict[str, tuple[float, int]]] = {
    "slack": (1.0, 5), "email": (1.0, 5), "pagerduty": (2.0, 10), "webhook": (10.0, 20),
    "log": (10_000.0, 10_000),
}
DEFAULT_TIMEOUT: Final = 10.0
#: Delivery retries (``retry: {max_tries, backoff}``): tries in all, and the first wait,
#: doubling up to 5m; with the defaults a dead upstream reaches the fallback in ~8.5 minutes.
DEFAULT_MAX_TRIES: Final = 10
DEFAULT_BACKOFF: Final = 1.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class Secret:
    """A credential: compares by value, never shows it; ``reveal()`` at the point of use."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class SlackSettings:
    url: Secret
    timeout: float = DEFAULT_TIMEOUT
    signing_secret: Secret | None = None     # the Slack app's: Approve / Reject buttons
    approvers: tuple[str, ...] | None = None  # Slack user ids or names who may decide


@dataclass(frozen=True, slots=True)
class EmailSettings:
    host: str
    port: int
    sender: str                     # the ``from`` key
    to: tuple[str, ...]
    starttls: bool = False
    tls: bool = False               # implicit TLS (SMTPS, usually port 465)
    username: str | None = None
    password: Secret | None = None
    ca_file: Path | None = None
    insecure_skip_verify: bool = False
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True, slots=True)
class PagerDutySettings:
    routing_key: Secret
    url: str = PAGERDUTY_EVENTS_URL
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True, slots=True)
class BasicAuth:
    username: str
    password: Secret


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    url: Secret
    bearer_token: Secret | None = None
    basic_auth: BasicAuth | None = None
    hmac_secret: Secret | None = None   # X-Responder-Signature: sha256=<hex of the body>
    timeout: float = DEFAULT_TIMEOUT
    headers: tuple[tuple[str, Secret], ...] = ()   # every value treated as a credential


@dataclass(frozen=True, slots=True)
class LogSettings:
    pass


Settings = SlackSettings | EmailSettings | PagerDutySettings | WebhookSettings | LogSettings


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """One configured channel; ``template`` names its template set (default: its type)."""

    name: str
    type: str
    origin: Origin
    settings: Settings
    rate: float
    burst: int
    template: str | None = None
    max_tries: int = DEFAULT_MAX_TRIES
    backoff: float = DEFAULT_BACKOFF


def default_channels() -> dict[str, ChannelSpec]:
    rate, burst = DEFAULT_RATE["log"]
    return {"console": ChannelSpec("console", "log", DEFAULT_ORIGIN, LogSettings(), rate, burst)}


def parse_channels(section: Section | None) -> dict[str, ChannelSpec]:
    """Every channel of ``channels:``; errors go to ``section.errors`` with file and line."""
    if section is None or (section.valid and not section.data):
        return default_channels()
    out: dict[str, ChannelSpec] = {}
    for name in list(section.data):
        sub = section.section(name)
        if sub is None:
            section.error(section.at(name), f"{section.name(name)}: expected a mapping "
                                            f"like {{type: log}}, got null")
            continue
        if not _NAME.match(name):
            section.error(section.at(name), f"{section.name(name)}: channel names are letters, "
                                            f"digits, '_', '.', '-'")
        spec = _channel(name, sub)
        if spec is not None:
            out[name] = spec
    return out


def _channel(name: str, sec: Section) -> ChannelSpec | None:
    if not sec.valid:
        return None
    origin = sec.origin or DEFAULT_ORIGIN
    kind = sec.str("type")
    if kind is None:
        _skip_rest(sec)
        return None
    if kind not in CHANNEL_TYPES:
        sec.error(sec.at("type"), f"{sec.name('type')}: unknown channel type {kind!r} "
                                  f"(one of {', '.join(CHANNEL_TYPES)})")
        _skip_rest(sec)
        return None
    rate, burst = DEFAULT_RATE[kind]
    limit = sec.section("rate_limit")
    if limit is not None:
        rate = limit.number("rate", rate, minimum=0.001)
        burst = limit.int("burst", burst, minimum=1)
        limit.finish()
    max_tries, backoff = DEFAULT_MAX_TRIES, DEFAULT_BACKOFF
    retry = sec.section("retry")
    if retry is not None:
        max_tries = retry.int("max_tries", max_tries, minimum=1)
        backoff = retry.duration("backoff", backoff)
        if backoff <= 0:
            retry.error(retry.at("backoff"), f"{retry.name('backoff')}: must be positive")
        retry.finish()
    timeout = sec.duration("timeout", DEFAULT_TIMEOUT)
    if timeout <= 0:
        sec.error(sec.at("timeout"), f"{sec.name('timeout')}: must be positive")
    template = sec.str("template", None)
    settings = _PARSERS[kind](sec, timeout)
    sec.finish()
    if settings is None:
        return None
    return ChannelSpec(name, kind, origin, settings, float(rate), int(burst), template,
                       int(max_tries), float(backoff))


def _skip_rest(sec: Section) -> None:
    """A channel without a usable type: its other keys cannot be judged, so are not."""
    for key in sec.data:
        sec.raw(key)


def _url(sec: Section, key: str = "url") -> Secret | None:
    value = sec.secret(key, required=True)
    if value is None:
        return None
    if not value.startswith(("http://", "https://")):
        where = f"{key}_file" if sec.has(f"{key}_file") else key
        # Never echo the value: a webhook URL is a credential.
        sec.error(sec.at(where), f"{sec.name(key)}: expected an http:// or https:// URL")
        return None
    return Secret(value)


def _optional_secret(sec: Section, key: str) -> Secret | None:
    value = sec.secret(key)
    return Secret(value) if value is not None else None


def _slack(sec: Section, timeout: float) -> SlackSettings | None:
    url = _url(sec)
    signing = _optional_secret(sec, "signing_secret")
    approvers = sec.str_list("approvers", None)
    if approvers is not None and signing is None:
        sec.error(sec.at("approvers"), f"{sec.name('approvers')}: only with signing_secret_file "
                                       "(the buttons need the Slack app's signing secret)")
    if url is None:
        return None
    return SlackSettings(url, timeout, signing, tuple(approvers) if approvers else None)


def _email(sec: Section, timeout: float) -> EmailSettings | None:
    host = sec.str("host")
    starttls = sec.bool("starttls", False)
    tls = sec.bool("tls", False)
    if starttls and tls:
        sec.error(sec.at("tls"), f"{sec.name('tls')}: give starttls or tls (implicit), "
                                 f"not both")
    port = sec.int("port", 465 if tls else 587 if starttls else 25, minimum=1)
    if isinstance(port, int) and port > 65535:
        sec.error(sec.at("port"), f"{sec.name('port')}: must be at most 65535")
    sender = sec.str("from")
    to = sec.str_list("to")
    if isinstance(to, list) and not to:
        sec.error(sec.at("to"), f"{sec.name('to')}: at least one recipient")
    for key, addresses in (("from", [sender] if isinstance(sender, str) else []),
                           ("to", to if isinstance(to, list) else [])):
        for address in addresses:
            if "@" not in address or any(c in address for c in "\r\n"):
                sec.error(sec.at(key), f"{sec.name(key)}: {address!r} is not an email address")
    username = sec.str("username", None)
    password = _optional_secret(sec, "password")
    if (username is None) != (password is None):
        sec.error(sec.origin, f"{sec.where}: username and password go together")
    if username is not None and not (starttls or tls):
        sec.error(sec.at("username"), f"{sec.name('username')}: the password would cross the "
                                      f"network in clear: set starttls or tls")
    ca_file = sec.path("ca_file", None)
    if ca_file is not None and not ca_file.is_file():
        sec.error(sec.at("ca_file"), f"{sec.name('ca_file')}: no such file {ca_file}")
    insecure = sec.bool("insecure_skip_verify", False)
    if host is None or sender is None or not isinstance(to, list) or not to:
        return None
    return EmailSettings(host=host, port=port, sender=sender, to=tuple(to),
                         starttls=bool(starttls), tls=bool(tls), username=username,
                         password=password, ca_file=ca_file, insecure_skip_verify=bool(insecure),
                         timeout=timeout)


def _pagerduty(sec: Section, timeout: float) -> PagerDutySettings | None:
    key = sec.secret("routing_key", required=True)
    url = sec.str("url", PAGERDUTY_EVENTS_URL)
    if isinstance(url, str) and not url.startswith(("http://", "https://")):
        sec.error(sec.at("url"), f"{sec.name('url')}: expected an http:// or https:// URL")
    if key is None:
        return None
    return PagerDutySettings(Secret(key), url, timeout)


def _webhook(sec: Section, timeout: float) -> WebhookSettings | None:
    url = _url(sec)
    bearer = _optional_secret(sec, "bearer_token")
    basic: BasicAuth | None = None
    auth = sec.section("basic_auth")
    if auth is not None and auth.valid:
        username = auth.str("username")
        password = auth.secret("password", required=True)
        auth.finish()
        if username is not None and password is not None:
            basic = BasicAuth(username, Secret(password))
    if bearer is not None and auth is not None:
        sec.error(sec.at("basic_auth"), f"{sec.where}: give bearer_token or basic_auth, "
                                        f"not both")
    hmac_secret = _optional_secret(sec, "hmac_secret")
    headers = _headers(sec.section("headers"),
                       has_auth=bearer is not None or auth is not None)
    if url is None:
        return None
    return WebhookSettings(url, bearer, basic, hmac_secret, timeout, headers)


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: Headers the sender sets itself: a channel cannot replace them.
_OWN_HEADERS = frozenset({"content-type", "content-length", "host", "transfer-encoding",
                          "x-responder-signature"})


def _headers(sec: Section | None, *, has_auth: bool) -> tuple[tuple[str, Secret], ...]:
    """``headers: {Name: value, Other_file: path}``: each value inline or read from a file
    (like every secret), kept as a ``Secret`` since most carry credentials."""
    if sec is None or not sec.valid:
        return ()
    out: list[tuple[str, Secret]] = []
    names = {str(key).removesuffix("_file") for key in sec.data}
    for name in sorted(names, key=str.lower):
        shown = sec.name(name)
        where = sec.at(name if name in sec.data else f"{name}_file")
        value = sec.secret(name)
        if not _HEADER_NAME.fullmatch(name):
            sec.error(where, f"{shown}: not a valid HTTP header name")
            continue
        if name.lower() in _OWN_HEADERS:
            sec.error(where, f"{shown}: set by the responder itself, not by a channel")
            continue
        if name.lower() == "authorization" and has_auth:
            sec.error(where, f"{shown}: give bearer_token, basic_auth or an Authorization header, "
                      f"not two")
            continue
        if value is None:
            continue
        if any(c in value for c in "\r\n\0"):
            # Never echo the value: it is a credential.
            sec.error(where, f"{shown}: a header value cannot hold a line break")
            continue
        out.append((name, Secret(value)))
    sec.finish()
    return tuple(out)


def _log(sec: Section, timeout: float) -> LogSettings:
    return LogSettings()


_PARSERS: Final[dict[str, Any]] = {
    "slack": _slack, "email": _email, "pagerduty": _pagerduty, "webhook": _webhook,
    "log": _log,
}
