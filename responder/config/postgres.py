"""``state.postgres``: where several replicas share their journal (SPEC §12).

The DSN is a secret (it usually carries a password), so it is kept out of every ``repr``
and every message; ``redact_dsn`` is the only form of it that logs, errors, ``check`` and
metrics ever show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from responder.config.reader import Section

_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_KEYWORD = re.compile(r"^\s*[a-z_]+\s*=", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PostgresSpec:
    dsn: str = field(repr=False)

    @property
    def shown(self) -> str:
        return redact_dsn(self.dsn)


def redact_dsn(dsn: str) -> str:
    """``dsn`` without its password, in either form libpq accepts (URL or ``key=value``)."""
    if dsn.startswith(("postgresql://", "postgres://")):
        try:
            parts = urlsplit(dsn)
            netloc = parts.netloc
        except ValueError:
            return "postgresql://(unparsable)"
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}@{host}" if user else host
        query = _KEYWORD_PASSWORD.sub(r"\1***", parts.query.replace("&", " ")).replace(" ", "&")
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    return _KEYWORD_PASSWORD.sub(r"\1***", dsn)


def parse_postgres(section: Section) -> PostgresSpec | None:
    """``dsn`` or ``dsn_file``; errors name the key's line, never the DSN itself."""
    dsn = section.secret("dsn", required=True)
    section.finish()
    if dsn is None:
        return None
    key = "dsn_file" if section.has("dsn_file") else "dsn"
    if not dsn:
        section.error(section.at(key), f"{section.name(key)}: the DSN is empty")
        return None
    if not dsn.startswith(("postgresql://", "postgres://")) and not _KEYWORD.match(dsn):
        section.error(section.at(key), f"{section.name(key)}: expected a postgresql:// URL or "
                      "libpq key=value pairs")
        return None
    return PostgresSpec(dsn)
