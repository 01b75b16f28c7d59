"""Pauses like Alertmanager silences: which pause, if any, holds an alert's actions.

A pause without matchers holds everything (the kill switch); with matchers it holds the
actions of alerts whose labels satisfy all of them. It ends when lifted or at ``until``.
Pure: the journal stores pauses, this module only reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache

from responder.config.durations import parse_duration
from responder.config.runbooks import Matcher, parse_matcher
from responder.journal import Pause


def parse_until(text: str | None, now: float) -> float | None:
    """``until`` as a Unix time: a duration from now (``2h``) or an RFC 3339 time."""
    if text is None or not str(text).strip():
        return None
    text = str(text).strip()
    try:
        return now + parse_duration(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"until: expected a duration (2h) or an RFC 3339 time "
                         f"(2026-12-01T18:00:00Z), got {text!r}") from None
    if when.tzinfo is None:
        raise ValueError(f"until: {text!r} has no time zone (add Z or +01:00)")
    if when.timestamp() <= now:
        raise ValueError(f"until: {text!r} is in the past")
    return when.timestamp()


def parse_matchers(texts: Sequence[object]) -> list[Matcher]:
    """Matchers in Alertmanager syntax; ValueError names the bad one."""
    out = []
    for text in texts:
        if not isinstance(text, str):
            raise ValueError(f"matchers: expected strings like namespace=\"ci\", got {text!r}")
        out.append(_matcher(text.strip()))
    return out


@lru_cache(maxsize=256)
def _matcher(text: str) -> Matcher:
    return parse_matcher(text)


def active(pause: Pause, now: float) -> bool:
    return pause.lifted_at is None and (pause.until is None or pause.until > now)


def covering(pauses: Iterable[Pause], labels: Mapping[str, str], now: float) -> Pause | None:
    """The first active pause that holds an alert with these labels."""
    for pause in pauses:
        if active(pause, now) and all(_matcher(m).matches(labels) for m in pause.matchers):
            return pause
    return None
