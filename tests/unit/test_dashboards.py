"""The shipped Grafana dashboards: import-ready, and every query valid on real metrics."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_binary
from tests.shipped import (
    GRAFANA_VARIABLES,
    dashboard_files,
    dashboard_queries,
    exported_metric_names,
    metric_names,
    panels,
    raw_dashboard_queries,
    substitute,
    variable_queries,
)

EXPECTED_UIDS = {
    "responder-overview.json": "alert-responder-overview",
    "workflow-failures.json": "alert-responder-workflow-failures",
}
BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__range"}


def _load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


def test_both_dashboards_are_shipped() -> None:
    assert {p.name for p in dashboard_files()} == set(EXPECTED_UIDS)


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_dashboard_is_import_ready(path: Path) -> None:
    dashboard = _load(path)
    assert dashboard["uid"] == EXPECTED_UIDS[path.name]
    assert dashboard["id"] is None
    assert dashboard["title"].startswith("alert-responder / ")
    assert "alert-responder" in dashboard["tags"]
    inputs = {i["name"]: i for i in dashboard["__inputs"]}
    assert inputs["DS_PROMETHEUS"]["type"] == "datasource"
    assert inputs["DS_PROMETHEUS"]["pluginId"] == "prometheus"
    required = {(r["type"], r["id"]) for r in dashboard["__requires"]}
    assert ("datasource", "prometheus") in required
    used_types = {p["type"] for p in panels(dashboard) if p["type"] != "row"}
    assert {t for kind, t in required if kind == "panel"} == used_types


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_dashboard_has_a_datasource_variable_every_panel_and_query_uses(path: Path) -> None:
    dashboard = _load(path)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ds = {"type": "prometheus", "uid": "${datasource}"}
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == ds, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == ds, panel["title"]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == ds


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_panel_ids_are_unique_and_panels_stay_on_the_grid(path: Path) -> None:
    dashboard = _load(path)
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_variables_used_in_queries_are_defined_and_only_inside_regex_matchers(
        path: Path) -> None:
    dashboard = _load(path)
    defined = {v["name"] for v in dashboard["templating"]["list"]} | BUILTIN_VARIABLES
    assert {"datasource", "namespace", "runbook"} <= defined
    for title, expr in raw_dashboard_queries(path):
        for name in re.findall(r"\$(\w+)", expr):
            assert name in defined, (title, name)
            assert name in GRAFANA_VARIABLES, (title, name)
        user_vars = re.findall(r"(\w+)(=~|!~|=|!=)\"\$(?!__)(\w+)\"", expr)
        assert all(op == "=~" for _, op, _ in user_vars), (title, expr)
        assert len(user_vars) == len(re.findall(r"\$(?!__)\w+", expr)), (title, expr)


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_every_responder_metric_a_dashboard_uses_is_exported(path: Path) -> None:
    exported = exported_metric_names()
    queries = [substitute(expr) for _, expr in raw_dashboard_queries(path)]
    queries += [selector for _, selector, _ in variable_queries(path) if selector]
    for expr in queries:
        used = {m for m in metric_names(expr) if m.startswith("responder_")}
        assert used <= exported, (expr, used - exported)


def test_overview_covers_every_metric_the_responder_exports() -> None:
    path = next(p for p in dashboard_files() if p.name == "responder-overview.json")
    used = set().union(*(metric_names(q) for q in dashboard_queries(path)))
    families = {re.sub(r"_(total|created|bucket|sum|count)$", "", m)
                for m in exported_metric_names()}
    shown = {re.sub(r"_(total|bucket)$", "", m) for m in used}
    assert families - shown == set()


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_every_dashboard_query_is_valid_promql(path: Path, tmp_path: Path) -> None:
    queries = dashboard_queries(path)
    assert queries
    rules = [{"record": f"dashboard:query_{i}", "expr": q} for i, q in enumerate(queries)]
    rule_file = tmp_path / "queries.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": path.stem, "rules": rules}]}))
    result = subprocess.run([require_binary("promtool"), "check", "rules", str(rule_file)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_queries_substitute_every_grafana_variable() -> None:
    for path in dashboard_files():
        for query in dashboard_queries(path):
            assert "$" not in query.replace("$1", ""), query


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_every_dashboard_variable_is_filled_by_label_values(path: Path) -> None:
    found = variable_queries(path)
    user = {v["name"] for v in _load(path)["templating"]["list"] if v["type"] == "query"}
    assert {name for name, _, _ in found} == user
    for name, selector, label in found:
        assert selector, f"${name} takes values from every series"
        assert label in {"job", "namespace", "runbook"}, (name, label)


def test_variable_queries_reject_what_grafana_would_not_run_as_label_values(
        tmp_path: Path) -> None:
    dashboard = {"templating": {"list": [
        {"name": "ns", "type": "query", "query": "query_result(up)"}]}}
    path = tmp_path / "d.json"
    path.write_text(json.dumps(dashboard))
    with pytest.raises(ValueError, match="not a label_values"):
        variable_queries(path)
