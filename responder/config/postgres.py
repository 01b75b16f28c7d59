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
    lease: float | None = None    # seconds a dead replica's claimed work waits for another

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
    """``dsn`` or ``dsn_file``, and ``lease``; errors name the key's line, never the DSN.

    ``lease`` overrides how long claimed work stays with the replica that claimed it
    (by default 2 minutes for a delivery or message, 5 for an action): a replica that
    dies holds its work that long. Shorter means faster take-over and, for an action that
    runs longer than the lease, a second run (guarded by the workflow's phase check)."""
    dsn = section.secret("dsn", required=True, noun="DSN")
    lease = section.duration("lease", None)
    if lease is not None and lease < 1:
        section.error(section.at("lease"), f"{section.name('lease')}: must be at least 1s")
        lease = None
    section.finish()
    if dsn is None:
        return None
    key = "dsn_file" if section.has("dsn_file") else "dsn"
    if not dsn.startswith(("postgresql://", "postgres://")) and not _KEYWORD.match(dsn):
        section.error(section.at(key), f"{section.name(key)}: expected a postgresql:// URL or "
                      "libpq key=value pairs")
        return None
    return PostgresSpec(dsn, lease)
