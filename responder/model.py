"""The Alertmanager webhook (version 4), and Grafana Alerting's (version 1), as frozen values.

Decoding is strict where it matters (types, required fields, ``version``) and lenient where
Alertmanager evolves (unknown fields are ignored). The envelope is decoded first with each
alert kept raw, then every alert on its own, so one bad alert is rejected alone with the
field path that failed (``$.alerts[3].labels``) while its siblings are accepted.

Grafana's webhook contact point posts the same shape with ``version: "1"`` and a few more
fields (``orgId``, ``title``, ``state``, ``message``; per alert ``values``, ``valueString``
and links to silence the alert, its dashboard, panel and image). Those alerts decode to
``GrafanaAlert``, a subclass, so Alertmanager's alerts carry (and journal) nothing more.
"""

from __future__ import annotations

import functools
import json
import re
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

Status = Literal["firing", "resolved"]
_ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    """One alert of a webhook payload."""

    status: Status
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    starts_at: datetime = msgspec.field(name="startsAt")
    ends_at: datetime = msgspec.field(default=_ZERO_TIME, name="endsAt")
    generator_url: str = msgspec.field(default="", name="generatorURL")
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if not self.fingerprint:
            # Alertmanager always sends one; compute its value for hand-written payloads.
            msgspec.structs.force_setattr(self, "fingerprint", label_fingerprint(self.labels))

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def instance(self) -> str:
        """One firing of one alert: Alertmanager keeps ``startsAt`` across re-sends."""
        return f"{self.fingerprint}@{self.starts_at.isoformat()}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": _rfc3339(self.starts_at),
            "endsAt": _rfc3339(self.ends_at),
            "generatorURL": self.generator_url,
            "fingerprint": self.fingerprint,
        }


class GrafanaAlert(Alert, frozen=True, kw_only=True):
    """An alert from Grafana Alerting: its values and the links Grafana adds."""

    values: dict[str, float | str | None] = {}   # numbers; anything else is kept, not refused
    value_string: str = msgspec.field(default="", name="valueString")
    silence_url: str = msgspec.field(default="", name="silenceURL")
    dashboard_url: str = msgspec.field(default="", name="dashboardURL")
    panel_url: str = msgspec.field(default="", name="panelURL")
    image_url: str = msgspec.field(default="", name="imageURL")

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "values": dict(self.values),
                "valueString": self.value_string, "silenceURL": self.silence_url,
                "dashboardURL": self.dashboard_url, "panelURL": self.panel_url,
                "imageURL": self.image_url}


#: The keys only Grafana's alerts have: a journaled alert with any of them is one.
_GRAFANA_KEYS = frozenset({"values", "valueString", "silenceURL", "dashboardURL", "panelURL",
                           "imageURL"})


def alert_links(alert: Alert) -> dict[str, str | None]:
    """The links an alert carries besides ``generatorURL`` (Grafana's; none from Alertmanager)."""
    if isinstance(alert, GrafanaAlert):
        return {"silence": alert.silence_url or None, "dashboard": alert.dashboard_url or None,
                "panel": alert.panel_url or None, "image": alert.image_url or None}
    return {"silence": None, "dashboard": None, "panel": None, "image": None}


class _GroupFields(msgspec.Struct, frozen=True, kw_only=True):
    """The webhook envelope's fields besides version, status and alerts."""

    group_key: str = msgspec.field(default="", name="groupKey")
    truncated_alerts: int = msgspec.field(default=0, name="truncatedAlerts")
    receiver: str = ""
    group_labels: dict[str, str] = msgspec.field(default_factory=dict, name="groupLabels")
    common_labels: dict[str, str] = msgspec.field(default_factory=dict, name="commonLabels")
    common_annotations: dict[str, str] = msgspec.field(
        default_factory=dict, name="commonAnnotations")
    external_url: str = msgspec.field(default="", name="externalURL")
    # Grafana's envelope adds these (its docs say title, state and message will go).
    org_id: int | None = msgspec.field(default=None, name="orgId")
    title: str = ""
    state: str = ""
    message: str = ""


class _Envelope(_GroupFields, frozen=True, kw_only=True):
    """A webhook body with each alert left undecoded, to reject bad alerts one by one."""

    version: Literal["4", "1"]
    status: Status
    alerts: list[msgspec.Raw]


class _FastEnvelope(_GroupFields, frozen=True, kw_only=True):
    """A webhook body whose alerts are all valid, decoded in one pass."""

    version: Literal["4"]
    status: Status
    alerts: list[Alert]


class _FastGrafanaEnvelope(_GroupFields, frozen=True, kw_only=True):
    """Grafana's webhook body whose alerts are all valid, decoded in one pass."""

    version: Literal["1"]
    status: Status
    alerts: list[GrafanaAlert]


