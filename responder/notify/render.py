"""Notification rendering: Jinja templates -> a validated, JSON-able ``Message``.

Rendering is separate from sending so the outbox can store ``Message.body`` and retry
delivery without the templates: the body holds what goes on the wire, minus credentials
(webhook URLs and PagerDuty routing keys are added by the sender at send time).

Templates live in one directory, compiled at load. A template set is named after the
channel type it serves (``slack``, or ``slack-NAME`` for a runbook's override) and has one
file per part: ``NAME.json.j2`` for slack, pagerduty, webhook and log; ``NAME.subject.j2``,
``NAME.txt.j2`` and ``NAME.html.j2`` (optional, autoescaped) for email. Files starting
with ``_`` are partials for ``{% include %}``. Rendered JSON is parsed and checked
against what the upstream would refuse (Slack block limits, Events v2 required fields),
so a bad template fails at ``responder check`` rather than at the upstream.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import jinja2
import msgspec
from jinja2.sandbox import ImmutableSandboxedEnvironment

from responder.config.channels import (
    CHANNEL_TYPES,
    DEFAULT_ORIGIN,
    DEFAULT_RATE,
    ChannelSpec,
    EmailSettings,
    LogSettings,
    PagerDutySettings,
    Secret,
    SlackSettings,
    WebhookSettings,
)
from responder.errors import ConfigError, ConfigErrors, Origin
from responder.model import Alert, AlertGroup, alert_links, sample_group
from responder.notify import escape, log_line
from responder.notify.escape import mrkdwn, safe_url
from responder.templating import new_environment

EVENTS: Final = ("firing", "resolved", "escalation", "approval")
PARTS: Final[dict[str, tuple[str, ...]]] = {
    "slack": ("json",), "pagerduty": ("json",), "webhook": ("json",), "log": ("json",),
    "email": ("subject", "txt", "html"),
}
OPTIONAL_PARTS: Final = frozenset({("email", "html")})
PD_SEVERITIES: Final = ("critical", "error", "warning", "info")
_PD_SEVERITY_ALIASES: Final = {
    "critical": "critical", "page": "critical", "fatal": "critical", "emergency": "critical",
    "p1": "critical", "high": "error", "error": "error", "major": "error", "p2": "error",
    "warning": "warning", "warn": "warning", "minor": "warning", "medium": "warning",
    "p3": "warning", "info": "info", "informational": "info", "low": "info", "none": "info",
    "notice": "info", "p4": "info", "p5": "info",
}
SLACK_MAX_BLOCKS: Final = 50
PD_SUMMARY_MAX: Final = escape.PAGERDUTY_SUMMARY_MAX


# -- the message ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Message:
    """What one sender needs; ``body`` is JSON-able and free of credentials."""

    channel: str
    type: str
    body: dict[str, Any]


class RenderError(Exception):
    """A template failed to render or rendered something the upstream would refuse."""

    def __init__(self, template: str, line: int, message: str) -> None:
        self.template = template
        self.line = line
        self.message = message
        where = f"{template}:{line}" if line else template
        super().__init__(f"{where}: {message}")

    def to_config_error(self, prefix: str = "") -> ConfigError:
        return ConfigError(Origin(self.template, self.line), prefix + self.message)


# -- the context ----------------------------------------------------------------------------
_ANALYSIS_DEFAULTS: Final[dict[str, Any]] = {
    "category": "Unknown", "pattern": None, "confidence": 0.0, "retryable": False,
    "recommendations": [], "matched": None, "source": None,
}
_ACTION_DEFAULTS: Final[dict[str, Any]] = {
    "kind": "", "target": "", "params": {}, "outcome": "", "detail": "", "attempt": None,
    "limit": None, "breaker_state": None,
}


@dataclass(frozen=True)
class NotificationContext:
    """What templates see (SPEC §8); every key a shipped template reads is always present."""

    group: dict[str, Any]
    alerts: list[dict[str, Any]]
    alert: dict[str, Any]
    labels: dict[str, Any]
    annotations: dict[str, Any]
    analysis: dict[str, Any]
    actions: list[dict[str, Any]]
    runbook: dict[str, Any]
    links: dict[str, Any]
    event: str
    dedup_key: str

    def variables(self) -> dict[str, Any]:
        return {"group": self.group, "alerts": self.alerts, "alert": self.alert,
                "labels": self.labels, "annotations": self.annotations,
                "analysis": self.analysis, "actions": self.actions, "runbook": self.runbook,
                "links": self.links, "event": self.event, "dedup_key": self.dedup_key}


def _jsonable(value: Any) -> Any:
    """A JSON-able copy of ``value`` (what a template may read; unknown types as text)."""
    return msgspec.to_builtins(value, str_keys=True, enc_hook=str)


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    first = maps[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


def argo_link(ui_url: str | None, labels: Mapping[str, str]) -> str | None:
    namespace, workflow = labels.get("namespace"), labels.get("workflow")
    if not ui_url or not namespace or not workflow:
        return None
    return f"{ui_url.rstrip('/')}/workflows/{namespace}/{workflow}"


def make_dedup_key(group: AlertGroup, runbook: str) -> str:
    """Stable per group and runbook, so a PagerDuty trigger and its resolve share it."""
    key = group.group_key or json.dumps(sorted(group.group_labels.items()))
    digest = hashlib.sha256(f"{key}\x00{runbook}".encode()).hexdigest()
    return f"responder-{digest[:32]}"


def build_context(
    group: AlertGroup, *, alerts: Sequence[Alert] | None = None,
    analysis: Mapping[str, Any] | None = None, actions: Sequence[Mapping[str, Any]] = (),
    runbook: Mapping[str, Any] | None = None, argo_ui_url: str | None = None,
    dashboard_url: str | None = None, event: str = "firing", max_alerts: int = 20,
) -> NotificationContext:
    """One context per group (or the given alerts of it); at most ``max_alerts`` listed,
    ``group.more`` counts the rest. ``labels``/``annotations`` are those all alerts share."""
    if event not in EVENTS:
        raise ValueError(f"event must be one of {', '.join(EVENTS)}, got {event!r}")
    chosen = list(group.alerts if alerts is None else alerts)
    shown = chosen[:max(0, max_alerts)]
    alert_dicts = []
    for a in shown:
        d = {"values": {}, "valueString": "", **a.to_dict()}
        # Only http(s) URLs become links, whatever a label, annotation or sender says.
        d["links"] = {"generatorURL": safe_url(a.generator_url),
                      "argo": safe_url(argo_link(argo_ui_url, a.labels)),
                      **{k: safe_url(v) for k, v in alert_links(a).items()}}
        alert_dicts.append(d)
    labels = _common([a.labels for a in chosen]) if chosen else dict(group.common_labels)
    annotations = (_common([a.annotations for a in chosen]) if chosen
                   else dict(group.common_annotations))
    first: dict[str, Any] = alert_dicts[0] if alert_dicts else {
        "status": group.status, "labels": dict(labels), "annotations": dict(annotations),
        "startsAt": None, "endsAt": None, "generatorURL": "", "fingerprint": "",
        "values": {}, "valueString": "",
        "links": {"generatorURL": None, "argo": safe_url(argo_link(argo_ui_url, labels)),
                  "silence": None, "dashboard": None, "panel": None, "image": None}}
    runbook_dict = {"name": "", "description": "", **_jsonable(dict(runbook or {}))}
    group_dict = {"orgId": None, "title": "", "state": "", "message": "",
                  **group.to_dict(with_alerts=False)}
    group_dict.update({
        "alert_count": len(chosen),
        "firing": sum(1 for a in chosen if a.status == "firing"),
        "resolved": sum(1 for a in chosen if a.status == "resolved"),
        "shown": len(shown),
        "more": len(chosen) - len(shown),
    })
    # Only http(s) URLs become links, whatever a label or annotation says.
    links = {
        "generatorURL": first["links"]["generatorURL"],
        "argo": safe_url(argo_link(argo_ui_url, labels)),
        "dashboard": first["links"]["dashboard"] or safe_url(dashboard_url),
        "alertmanager": safe_url(group.external_url),
        "runbook": safe_url(annotations.get("runbook_url")),
        "silence": first["links"]["silence"],
        "panel": first["links"]["panel"],
        "image": first["links"]["image"],
    }
    return NotificationContext(
        group=group_dict, alerts=alert_dicts, alert=first, labels=dict(labels),
        annotations=dict(annotations),
        analysis={**_ANALYSIS_DEFAULTS, **_jsonable(dict(analysis or {}))},
        actions=[{**_ACTION_DEFAULTS, **_jsonable(dict(a))} for a in actions],
        runbook=runbook_dict, links=links, event=event,
        dedup_key=make_dedup_key(group, str(runbook_dict["name"])),
    )


def sample_contexts() -> list[tuple[str, NotificationContext]]:
    """What ``check`` renders every template against: each event, and one knowing nothing."""
    analysis = {"category": "Infrastructure", "pattern": "node-lost", "confidence": 0.9,
                "retryable": True, "recommendations": [
                    "Retry the workflow: the node was lost, not the work.",
                    "If nodes keep disappearing, look at the cluster autoscaler's events."]}
    retry = {"kind": "argo.retry", "target": "taskmaster/nightly-etl-x7k2p",
             "params": {"namespace": "taskmaster", "workflow": "nightly-etl-x7k2p"},
             "outcome": "scheduled", "detail": "in 30s", "attempt": 1, "limit": 3,
             "breaker_state": "closed"}
    escalation = {"kind": "escalation", "outcome": "escalated",
                  "detail": "retry budget spent (3 of 3)", "breaker_state": "open"}
    runbook = {"name": "retry-transient-workflow-failure",
               "description": "Retry Argo workflows that failed for a transient reason."}
    argo, dashboard = "https://argo.example.com", "https://grafana.example.com/d/responder"
    return [
        ("firing", build_context(sample_group("firing"), analysis=analysis, actions=[retry],
                                 runbook=runbook, argo_ui_url=argo, dashboard_url=dashboard)),
        ("resolved", build_context(sample_group("resolved"), analysis=analysis,
                                   actions=[{**retry, "outcome": "succeeded"}],
                                   runbook=runbook, argo_ui_url=argo,
                                   dashboard_url=dashboard, event="resolved")),
        ("escalation", build_context(sample_group("firing"), analysis=analysis,
                                     actions=[retry, escalation], runbook=runbook,
                                     argo_ui_url=argo, dashboard_url=dashboard,
                                     event="escalation")),
        ("firing, nothing known", build_context(sample_group("firing"))),
    ]


# -- filters templates may use --------------------------------------------------------------
def pagerduty_severity(value: Any) -> str:
    """An alert's ``severity`` label as one of Events v2's four (unknown: error)."""
    return _PD_SEVERITY_ALIASES.get(str(value or "").strip().lower(), "error")


def _environment(directory: Path, *, autoescape: bool) -> ImmutableSandboxedEnvironment:
    env = new_environment(autoescape=autoescape)
    env.loader = jinja2.FileSystemLoader(str(directory))
    env.auto_reload = False     # compiled at load; a half-edited file never goes live
    env.filters["pagerduty_severity"] = pagerduty_severity
    env.filters["mrkdwn"] = mrkdwn
    env.filters["link"] = escape.link
    env.filters["header"] = escape.header
    return env


# -- templates ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TemplateSet:
    name: str
    type: str
    parts: Mapping[str, jinja2.Template] = field(repr=False)
    paths: Mapping[str, str]
    #: The set renders as a Python function instead (the shipped ``log`` set, unchanged:
    #: ``responder.notify.log_line``); None from it means render the templates.
    fast: Callable[[NotificationContext], dict[str, Any] | None] | None = field(
        default=None, repr=False)


def _split_name(filename: str) -> tuple[str, str] | None:
    """``slack-terse.json.j2`` -> (``slack-terse``, ``json``)."""
    stem = filename[: -len(".j2")]
    name, dot, part = stem.rpartition(".")
    if not dot or not name or part not in ("json", "subject", "txt", "html"):
        return None
    return name, part


def _fast(name: str, paths: Mapping[str, str],
          ) -> Callable[[NotificationContext], dict[str, Any] | None] | None:
    """The Python spelling of a set, when the set is the shipped one it spells."""
    if name != "log" or set(paths) != {"json"}:
        return None
    try:
        source = Path(paths["json"]).read_bytes()
    except OSError:
        return None
    return log_line.line if log_line.is_shipped(source) else None


def _type_of(name: str) -> str | None:
    for kind in CHANNEL_TYPES:
        if name == kind or name.startswith(kind + "-"):
            return kind
    return None


def _template_line(exc: BaseException) -> tuple[str | None, int]:
    """The template file and line a render error came from (Jinja rewrites tracebacks)."""
    found: tuple[str | None, int] = (None, 0)
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


class Templates:
    """Every template set of one directory, compiled; renders and checks messages."""

    def __init__(self, directory: Path, sets: Mapping[str, TemplateSet]) -> None:
        self.directory = directory
        self._sets = dict(sets)

    @classmethod
    def load(cls, directory: Path) -> Templates:
        """Compile every ``*.j2`` of ``directory``; raises ConfigErrors (file:line)."""
        errors: list[ConfigError] = []
        directory = Path(directory)
        if not directory.is_dir():
            raise ConfigErrors([ConfigError(Origin(str(directory)),
                                            "templates: not a directory")])
        text_env = _environment(directory, autoescape=False)
        html_env = _environment(directory, autoescape=True)
        found: dict[str, dict[str, tuple[jinja2.Template, str]]] = {}
        for path in sorted(directory.glob("*.j2")):
            shown = str(path)
            env = html_env if path.name.endswith(".html.j2") else text_env
            try:
                template = env.get_template(path.name)
            except jinja2.TemplateSyntaxError as exc:
                errors.append(ConfigError(Origin(shown, exc.lineno or 0),
                                          f"template syntax: {exc.message}"))
                continue
            except (OSError, UnicodeDecodeError) as exc:
                errors.append(ConfigError(Origin(shown), f"cannot read: {exc}"))
                continue
            if path.name.startswith("_"):
                continue
            split = _split_name(path.name)
            kind = _type_of(split[0]) if split else None
            if split is None or kind is None:
                errors.append(ConfigError(Origin(shown), (
                    "template file names are TYPE[-NAME].PART.j2 with TYPE one of "
                    f"{', '.join(CHANNEL_TYPES)} and PART json (email: subject, txt, html); "
                    "partials start with '_'")))
                continue
            name, part = split
            if part not in PARTS[kind]:
                errors.append(ConfigError(Origin(shown), (
                    f"a {kind} template has parts {', '.join(PARTS[kind])}, not {part}")))
                continue
            found.setdefault(name, {})[part] = (template, shown)
        sets: dict[str, TemplateSet] = {}
        for name, parts in sorted(found.items()):
            kind = _type_of(name) or ""
            missing = [p for p in PARTS[kind] if p not in parts and (kind, p) not in OPTIONAL_PARTS]
            if missing:
                errors.append(ConfigError(Origin(next(iter(parts.values()))[1]), (
                    f"template {name!r} has no {', '.join(f'{name}.{p}.j2' for p in missing)}")))
                continue
            paths = {p: s for p, (_, s) in parts.items()}
            sets[name] = TemplateSet(name, kind, {p: t for p, (t, _) in parts.items()}, paths,
                                     _fast(name, paths))
        if errors:
            raise ConfigErrors(errors)
        return cls(directory, sets)

    def names(self) -> frozenset[str]:
        return frozenset(self._sets)

    def sets_for(self, channel_type: str) -> list[str]:
        return sorted(n for n, s in self._sets.items() if s.type == channel_type)

    # -- rendering ----------------------------------------------------------------------
    def render(self, channel: ChannelSpec, context: NotificationContext,
               template: str | None = None) -> Message:
        """The message ``channel`` sends for ``context``; raises RenderError."""
        name = template or channel.template or channel.type
        tset = self._sets.get(name)
        if tset is None:
            if name == "log" and channel.type == "log":
                return Message(channel.name, "log", _default_log_body(context))
            raise RenderError(str(self.directory), 0, f"no template {name!r} for channel "
                                                      f"{channel.name!r} ({channel.type})")
        if tset.type != channel.type:
            raise RenderError(next(iter(tset.paths.values())), 0, (
                f"template {name!r} is for {tset.type} channels; {channel.name!r} is "
                f"{channel.type}"))
        if tset.fast is not None:
            fast = tset.fast(context)
            if fast is not None:
                return Message(channel.name, channel.type, fast)
        texts = {part: self._render_part(tset, part, context) for part in tset.parts}
        if channel.type == "email":
            body = _email_body(texts, channel, context, tset.paths["subject"])
        else:
            path = tset.paths["json"]
            body = _parse_json(texts["json"], path)
            body = _VALIDATORS[channel.type](body, path)
        return Message(channel.name, channel.type, body)

    @staticmethod
    def _render_part(tset: TemplateSet, part: str, context: NotificationContext) -> str:
        try:
            return tset.parts[part].render(context.variables())
        except jinja2.TemplateError as exc:
            message = getattr(exc, "message", None) or str(exc)
            filename, line = _template_line(exc)
            return _raise(filename or tset.paths[part], line, message)
        except (TypeError, ValueError, KeyError, AttributeError, ArithmeticError) as exc:
            filename, line = _template_line(exc)
            return _raise(filename or tset.paths[part], line, f"{type(exc).__name__}: {exc}")

    # -- checking -----------------------------------------------------------------------
    def check(self, channels: Mapping[str, ChannelSpec]) -> list[ConfigError]:
        """Render every template set for its channel type against firing, resolved,
        escalation and bare samples; the configured channels' own sets must exist."""
        errors: list[ConfigError] = []
        seen: set[str] = set()

        def add(error: ConfigError) -> None:
            if str(error) not in seen:
                seen.add(str(error))
                errors.append(error)

        by_type = {spec.type: spec for spec in channels.values()}
        for spec in channels.values():
            name = spec.template or spec.type
            if name not in self._sets and not (name == "log" and spec.type == "log"):
                add(ConfigError(spec.origin, f"channel {spec.name}: no template {name!r} in "
                                             f"{self.directory}"))
        samples = sample_contexts()
        for name, tset in sorted(self._sets.items()):
            spec = by_type.get(tset.type) or sample_channel(tset.type)
            for label, context in samples:
                try:
                    self.render(spec, context, name)
                except RenderError as exc:
                    add(exc.to_config_error(f"rendering the {label} sample: "))
        return errors


