"""Alert values made safe for each output format, and cut to each sink's limits.

Labels and annotations are written by whoever can make Prometheus fire an alert, so they are
hostile input by the time they reach a notification: a label ``<!channel>`` must not page a
whole Slack workspace, a ``runbook_url: javascript:...`` must not become a link, a CR/LF in
a summary must not add an email header, and a 100,000-character summary must still be
delivered, shortened. Every format's escaping and every sink's limit lives here; templates
reach the escapers as filters (``mrkdwn``, ``link``, ``header``), the renderer applies the
limits and the link check to what the templates produced.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Final
from urllib.parse import urlsplit

from markupsafe import Markup, escape

ELLIPSIS: Final = "…"

# What each upstream refuses beyond (Slack Block Kit reference, PagerDuty Events v2).
SLACK_TEXT_MAX: Final = 40_000
SLACK_SECTION_TEXT_MAX: Final = 3_000
SLACK_HEADER_TEXT_MAX: Final = 150
SLACK_FIELD_TEXT_MAX: Final = 2_000
SLACK_BUTTON_TEXT_MAX: Final = 75
SLACK_URL_MAX: Final = 3_000
SLACK_CONTEXT_TEXT_MAX: Final = 3_000
PAGERDUTY_SUMMARY_MAX: Final = 1_024
EMAIL_SUBJECT_MAX: Final = 250
SAFE_SCHEMES: Final = frozenset({"http", "https"})

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]+")


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(ELLIPSIS))] + ELLIPSIS


def mrkdwn(value: Any) -> str:
    """Text for Slack mrkdwn: ``&``, ``<`` and ``>`` are its only control characters, and
    escaping ``<`` is what stops ``<!channel>``, ``<@U123>`` and ``<url|label>``."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def html(value: Any) -> Markup:
    """Text for HTML (what the autoescaped email template does to every value)."""
    return escape(value)


def header(value: Any) -> str:
    """One email header value: CR, LF and every other control character become a space,
    so no value can end the header and start another."""
    return " ".join(_CONTROL.sub(" ", str(value)).split())


def safe_url(value: Any) -> str | None:
    """``value`` when it is an absolute http(s) URL with a host, else None: only those may
    become a link (an href, a Slack button, a PagerDuty link)."""
    if not isinstance(value, str):
        return None
    return _safe_text(value)


@functools.lru_cache(maxsize=4096)
def _safe_text(value: str) -> str | None:
    """``safe_url`` of a string (pure; a storm's alerts carry the same few links)."""
    text = value.strip()
    if not text or _CONTROL.search(text) or len(text) > SLACK_URL_MAX:
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in SAFE_SCHEMES or not parts.hostname:
        return None
    return text


def link(value: Any) -> str:
    """The template filter: the URL when it is safe to link, else an empty string."""
    return safe_url(value) or ""
