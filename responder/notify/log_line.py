"""The shipped ``log`` template, spelled out in Python.

A ``log`` channel writes one JSON line per notification, and an alert storm writes several
per alert. Rendering ``templates/log.json.j2`` through the sandbox and parsing its JSON back
costs tens of microseconds a line; building the same object here costs a few. This is used
only while the template set named ``log`` is, byte for byte, the shipped file
(``SHIPPED_SHA256``): an operator's own ``log.json.j2`` renders through Jinja like any other
template. A context this does not expect (a key missing, a value that is not plain JSON)
also goes to Jinja, which renders it or says what is wrong with it.

``tests/properties/test_log_template_properties.py`` checks that both give the same object,
and ``tests/unit/test_log_line.py`` that the hash is the shipped file's: whoever changes the
template changes this function with it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from responder.notify.render import NotificationContext

#: sha256 of the shipped ``templates/log.json.j2`` this function spells out.
SHIPPED_SHA256: Final = "7c2288cc5caaf24d1031588a9183a148a77fae5fa4fa48a12db974e346746eb6"


def is_shipped(source: bytes) -> bool:
    return hashlib.sha256(source).hexdigest() == SHIPPED_SHA256


class _Unexpected(Exception):
    """Something the template may treat differently from this function: render it."""


def _plain(value: Any) -> Any:
    """``value`` as the template's ``tojson`` and the JSON parse after it give it back, for
    the plain values a context holds; anything else is for the template."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Unexpected
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise _Unexpected
        return {k: _plain(v) for k, v in value.items()}
    raise _Unexpected


def _text(value: Any) -> str:
    """Jinja's ``string`` filter (and ``~``) on what the context holds: text stays text."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, (bool, int)):
        return str(value)
    raise _Unexpected


def _get(mapping: Mapping[str, Any], key: str) -> Any:
    try:
        return mapping[key]
    except (KeyError, TypeError):
        raise _Unexpected from None


def line(c: NotificationContext) -> dict[str, Any] | None:
    """The object the shipped ``log.json.j2`` renders for ``c``; None: render the template."""
    try:
        labels, alert, group = c.labels, c.alert, c.group
        alert_labels = _get(alert, "labels")
        count = _get(group, "alert_count")
        if not isinstance(alert_labels, dict) or type(count) is not int:
            return None
        if "namespace" in labels and "workflow" in labels:
            subject = _text(labels["namespace"]) + "/" + _text(labels["workflow"])
        elif count > 1:
            subject = f"{count} alerts"
        elif "instance" in alert_labels:
            subject = _text(alert_labels["instance"])
        elif "job" in alert_labels:
            subject = _text(alert_labels["job"])
        else:
            subject = _text(_get(alert, "fingerprint"))
        alertname = (labels["alertname"] if "alertname" in labels
                     else alert_labels.get("alertname", "Alert"))
        severity = (labels["severity"] if "severity" in labels
                    else alert_labels.get("severity", ""))
        return {
            "event": _plain(c.event),
            "alertname": _text(alertname),
            "subject": subject,
            "severity": _text(severity).lower(),
            "summary": _plain(c.annotations.get("summary", "")),
            "alerts": count,
            "runbook": _plain(_get(c.runbook, "name")),
            "category": _plain(_get(c.analysis, "category")),
            "actions": [_plain(_get(a, "kind")) for a in c.actions],
            "outcomes": [_plain(_get(a, "outcome")) for a in c.actions],
            "links": _plain(c.links),
            "dedup_key": _plain(c.dedup_key),
        }
    except _Unexpected:
        return None