def _raise(path: str, line: int, message: str) -> str:
    raise RenderError(path, line, message)


def sample_channel(kind: str) -> ChannelSpec:
    """A channel of ``kind`` with placeholder settings, to render templates against."""
    settings: Any = {
        "slack": SlackSettings(Secret("https://hooks.slack.com/services/T0/B0/X")),
        "email": EmailSettings(host="localhost", port=25, sender="responder@example.com",
                               to=("oncall@example.com",)),
        "pagerduty": PagerDutySettings(Secret("0" * 32)),
        "webhook": WebhookSettings(Secret("https://hooks.example.com/x")),
        "log": LogSettings(),
    }[kind]
    rate, burst = DEFAULT_RATE[kind]
    return ChannelSpec(f"sample-{kind}", kind, DEFAULT_ORIGIN, settings, rate, burst)


# -- per-type bodies and what the upstream would refuse -------------------------------------
_decode_json = msgspec.json.Decoder().decode


def _parse_json(text: str, path: str) -> dict[str, Any]:
    try:
        value = _decode_json(text)
    except msgspec.DecodeError:
        value = _parse_json_strictly(text, path)
    if not isinstance(value, dict):
        raise RenderError(path, 0, "rendered JSON must be an object")
    return value


def _parse_json_strictly(text: str, path: str) -> Any:
    """What the standard library makes of text msgspec refused: a value (``NaN``), or the
    error with its line for the template's author."""
    try:
        return json.loads(text)
    except ValueError as exc:
        line = getattr(exc, "lineno", 0)
        raise RenderError(path, 0, f"rendered text is not JSON ({exc}; output line {line}): "
                                   f"quote values with the tojson filter") from None


