"""What the project ships to a cluster, read the way the tests need it.

Alert rules, dashboards and manifests are data, not code: these helpers load them and pull
out the PromQL they contain, so unit tests can check names against ``responder.metrics``
and an end-to-end test can run every dashboard query against a real Prometheus.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from responder.metrics import Metrics

REPO = Path(__file__).resolve().parent.parent
ALERT_RULE_DIR = REPO / "rules" / "prometheus"
DASHBOARD_DIR = REPO / "dashboards"

# Concrete values for the Grafana variables the shipped dashboards use. Template
# variables only ever appear inside `=~"..."` matchers, so a match-all regex is right;
# the interval variables become the durations Grafana would pick for a 1h range.
GRAFANA_VARIABLES = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
    "namespace": ".*",
    "job": ".*",
    "runbook": ".*",
    "cronworkflow": ".*",
}

_PROMQL_KEYWORDS = frozenset({
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan", "atan2",
})
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def rule_files() -> list[Path]:
    return sorted(ALERT_RULE_DIR.glob("*.yaml"))


def rules_in(path: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def alert_rules(path: Path | None = None) -> list[dict[str, Any]]:
    paths = [path] if path else rule_files()
    return [rule for p in paths for rule in rules_in(p) if "alert" in rule]


def exported_metric_names(metrics: Metrics | None = None) -> set[str]:
    """Every series name the responder can expose, suffixes included."""
    metrics = metrics or Metrics(CollectorRegistry())
    names: set[str] = set()
    for family in metrics.registry.collect():
        if family.type == "counter":
            names |= {family.name + "_total", family.name + "_created"}
        elif family.type == "histogram":
            names |= {family.name + s for s in ("_bucket", "_sum", "_count", "_created")}
        else:
            names.add(family.name)
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions and keywords excluded)."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)        # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)       # range and subquery selectors
    text = _GROUPING.sub(" ", text)
    names: set[str] = set()
    for match in _IDENT.finditer(text):
        rest = text[match.end():].lstrip()
        word = match.group(0)
        if rest.startswith("(") or word.lower() in _PROMQL_KEYWORDS:
            continue
        if match.start() > 0 and (text[match.start() - 1].isdigit()
                                  or text[match.start() - 1] == "."):
            continue                                # the exponent or unit of a number
        names.add(word)
    return names


def substitute(expr: str, values: dict[str, str] | None = None) -> str:
    """``expr`` with Grafana's ``$var``, ``${var}`` and ``[[var]]`` replaced."""
    values = values or GRAFANA_VARIABLES

    def one(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        if name.isdigit():                          # a label_replace group reference
            return match.group(0)
        if name not in values:
            raise KeyError(f"unknown Grafana variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(one, expr)


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARD_DIR.glob("*.json"))


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those nested in rows included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def raw_dashboard_queries(path: Path) -> list[tuple[str, str]]:
    """(panel title, expr) for every Prometheus target, Grafana variables left in."""
    dashboard = json.loads(path.read_text())
    found = []
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("expr"):
                found.append((str(panel.get("title", "")), str(target["expr"])))
    return found


_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(.+?)\s*,\s*)?(\w+)\s*\)\s*$")


def variable_queries(path: Path | str) -> list[tuple[str, str | None, str]]:
    """(variable, series selector or None, label) of each ``label_values`` variable.

    Grafana fills these dropdowns from Prometheus' label values API; a variable without
    values leaves every panel that uses it empty.
    """
    dashboard = json.loads(Path(path).read_text())
    found = []
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        match = _LABEL_VALUES.match(text)
        if not match:
            raise ValueError(f"{path}: variable {variable.get('name')}: "
                             f"not a label_values() query: {text!r}")
        selector = substitute(match.group(1)) if match.group(1) else None
        found.append((str(variable["name"]), selector, match.group(2)))
    return found


def dashboard_queries(path: Path | str) -> list[str]:
    """Each panel query of a dashboard, ready to run against Prometheus as is."""
    return [substitute(expr) for _, expr in raw_dashboard_queries(Path(path))]
