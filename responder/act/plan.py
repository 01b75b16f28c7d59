"""Runbook + alert -> the concrete actions and notifications to carry out: a plan.

Rendering happens here, once per alert and runbook, so the actor, the journal and
``responder explain`` all see the same values. Templates are Jinja compiled at load with
StrictUndefined: a label the alert lacks fails the plan with a ``PlanError`` naming the
runbook, the key and the reason, instead of acting on an empty string. Rendered values are
checked like literal ones at load: object names must be Kubernetes names (they end up in
API paths), booleans and durations must parse.

Pure: no event loop, no I/O.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jinja2

from responder.analyze import Analysis
from responder.config.durations import parse_duration
from responder.config.runbooks import (
    ACTION_KINDS,
    BOOL_PARAMS,
    DURATION_PARAMS,
    NAME_PARAMS,
    ActionSpec,
    NotifySpec,
    Param,
    RunbookSpec,
    check_name_param,
    coerce_bool,
)
from responder.model import Alert, AlertGroup

#: Workflow actions that run as attempts under the runbook's retry budget, chained: attempt
#: n+1 is scheduled when attempt n has run and the failure persists.
CHAINED = frozenset({"argo.retry", "argo.resubmit"})


@dataclass(frozen=True, slots=True)
class PlannedAction:
    """One rendered action; ``target`` names what it acts on (budgets and rate limits are
    counted per target): ``workflow:ns/name``, ``cronworkflow:ns/name``, ``breaker:key``."""

    kind: str
    params: dict[str, Any]
    target: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "target": self.target, "params": dict(self.params)}


@dataclass(frozen=True, slots=True)
class RunbookPlan:
    runbook: RunbookSpec
    actions: tuple[PlannedAction, ...]
    breaker_key: str | None
    on_open: tuple[PlannedAction, ...]
    on_close: tuple[PlannedAction, ...]
    notify: tuple[NotifySpec, ...]
    on_exhausted: tuple[NotifySpec, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "runbook": self.runbook.name,
            "origin": str(self.runbook.origin),
            "actions": [a.to_dict() for a in self.actions],
            "breaker_key": self.breaker_key,
            "on_open": [a.to_dict() for a in self.on_open],
            "on_close": [a.to_dict() for a in self.on_close],
            "notify": [_notify_dict(n) for n in self.notify],
            "on_exhausted": [_notify_dict(n) for n in self.on_exhausted],
        }


class PlanError(Exception):
    """A template of a runbook failed to render for this alert."""

    def __init__(self, runbook: str, key: str, reason: str) -> None:
        super().__init__(f"runbook {runbook}: {key}: {reason}")
        self.runbook = runbook
        self.key = key
        self.reason = reason


def _notify_dict(spec: NotifySpec) -> dict[str, Any]:
    return {"channel": spec.channel, "template": spec.template, "fallback": spec.fallback,
            "per_alert": spec.per_alert}


def template_context(alert: Alert, group: AlertGroup, analysis: Analysis) -> dict[str, Any]:
    """What a runbook template sees: ``labels``, ``annotations``, ``alert``, ``group``,
    ``analysis`` (SPEC §5).

    ``group`` is the envelope (groupKey, groupLabels, commonLabels, ...) without its alert
    list: a parameter is about one alert, and copying every alert of a 10,000-alert group
    into each alert's context would make planning quadratic.
    """
    return {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "alert": alert.to_dict(),
        "group": group.to_dict(with_alerts=False),
        "analysis": analysis.to_dict(),
    }


# ``{{ labels.NAME }}`` (or annotations), alone or among plain text: what most parameters
# and breaker keys are. Looked up directly, they cost dict accesses instead of a template
# render; what Jinja would do differently (a missing key, a name that is also a dict
# method, a value that is not a string, any other template syntax) renders.
_LOOKUP = re.compile(r"\{\{\s*(labels|annotations)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_SYNTAX = ("{{", "{%", "{#")


@functools.lru_cache(maxsize=4096)
def _lookups(source: str) -> tuple[str | tuple[str, str], ...] | None:
    """``source`` as plain text and lookups, in order; None if it is anything more."""
    parts: list[str | tuple[str, str]] = []
    at = 0
    for m in _LOOKUP.finditer(source):
        if hasattr(dict, m[2]):
            return None
        parts += [source[at:m.start()], (m[1], m[2])]
        at = m.end()
    parts.append(source[at:])
    if at == 0 or any(isinstance(p, str) and any(s in p for s in _SYNTAX) for p in parts):
        return None
    return tuple(p for p in parts if p)


def _looked_up(parts: tuple[str | tuple[str, str], ...],
               context: Mapping[str, Any]) -> str | None:
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        value = context[part[0]].get(part[1])
        if not isinstance(value, str):
            return None
        out.append(value)
    return "".join(out)


def _render(runbook: RunbookSpec, key: str, param: Param, context: Mapping[str, Any]) -> str:
    parts = _lookups(param.source)
    if parts is not None:
        text = _looked_up(parts, context)
        if text is not None:
            return text.strip()
    try:
        return param.template.render(context).strip()
    except jinja2.UndefinedError as exc:
        raise PlanError(runbook.name, key, f"{exc.message} (in {param.source!r})") from None
    except jinja2.TemplateError as exc:
        raise PlanError(runbook.name, key, f"{exc} (in {param.source!r})") from None
    except Exception as exc:  # a filter or method raised: still the template's fault
        raise PlanError(runbook.name, key,
                        f"{type(exc).__name__}: {exc} (in {param.source!r})") from None


def _value(runbook: RunbookSpec, key: str, name: str, text: str) -> Any:
    try:
        if name in BOOL_PARAMS:
            return coerce_bool(text)
        if name in DURATION_PARAMS:
            parse_duration(text)
        elif name in NAME_PARAMS:
            check_name_param(name, text)
    except ValueError as exc:
        raise PlanError(runbook.name, key, str(exc)) from None
    return text


def _action(runbook: RunbookSpec, spec: ActionSpec, where: str,
            context: Mapping[str, Any]) -> PlannedAction:
    kind = ACTION_KINDS[spec.kind]
    params: dict[str, Any] = {}
    for name, param in spec.params.items():
        key = f"{where}.{spec.kind}.{name}"
        text = _render(runbook, key, param, context)
        if not text and name in kind.required:
            raise PlanError(runbook.name, key, f"rendered empty (from {param.source!r})")
        params[name] = _value(runbook, key, name, text)
    if kind.target == "breaker":
        target = f"breaker:{params['key']}"
    else:
        target = f"{kind.target}:{params['namespace']}/{params[kind.target]}"
    return PlannedAction(spec.kind, params, target)


def _actions(runbook: RunbookSpec, specs: tuple[ActionSpec, ...], where: str,
             context: Mapping[str, Any]) -> tuple[PlannedAction, ...]:
    return tuple(_action(runbook, spec, f"{where}[{i}]", context)
                 for i, spec in enumerate(specs))


def plan(runbook: RunbookSpec, alert: Alert, group: AlertGroup,
         analysis: Analysis) -> RunbookPlan:
    """Render ``runbook`` for ``alert``; PlanError when any of its templates cannot."""
    context = template_context(alert, group, analysis)
    actions = _actions(runbook, runbook.actions, "actions", context)
    breaker_key: str | None = None
    on_open: tuple[PlannedAction, ...] = ()
    on_close: tuple[PlannedAction, ...] = ()
    if runbook.breaker is not None:
        breaker = runbook.breaker
        breaker_key = _render(runbook, "breaker.key", breaker.key, context)
        if not breaker_key:
            raise PlanError(runbook.name, "breaker.key",
                            f"rendered empty (from {breaker.key.source!r})")
        on_open = _actions(runbook, breaker.on_open, "breaker.on_open", context)
        on_close = _actions(runbook, breaker.on_close, "breaker.on_close", context)
    return RunbookPlan(runbook=runbook, actions=actions, breaker_key=breaker_key,
                       on_open=on_open, on_close=on_close, notify=runbook.notify,
                       on_exhausted=runbook.on_exhausted)