def _fit_text(obj: Any, limit: int) -> None:
    """Cut a Block Kit text object's ``text`` to ``limit`` characters."""
    if isinstance(obj, dict) and isinstance(obj.get("text"), str):
        obj["text"] = escape.clip(obj["text"], limit)


_BLOCK_TEXT_MAX: Final = {"header": escape.SLACK_HEADER_TEXT_MAX,
                          "section": escape.SLACK_SECTION_TEXT_MAX}


def _fit_element(element: Any) -> bool:
    """Fit one element of an actions or context block; False drops it (a button whose URL
    is not http(s))."""
    if not isinstance(element, dict):
        return True
    if element.get("type") == "button":
        if "url" in element:
            url = safe_url(element["url"])
            if url is None:
                return False
            element["url"] = url
        _fit_text(element.get("text"), escape.SLACK_BUTTON_TEXT_MAX)
    else:
        _fit_text(element, escape.SLACK_CONTEXT_TEXT_MAX)
    return True


def _check_blocks(blocks: Any, path: str, where: str) -> int:
    """What a template wrote wrong is an error; what an alert's values made too long is cut
    to Slack's limits, so the message still goes out."""
    if not isinstance(blocks, list):
        raise RenderError(path, 0, f"{where} must be a list")
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise RenderError(path, 0, f"{where}[{i}] must be an object with a type")
        kind = block["type"]
        limit = _BLOCK_TEXT_MAX.get(kind)
        if limit:
            _fit_text(block.get("text"), limit)
        if kind == "section":
            fields = block.get("fields", [])
            if isinstance(fields, list):
                if len(fields) > 10:
                    raise RenderError(path, 0, f"{where}[{i}]: more than 10 fields")
                for item in fields:
                    _fit_text(item, escape.SLACK_FIELD_TEXT_MAX)
        elif kind in ("actions", "context") and isinstance(block.get("elements"), list):
            block["elements"] = [e for e in block["elements"] if _fit_element(e)]
    # An actions block left without a button is one Slack refuses.
    blocks[:] = [b for b in blocks if not (b.get("type") == "actions" and not b.get("elements"))]
    return len(blocks)


