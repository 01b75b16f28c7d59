"""JSON schemas of the Prometheus Operator fields the shipped manifests use.

Not the whole CRDs (those run to hundreds of kilobytes): each schema below lists only the
fields deploy/ sets, with the types, enums, patterns and required keys of the Operator's
CRDs (monitoring.coreos.com, operator 0.93), and refuses any other field, so a typo or a
field the Operator does not know fails the test instead of being dropped by the API server.
"""

from __future__ import annotations

from typing import Any

# The Operator's duration pattern (Prometheus' grammar, or "0").
DURATION = {"type": "string", "minLength": 1,
            "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?"
                       r"(([0-9]+)s)?(([0-9]+)ms)?)$"}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
SECRET_KEY = {"type": "object", "required": ["key"], "additionalProperties": False,
              "properties": {"name": {"type": "string"}, "key": {"type": "string"},
                             "optional": {"type": "boolean"}}}


def _object(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "additionalProperties": False,
            "properties": properties}


def _resource(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return _object(["apiVersion", "kind", "metadata", "spec"],
                   apiVersion={"const": api_version}, kind={"const": kind},
                   metadata=_object(["name"], name={"type": "string", "minLength": 1},
                                    namespace={"type": "string"}, labels=STRING_MAP,
                                    annotations=STRING_MAP),
                   spec=spec)


ALERTMANAGER_CONFIG = _resource("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig", _object(
    [],
    route=_object(
        [],
        receiver={"type": "string"},
        matchers={"type": "array", "items": _object(
            ["name"], name={"type": "string", "minLength": 1}, value={"type": "string"},
            matchType={"enum": ["!=", "=", "=~", "!~"]})},
        groupBy={"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        groupWait=DURATION, groupInterval=DURATION, repeatInterval=DURATION,
        **{"continue": {"type": "boolean"}}),
    receivers={"type": "array", "items": _object(
        ["name"], name={"type": "string", "minLength": 1},
        webhookConfigs={"type": "array", "items": _object(
            [], url={"type": "string"}, sendResolved={"type": "boolean"},
            maxAlerts={"type": "integer", "minimum": 0}, timeout=DURATION,
            httpConfig=_object([], authorization=_object(
                [], type={"type": "string"}, credentials=SECRET_KEY)))})}))

SERVICE_MONITOR = _resource("monitoring.coreos.com/v1", "ServiceMonitor", _object(
    ["endpoints", "selector"],
    selector=_object([], matchLabels=STRING_MAP),
    endpoints={"type": "array", "items": _object(
        [], port={"type": "string"}, path={"type": "string"}, interval=DURATION)}))

PROMETHEUS_RULE = _resource("monitoring.coreos.com/v1", "PrometheusRule", _object(
    [],
    groups={"type": "array", "items": _object(
        ["name"], name={"type": "string", "minLength": 1}, interval=DURATION,
        rules={"type": "array", "items": _object(
            ["expr"], alert={"type": "string"}, record={"type": "string"},
            expr={"type": ["string", "integer"]}, labels=STRING_MAP, annotations=STRING_MAP,
            **{"for": DURATION, "keep_firing_for": DURATION})})}))

SCHEMAS = {"AlertmanagerConfig": ALERTMANAGER_CONFIG, "ServiceMonitor": SERVICE_MONITOR,
           "PrometheusRule": PROMETHEUS_RULE}