class AlertGroup(_GroupFields, frozen=True, kw_only=True):
    """The envelope: one Alertmanager notification for one aggregation group."""

    version: str = "4"
    status: Status = "firing"
    alerts: tuple[Alert, ...] = ()

    def to_dict(self, *, with_alerts: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version,
            "groupKey": self.group_key,
            "truncatedAlerts": self.truncated_alerts,
            "status": self.status,
            "receiver": self.receiver,
            "groupLabels": dict(self.group_labels),
            "commonLabels": dict(self.common_labels),
            "commonAnnotations": dict(self.common_annotations),
            "externalURL": self.external_url,
        }
        if self.version == "1":
            out.update({"orgId": self.org_id, "title": self.title, "state": self.state,
                        "message": self.message})
        if with_alerts:
            out["alerts"] = [a.to_dict() for a in self.alerts]
        return out

    def with_alerts(self, alerts: tuple[Alert, ...]) -> AlertGroup:
        return msgspec.structs.replace(self, alerts=alerts)


class DecodeError(ValueError):
    """The payload cannot be used; ``path`` is the JSON path that failed."""

    def __init__(self, message: str, path: str = "$") -> None:
        super().__init__(message)
        self.path = path
        self.message = message


class Rejected(msgspec.Struct, frozen=True):
    index: int
    path: str
    error: str


_FAST_DECODER = msgspec.json.Decoder(_FastEnvelope)
_ENVELOPE_DECODER = msgspec.json.Decoder(_Envelope)
_FAST_GRAFANA_DECODER = msgspec.json.Decoder(_FastGrafanaEnvelope)
_ALERT_DECODERS: dict[str, msgspec.json.Decoder[Alert]] = {
    "4": msgspec.json.Decoder(Alert), "1": msgspec.json.Decoder(GrafanaAlert)}
_PATH_SUFFIX = " - at `"


def _split_msgspec_error(exc: Exception, prefix: str) -> tuple[str, str]:
    text = str(exc)
    if _PATH_SUFFIX in text:
        message, _, path = text.rpartition(_PATH_SUFFIX)
        path = path.rstrip("`")
        return message, prefix + path[1:] if path.startswith("$") else prefix
    return text, prefix


_SEGMENT = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _name_the_key(path: str, message: str, raw: bytes) -> str:
    """msgspec says ``labels[...]`` for "a value of this mapping": name the key whose
    value is not text (the first one), as ``labels.alertname``."""
    head, marker, tail = path.partition("[...]")
    if not marker or tail or "`str`" not in message:
        return path
    try:
        node: Any = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return path
    start = head.find("]") + 1 if head.startswith("$.alerts[") else 1
    for name, index in _SEGMENT.findall(head[start:]):
        node = node.get(name) if isinstance(node, dict) and name else (
            node[int(index)] if isinstance(node, list) and index and int(index) < len(node)
            else None)
    if not isinstance(node, dict):
        return path
    for key, value in node.items():
        if not isinstance(value, str):
            return head + _key_path(key)
    return path


def _key_path(key: str) -> str:
    return f".{key}" if _NAME.fullmatch(key) else f"[{json.dumps(key)}]"


def _invalid_text_at(raw: bytes, path: str) -> str:
    """The path of the first key or string in ``raw`` that is not valid UTF-8 (a label
    value, say, as ``$.alerts[1].labels.namespace``); ``path`` when none is found."""
    try:
        # Bytes that are not UTF-8 become lone surrogates, which no valid text holds.
        node: Any = json.loads(bytes(raw).decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError):
        return path

    def bad(text: str) -> bool:
        return any("\udc80" <= c <= "\udcff" for c in text)

    todo: list[tuple[Any, str]] = [(node, path)]
    while todo:
        node, at = todo.pop(0)
        if isinstance(node, str) and bad(node):
            return at
        if isinstance(node, dict):
            for key, value in node.items():
                if bad(key):
                    return at + _key_path(key.encode("utf-8", "surrogateescape")
                                          .decode("utf-8", "replace"))
                todo.append((value, at + _key_path(key)))
        elif isinstance(node, list):
            todo.extend((value, f"{at}[{i}]") for i, value in enumerate(node))
    return path