def _validate_slack(body: dict[str, Any], path: str) -> dict[str, Any]:
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise RenderError(path, 0, "a Slack message needs a non-empty text fallback")
    body["text"] = escape.clip(text, escape.SLACK_TEXT_MAX)
    count = _check_blocks(body.get("blocks", []), path, "blocks")
    attachments = body.get("attachments", [])
    if not isinstance(attachments, list):
        raise RenderError(path, 0, "attachments must be a list")
    for i, attachment in enumerate(attachments):
        if not isinstance(attachment, dict):
            raise RenderError(path, 0, f"attachments[{i}] must be an object")
        if isinstance(attachment.get("fallback"), str):
            attachment["fallback"] = escape.clip(attachment["fallback"], escape.SLACK_TEXT_MAX)
        count += _check_blocks(attachment.get("blocks", []), path, f"attachments[{i}].blocks")
    if count > SLACK_MAX_BLOCKS:
        raise RenderError(path, 0, f"{count} blocks: Slack takes at most {SLACK_MAX_BLOCKS}")
    return body


def _validate_pagerduty(body: dict[str, Any], path: str) -> dict[str, Any]:
    body.pop("routing_key", None)       # the sender adds it: the outbox never stores it
    action = body.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        raise RenderError(path, 0, f"event_action must be trigger, acknowledge or resolve, "
                                   f"got {action!r}")
    dedup = body.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or not dedup or len(dedup) > 255):
        raise RenderError(path, 0, "dedup_key must be a string of 1 to 255 characters")
    if action != "trigger":
        if not dedup:
            raise RenderError(path, 0, f"{action} needs the trigger's dedup_key")
        return body
    payload = body.get("payload")
    if not isinstance(payload, dict):
        raise RenderError(path, 0, "a trigger needs a payload object")
    for key in ("summary", "source", "severity"):
        if not isinstance(payload.get(key), str) or not payload[key].strip():
            raise RenderError(path, 0, f"payload.{key} is required")
    payload["summary"] = escape.clip(payload["summary"], PD_SUMMARY_MAX)
    if payload["severity"] not in PD_SEVERITIES:
        payload["severity"] = pagerduty_severity(payload["severity"])
    links = body.get("links", [])
    if not isinstance(links, list) or not all(
            isinstance(link, dict) and isinstance(link.get("href"), str) for link in links):
        raise RenderError(path, 0, "links must be a list of {href, text}")
    body["links"] = [link for link in links if safe_url(link["href"]) is not None]
    return body


