"""Error types shared by every layer.

Config errors carry the origin (file and line) so every message an operator sees reads
``path:line: message``. Action and delivery errors say whether trying again can help:
``PermanentError`` stops at once, ``TemporaryError`` is retried after ``delay`` (or the
caller's backoff when the upstream gave none).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a piece of configuration was written."""

    path: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


class ConfigError(Exception):
    """One problem in one place of the configuration."""

    def __init__(self, origin: Origin | None, message: str) -> None:
        self.origin = origin
        self.message = message
        super().__init__(f"{origin}: {message}" if origin else message)


class ConfigErrors(Exception):
    """Every problem found while loading; loading goes on past the first to report all."""

    def __init__(self, errors: Iterable[ConfigError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


class PermanentError(Exception):
    """Trying again cannot help (4xx other than 429, unknown object, bad request)."""


class TemporaryError(Exception):
    """Trying again later may help; ``delay`` is the upstream's own hint (Retry-After)."""

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


def classify_http_status(status: int, retry_after: str | None = None) -> Exception | None:
    """The one place that decides retry-or-not for an HTTP answer from any upstream.

    Returns None for success, a TemporaryError for 5xx/429 (with ``Retry-After`` seconds when
    given), a PermanentError for any other 4xx.
    """
    if 200 <= status < 300:
        return None
    if status == 429 or status >= 500 or status == 408:
        return TemporaryError(f"HTTP {status}", parse_retry_after(retry_after))
    return PermanentError(f"HTTP {status}")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from datetime import UTC, datetime
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