def decode_group(body: bytes) -> tuple[AlertGroup, list[Rejected]]:
    """Decode a webhook body: the group with its valid alerts, and what was rejected.

    Raises DecodeError when the envelope itself is unusable.
    """
    if not body:
        raise DecodeError("empty body: expected an Alertmanager webhook JSON object")
    try:
        # The common case, every alert valid, in one pass; anything else takes the slow
        # path below, which decodes alert by alert to reject only the bad ones.
        fast = _FAST_DECODER.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        pass
    else:
        return _group(fast, fast.alerts), []
    try:
        grafana = _FAST_GRAFANA_DECODER.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        pass
    else:
        return _group(grafana, grafana.alerts), []
    try:
        env = _ENVELOPE_DECODER.decode(body)
    except msgspec.ValidationError as exc:
        message, path = _split_msgspec_error(exc, "$")
        raise DecodeError(message, path) from None
    except msgspec.DecodeError as exc:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise DecodeError(f"body is not valid UTF-8 (byte {bad.start})") from None
        raise DecodeError(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise DecodeError("JSON nested too deeply") from None
    except UnicodeDecodeError as bad:
        raise DecodeError(f"body is not valid UTF-8 (byte {bad.start})") from None
    alerts: list[Alert] = []
    rejected: list[Rejected] = []
    decoder = _ALERT_DECODERS[env.version]
    for index, raw in enumerate(env.alerts):
        try:
            alerts.append(decoder.decode(raw))
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            message, path = _split_msgspec_error(exc, f"$.alerts[{index}]")
            if "UTF-8" in message:
                path = _invalid_text_at(raw, path)
            rejected.append(Rejected(index, _name_the_key(path, message, raw), message))
        except RecursionError:
            rejected.append(Rejected(index, f"$.alerts[{index}]", "JSON nested too deeply"))
        except UnicodeDecodeError:
            rejected.append(Rejected(index, f"$.alerts[{index}]", "string is not valid UTF-8"))
    return _group(env, alerts), rejected


def _group(env: _Envelope | _FastEnvelope | _FastGrafanaEnvelope,
           alerts: list[Alert] | list[GrafanaAlert]) -> AlertGroup:
    return AlertGroup(
        version=env.version, group_key=env.group_key, truncated_alerts=env.truncated_alerts,
        status=env.status, receiver=env.receiver, group_labels=env.group_labels,
        common_labels=env.common_labels, common_annotations=env.common_annotations,
        external_url=env.external_url, org_id=env.org_id, title=env.title, state=env.state,
        message=env.message, alerts=tuple(alerts))


def group_from_dict(envelope: dict[str, Any], alerts: list[dict[str, Any]]) -> AlertGroup:
    """Rebuild a group from its journaled envelope and alerts."""
    group = msgspec.convert({**envelope, "alerts": []}, AlertGroup)
    return group.with_alerts(tuple(alert_from_dict(a) for a in alerts))


def alert_from_dict(data: dict[str, Any]) -> Alert:
    if _GRAFANA_KEYS.isdisjoint(data):
        return msgspec.convert(data, Alert)
    return msgspec.convert(data, GrafanaAlert)


def label_fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's fingerprint of a label set: FNV-1a 64 over sorted names and values."""
    h = 0xCBF29CE484222325
    for name in sorted(labels):
        for chunk in (name.encode(), b"\xff", labels[name].encode(), b"\xff"):
            for byte in chunk:
                h ^= byte
                h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


@functools.lru_cache(maxsize=4096)   # an alert's times are formatted for every context
def _rfc3339(value: datetime) -> str:
    if value == _ZERO_TIME:
        return "0001-01-01T00:00:00Z"
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def sample_group(status: Status = "firing") -> AlertGroup:
    """A realistic WorkflowFailed group used to render templates in ``responder check``."""
    starts = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    labels = {
        "alertname": "WorkflowFailed",
        "severity": "warning",
        "namespace": "taskmaster",
        "workflow": "nightly-etl-x7k2p",
        "workflow_template": "nightly-etl",
        "cronworkflow": "nightly-etl",
    }
    annotations = {
        "summary": "Workflow taskmaster/nightly-etl-x7k2p failed",
        "description": "Workflow nightly-etl-x7k2p in taskmaster failed: "
        "pod deleted: node ip-10-0-1-12 was lost",
        "runbook_url": "https://runbooks.example.com/WorkflowFailed",
    }
    alert = Alert(
        status=status,
        labels=labels,
        annotations=annotations,
        starts_at=starts,
        ends_at=starts if status == "resolved" else _ZERO_TIME,
        generator_url="http://prometheus:9090/graph?g0.expr=argo_workflow_failed",
        fingerprint=label_fingerprint(labels),
    )
    return AlertGroup(
        group_key='{}:{alertname="WorkflowFailed"}',
        status=status,
        receiver="responder",
        group_labels={"alertname": "WorkflowFailed"},
        common_labels=dict(labels),
        common_annotations=dict(annotations),
        external_url="http://alertmanager:9093",
        alerts=(alert,),
    )
