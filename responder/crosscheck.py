"""Runbooks against alert rules, both ways, for ``responder check``.

A runbook no alert rule can fire is dead configuration; an alert rule routed to the
responder with no runbook is an alert nobody acts on. Both are reported with file and
line. A rule's labels are known only where the rule sets them statically; labels that come
from its expression are assumed satisfiable, so this never reports a false "cannot fire".
Rules about the responder itself carry ``responder: self`` and route elsewhere, so they
need no runbook.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

from responder.config.runbooks import Matcher, RunbookSpec
from responder.config.yamlmarks import MarkedDict, MarkedList, load_file
from responder.errors import ConfigError, Origin
from responder.load import Runtime

SELF_LABEL = ("responder", "self")


@dataclass(frozen=True, slots=True)
class AlertRule:
    alert: str
    labels: dict[str, str]
    origin: Origin

    @property
    def for_responder(self) -> bool:
        return self.labels.get(SELF_LABEL[0]) != SELF_LABEL[1]


def load_alert_rules(patterns: tuple[str, ...], base_dir: Path) -> tuple[list[AlertRule],
                                                                        list[ConfigError]]:
    rules: list[AlertRule] = []
    errors: list[ConfigError] = []
    for pattern in patterns:
        full = pattern if Path(pattern).is_absolute() else str(base_dir / pattern)
        paths = sorted(glob.glob(full))
        if not paths:
            errors.append(ConfigError(None, f"alert_rules: {pattern!r} matches no file"))
        for name in paths:
            path = Path(name)
            shown = _shown(path, base_dir)
            try:
                data = load_file(path, shown)
            except ConfigError as exc:
                errors.append(exc)
                continue
            groups = data.get("groups") if isinstance(data, MarkedDict) else None
            if not isinstance(groups, MarkedList):
                errors.append(ConfigError(Origin(shown, 1), "expected a `groups:` list"))
                continue
            for group in groups:
                for rule in (group.get("rules") or []) if isinstance(group, dict) else []:
                    if isinstance(rule, MarkedDict) and isinstance(rule.get("alert"), str):
                        labels = rule.get("labels") or {}
                        rules.append(AlertRule(
                            rule["alert"], {str(k): str(v) for k, v in labels.items()},
                            rule.origin_of("alert")))
    return rules, errors


def _shown(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base))
    except ValueError:
        return str(path)


def _satisfiable(matcher: Matcher, rule: AlertRule) -> bool:
    known = {"alertname": rule.alert, **rule.labels}
    if matcher.name in known:
        return matcher.matches({matcher.name: known[matcher.name]})
    # Not set statically: it may come from the expression, unless the matcher insists on
    # a label name that is templated in the rule's labels (we cannot know): assume yes.
    return True


def can_fire(runbook: RunbookSpec, rule: AlertRule) -> bool:
    return all(_satisfiable(m, rule) for m in runbook.matchers)


def crosscheck(runtime: Runtime) -> list[ConfigError]:
    config = runtime.config
    if not config.alert_rules:
        return []
    rules, errors = load_alert_rules(config.alert_rules, config.base_dir)
    if errors:
        return errors
    for runbook in runtime.runbooks:
        if runbook.status == "resolved":
            continue
        if not any(can_fire(runbook, rule) for rule in rules if rule.for_responder):
            errors.append(ConfigError(
                runbook.origin, f"runbook {runbook.name}: no alert rule in "
                f"{', '.join(config.alert_rules)} can fire it"))
    for rule in rules:
        if rule.for_responder and not any(can_fire(rb, rule) for rb in runtime.runbooks):
            errors.append(ConfigError(
                rule.origin, f"alert {rule.alert} is routed to the responder but no runbook "
                f"matches it (label it {SELF_LABEL[0]}: {SELF_LABEL[1]} if it is not for the "
                "responder)"))
    return errors
