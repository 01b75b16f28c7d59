"""Plans: a runbook rendered for one alert, or a PlanError that says which key failed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from responder.act.plan import PlanError, PlannedAction, RunbookPlan, plan, template_context
from responder.analyze import Analysis
from responder.config.runbooks import RunbookSpec, load_runbooks_text
from responder.model import Alert, AlertGroup, sample_group

NETWORK = Analysis("Network", "connection-refused", 0.9, True, ("check the database",))


def runbook(body: str) -> RunbookSpec:
    (spec,) = load_runbooks_text("runbooks:\n  - name: rb\n    match: [alertname=\"X\"]\n"
                                 + body, channels=["oncall", "pager"])
    return spec


def group_of(**labels: str) -> AlertGroup:
    a = Alert(status="firing", labels={"alertname": "X", **labels},
              annotations={"summary": "it broke"}, starts_at=datetime(2026, 1, 1, tzinfo=UTC))
    return AlertGroup(group_key="g", receiver="responder", alerts=(a,))


def plan_for(spec: RunbookSpec, group: AlertGroup, analysis: Analysis = NETWORK) -> RunbookPlan:
    return plan(spec, group.alerts[0], group, analysis)


RETRY = """\
    actions:
      - argo.retry: {namespace: "{{ labels.namespace }}", workflow: "{{ labels.workflow }}",
                     restart_successful: "{{ analysis.retryable }}"}
      - argo.stop:
          namespace: "{{ labels.namespace }}"
          workflow: "{{ labels.workflow }}"
          message: >-
            {{ analysis.category }}: {{ annotations.summary }}
            ({{ group.receiver }}, {{ alert.status }})
    breaker:
      key: "{{ labels.namespace }}/{{ labels.get('workflow_template') or labels.workflow }}"
      on_open: [{argo.suspend_cron: {namespace: "{{ labels.namespace }}", cronworkflow: nightly}}]
      on_close: [{breaker.reset: {key: "{{ labels.namespace }}"}}]
    notify: [oncall]
    on_exhausted: {notify: [pager]}
"""


def test_a_plan_renders_every_action_with_its_target() -> None:
    spec = runbook(RETRY)
    group = group_of(namespace="taskmaster", workflow="etl-1")
    p = plan(spec, group.alerts[0], group, NETWORK)
    assert p.actions == (
        PlannedAction("argo.retry", {"namespace": "taskmaster", "workflow": "etl-1",
                                     "restart_successful": True}, "workflow:taskmaster/etl-1"),
        PlannedAction("argo.stop", {"namespace": "taskmaster", "workflow": "etl-1",
                                    "message": "Network: it broke (responder, firing)"},
                      "workflow:taskmaster/etl-1"),
    )
    assert p.breaker_key == "taskmaster/etl-1"
    assert p.on_open == (PlannedAction(
        "argo.suspend_cron", {"namespace": "taskmaster", "cronworkflow": "nightly"},
        "cronworkflow:taskmaster/nightly"),)
    assert p.on_close == (PlannedAction("breaker.reset", {"key": "taskmaster"},
                                        "breaker:taskmaster"),)
    assert [n.channel for n in p.notify] == ["oncall"]
    assert [n.channel for n in p.on_exhausted] == ["pager"]


def test_a_label_that_may_be_missing_can_be_read_with_get() -> None:
    spec = runbook(RETRY)
    group = group_of(namespace="taskmaster", workflow="etl-1", workflow_template="etl")
    assert plan(spec, group.alerts[0], group, NETWORK).breaker_key == "taskmaster/etl"


def test_a_missing_label_fails_the_plan_naming_runbook_key_and_reason() -> None:
    spec = runbook(RETRY)
    group = group_of(namespace="taskmaster")
    with pytest.raises(PlanError) as info:
        plan(spec, group.alerts[0], group, NETWORK)
    assert str(info.value) == ("runbook rb: actions[0].argo.retry.workflow: 'dict object' has "
                               "no attribute 'workflow' (in '{{ labels.workflow }}')")
    assert (info.value.runbook, info.value.key) == ("rb", "actions[0].argo.retry.workflow")


def test_a_rendered_name_that_is_not_a_kubernetes_name_fails_the_plan() -> None:
    spec = runbook(RETRY)
    group = group_of(namespace="taskmaster", workflow="../../cron-workflows/x")
    with pytest.raises(PlanError, match=r"actions\[0\].argo.retry.workflow: "
                                        r"'../../cron-workflows/x' is not a valid workflow"):
        plan(spec, group.alerts[0], group, NETWORK)


def test_a_rendered_boolean_must_read_as_true_or_false() -> None:
    spec = runbook("    actions:\n      - argo.resubmit: {namespace: a, workflow: b, "
                   "memoized: '{{ labels.memo }}'}\n")
    assert plan_for(spec, group_of(memo="False")).actions[0].params["memoized"] is False
    with pytest.raises(PlanError, match=r"memoized: expected true or false, got 'perhaps'"):
        plan_for(spec, group_of(memo="perhaps"))


def test_a_required_parameter_that_renders_empty_fails_the_plan() -> None:
    spec = runbook("    actions:\n      - breaker.trip: {key: '{{ labels.get(\"team\", \"\") }}', "
                   "for: 1h}\n")
    with pytest.raises(PlanError, match=r"actions\[0\].breaker.trip.key: rendered empty"):
        plan_for(spec, group_of())


def test_a_breaker_key_that_renders_empty_fails_the_plan() -> None:
    spec = runbook("    notify: [oncall]\n    breaker: {key: '{{ labels.get(\"team\", \"\") }}'}\n")
    with pytest.raises(PlanError, match=r"runbook rb: breaker.key: rendered empty"):
        plan_for(spec, group_of())


def test_templates_run_sandboxed() -> None:
    spec = runbook("    actions:\n      - breaker.trip: "
                   "{key: \"{{ labels.__class__.__mro__ }}\"}\n")
    with pytest.raises(PlanError, match=r"runbook rb: actions\[0\].breaker.trip.key: "):
        plan_for(spec, group_of())


def test_the_template_context_holds_labels_annotations_alert_group_and_analysis() -> None:
    group = sample_group()
    context = template_context(group.alerts[0], group, NETWORK)
    assert context["labels"]["workflow"] == "nightly-etl-x7k2p"
    assert context["annotations"]["summary"].startswith("Workflow taskmaster/")
    assert context["alert"] == group.alerts[0].to_dict()
    assert context["group"] == group.to_dict(with_alerts=False)
    assert context["analysis"] == NETWORK.to_dict()


def test_a_plan_serialises_for_explain_and_the_audit_log() -> None:
    spec = runbook(RETRY)
    group = group_of(namespace="taskmaster", workflow="etl-1")
    data = plan(spec, group.alerts[0], group, NETWORK).to_dict()
    assert data["runbook"] == "rb"
    assert data["origin"] == "<string>:2"
    assert data["actions"][0] == {"kind": "argo.retry", "target": "workflow:taskmaster/etl-1",
                                  "params": {"namespace": "taskmaster", "workflow": "etl-1",
                                             "restart_successful": True}}
    assert data["breaker_key"] == "taskmaster/etl-1"
    assert data["notify"] == [{"channel": "oncall", "template": None, "fallback": None,
                               "per_alert": False}]
    assert [n["channel"] for n in data["on_exhausted"]] == ["pager"]
