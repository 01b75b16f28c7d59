"""The one scrubber every error path goes through: secrets out of logs, events and errors.

Upstreams echo what they were sent: an Argo Server 403 quotes the bearer token, a Slack
400 quotes the webhook path, a proxy error quotes the URL. Replacing the whole configured
value is not enough, because what is echoed is often a part of it: a Slack webhook URL's
path segments (``T…/B…/token``), a URL's userinfo or a query token, a token without its
``Bearer`` prefix, a password inside a Basic header. ``fragments`` lists every such part
of a secret; a ``Redactor`` replaces them all, longest first, and is what senders, the
action backends, the journal's events, the events API and the log handlers apply.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import parse_qsl, quote, unquote, urlsplit

MASK: Final = "<secret>"
# Shorter parts are too likely to be ordinary words of a message (a user name "am").
MIN_FRAGMENT: Final = 6
_WORDS: Final = frozenset({"services", "hooks", "webhook", "webhooks", "enqueue", "events",
                           "api", "v1", "v2", "incoming", "default", "workflows"})
_SECRETISH: Final = re.compile(r"[0-9A-Z_\-]")
_DSN_SCHEMES: Final = frozenset({"postgresql", "postgres"})
# libpq's key=value form: ``host=db user=responder password=...``
_DSN_PASSWORD: Final = re.compile(r"(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")


def _url_fragments(value: str) -> set[str]:
    try:
        parts = urlsplit(value)
    except ValueError:
        return set()
    if not parts.scheme or not parts.netloc:
        return set()
    found: set[str] = set()
    if parts.password:
        found.update({parts.password, unquote(parts.password)})
    if parts.scheme in _DSN_SCHEMES:
        # A database URL's credential is its password; its user and database names are
        # what an operator needs to read in "cannot reach ..." and must stay.
        return found
    if "@" in parts.netloc:
        found.add(parts.netloc.rsplit("@", 1)[0])
    path = parts.path.strip("/")
    if path:
        segments = [s for s in path.split("/") if s]
        for i, segment in enumerate(segments):
            # Credential-carrying segments look random (digits, capitals) or are long; the
            # path from the first of them on is echoed too (``/B0/token`` of a Slack URL).
            if segment.lower() in _WORDS:
                continue
            if len(segment) >= 16 or _SECRETISH.search(segment):
                found.add(segment)
                found.add("/".join(segments[i:]))
    for _, item in parse_qsl(parts.query, keep_blank_values=False):
        found.add(item)
    if parts.query:
        found.add(parts.query)
    if parts.fragment:
        found.add(parts.fragment)
    return found


def fragments(secret: str) -> set[str]:
    """Every part of ``secret`` that gives away the credential when echoed."""
    value = secret.strip()
    found = {value}
    scheme, _, rest = value.partition(" ")
    if scheme.lower() in ("bearer", "basic", "token") and rest.strip():
        found.add(rest.strip())
    found |= _url_fragments(value)
    for match in _DSN_PASSWORD.finditer(value):
        password = match.group(1)
        found.update({password, password.strip("'")})
    # As echoed inside JSON or a URL.
    for item in list(found):
        found.add(json.dumps(item)[1:-1])
        found.add(quote(item, safe=""))
    return {f for f in found if len(f) >= MIN_FRAGMENT}


def basic_credentials(username: str, password: str) -> str:
    """What a Basic ``Authorization`` header carries, to be scrubbed like the password."""
    return base64.b64encode(f"{username}:{password}".encode()).decode()


class Redactor:
    """Replaces every fragment of the secrets it was given; immutable, cheap to share."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        parts: set[str] = set()
        for secret in secrets:
            if secret:
                parts |= fragments(secret)
        self._parts = tuple(sorted(parts, key=len, reverse=True))
        self._pattern = (re.compile("|".join(re.escape(p) for p in self._parts))
                         if self._parts else None)

    def __add__(self, other: Redactor) -> Redactor:
        joined = Redactor()
        joined._parts = tuple(sorted(set(self._parts) | set(other._parts), key=len,
                                     reverse=True))
        joined._pattern = (re.compile("|".join(re.escape(p) for p in joined._parts))
                           if joined._parts else None)
        return joined

    def scrub(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def scrub_value(self, value: Any) -> Any:
        """``value`` with every string in it scrubbed (dicts, lists and tuples walked)."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {self.scrub_value(k): self.scrub_value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.scrub_value(v) for v in value]
        return value


class RedactingFilter(logging.Filter):
    """A handler filter: the record's message and traceback leave without secrets.

    ``redactor`` is replaced on reload; records are rewritten in place (message formatted
    once, arguments dropped), so every handler after this one sees the scrubbed text."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = self.redactor.scrub(message)
        if scrubbed != message or record.args:
            record.msg, record.args = scrubbed, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.scrub(record.exc_text)
        return True