def _validate_object(body: dict[str, Any], path: str) -> dict[str, Any]:
    return body


_VALIDATORS: Final = {"slack": _validate_slack, "pagerduty": _validate_pagerduty,
                      "webhook": _validate_object, "log": _validate_object}


def _email_body(texts: Mapping[str, str], channel: ChannelSpec,
                context: NotificationContext, subject_path: str) -> dict[str, Any]:
    settings = channel.settings
    assert isinstance(settings, EmailSettings)
    subject = escape.header(texts["subject"])
    if not subject:
        raise RenderError(subject_path, 0, "the subject rendered empty")
    body: dict[str, Any] = {
        "subject": escape.clip(subject, escape.EMAIL_SUBJECT_MAX), "text": texts["txt"].strip() + "\n",
        "from": settings.sender, "to": list(settings.to),
        # Firing, resolved and escalation of one group thread together in mail clients.
        "references": f"<{context.dedup_key}@alert-responder>",
    }
    if "html" in texts:
        body["html"] = texts["html"]
    return body


def _default_log_body(context: NotificationContext) -> dict[str, Any]:
    return {"event": context.event, "runbook": context.runbook["name"],
            "status": context.group["status"], "group_key": context.group["groupKey"],
            "alerts": context.group["alert_count"],
            "summary": context.annotations.get("summary", ""),
            "category": context.analysis["category"], "dedup_key": context.dedup_key}
