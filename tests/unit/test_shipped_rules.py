"""The shipped Prometheus rules: valid, unit-tested, documented, and on real metrics."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import require_binary
from tests.shipped import (
    ALERT_RULE_DIR,
    alert_rules,
    exported_metric_names,
    metric_names,
    rule_files,
    rules_in,
)

RESPONDER_ALERTS = {
    "ResponderDown", "HighFailureRate", "CircuitBreakerOpen", "NotificationDeliveryFailure",
    "RetryBudgetExhausted", "ManualInterventionRateHigh",
}
# Labels the shipped runbooks match WorkflowFailed on.
WORKFLOW_LABELS = {"namespace", "workflow", "workflow_template", "cronworkflow"}
KSM_CONFIG = ALERT_RULE_DIR.parent.parent / "deploy" / "kube-state-metrics" / "argo-workflows.yaml"
README_ANCHOR = "https://github.com/alert-responder/alert-responder/blob/main/README.md#alert-"


def _promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_binary("promtool"), *args], capture_output=True,
                          text=True, timeout=60, cwd=cwd)


def test_promtool_check_rules_accepts_every_rule_file() -> None:
    result = _promtool("check", "rules", *map(str, rule_files()))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    tests = sorted((ALERT_RULE_DIR / "tests").glob("*.yaml"))
    assert tests
    result = _promtool("test", "rules", *map(str, tests))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_promtool_test_that_fires_it_and_one_that_does_not() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in (ALERT_RULE_DIR / "tests").glob("*.yaml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - fired == set()
    assert names - quiet == set()


def test_the_responder_alerts_the_spec_names_are_all_shipped() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    assert names >= RESPONDER_ALERTS | {"WorkflowFailed"}


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_every_alert_has_severity_summary_description_and_a_readme_runbook_url(
        rule: dict[str, object]) -> None:
    labels = rule.get("labels") or {}
    annotations = rule.get("annotations") or {}
    assert isinstance(labels, dict) and isinstance(annotations, dict)
    assert labels.get("severity") in {"critical", "warning", "info"}
    assert annotations.get("summary") and annotations.get("description")
    assert annotations.get("runbook_url") == README_ANCHOR + str(rule["alert"]).lower()


def test_alert_names_are_unique() -> None:
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names))


def test_alerts_about_the_responder_are_labelled_self_so_they_never_route_back_to_it() -> None:
    for rule in alert_rules(ALERT_RULE_DIR / "responder.yaml"):
        assert rule["labels"]["responder"] == "self", rule["alert"]


def test_workflow_alerts_are_labelled_for_the_responder_route() -> None:
    for rule in alert_rules(ALERT_RULE_DIR / "workflows.yaml"):
        assert rule["labels"]["responder"] == "act", rule["alert"]


def test_responder_alerts_use_only_metrics_the_responder_exports() -> None:
    exported = exported_metric_names() | {"up"}
    for rule in rules_in(ALERT_RULE_DIR / "responder.yaml"):
        used = metric_names(rule["expr"])
        assert used, rule["expr"]
        assert used <= exported, (rule["alert"], used - exported)


def test_workflow_failed_aggregates_to_exactly_the_labels_runbooks_match() -> None:
    rule = next(r for r in alert_rules() if r["alert"] == "WorkflowFailed")
    expr = " ".join(rule["expr"].split())
    assert expr.startswith("max by (namespace, workflow, workflow_template, cronworkflow) (")
    assert set(rule["labels"]) == {"severity", "responder"}


def test_workflow_rules_use_only_metrics_the_kube_state_metrics_config_defines() -> None:
    config = yaml.safe_load(KSM_CONFIG.read_text())
    defined: set[str] = set()
    for resource in config["spec"]["resources"]:
        prefix = resource["metricNamePrefix"]
        defined |= {f"{prefix}_{metric['name']}" for metric in resource["metrics"]}
    records: set[str] = set()
    for rule in rules_in(ALERT_RULE_DIR / "workflows.yaml"):
        used = metric_names(rule["expr"])
        assert used <= defined | records, used - defined - records
        if "record" in rule:
            records.add(rule["record"])


def test_metric_name_extraction_ignores_functions_labels_and_keywords() -> None:
    expr = ('sum by (job, le) (rate(foo_bucket{code=~"5..", x="a b"}[5m] offset 1m)) '
            '/ on (job) group_left (le) bar and baz_total > 1e3 unless ALERTS')
    assert metric_names(expr) == {"foo_bucket", "bar", "baz_total", "ALERTS"}
