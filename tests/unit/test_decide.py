"""``decide``: alerts + analyses + rules -> decisions, without an app, a loop or a journal."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from responder.analyze import Analysis
from responder.config.runbooks import load_runbooks_text
from responder.decide import State, decide
from responder.grouping import bucket
from responder.match import RunbookIndex
from responder.model import Alert, AlertGroup

NETWORK = Analysis("Network", "connection-refused", 0.9, True, ("retry",))
OOM = Analysis("ResourceExhaustion", "oom", 0.9, False, ("raise memory",))

RUNBOOKS = """
runbooks:
  - name: retry
    match: [alertname="WorkflowFailed"]
    actions:
      - argo.retry: {namespace: "{{ labels.namespace }}", workflow: "{{ labels.workflow }}"}
    retry: {limit: 3, backoff: {duration: 10s, factor: 3, max_duration: 1m}}
    breaker: {key: "{{ labels.namespace }}"}
    notify: [oncall, {channel: pager, per_alert: true}]
    on_exhausted: {notify: [pager]}
    continue: true
  - name: broken
    match: [alertname="WorkflowFailed", workflow="etl-2"]
    actions: [{argo.stop: {namespace: "{{ labels.nope }}", workflow: x}}]
"""


class Keyword:
    """OOM when the description says so, else Network."""

    def analyze_alert(self, labels: Mapping[str, str],
                      annotations: Mapping[str, str]) -> Analysis:
        return OOM if "OOM" in annotations.get("description", "") else NETWORK


@dataclass
class Rules:
    analyzer: Keyword
    index: RunbookIndex


RULES = Rules(Keyword(), RunbookIndex(load_runbooks_text(RUNBOOKS, channels=["oncall", "pager"])))


def group(*workflows: str, description: str = "connection refused",
          status: str = "firing") -> AlertGroup:
    alerts = tuple(
        Alert(status=status,  # type: ignore[arg-type]
              labels={"alertname": "WorkflowFailed", "namespace": "ns", "workflow": wf},
              annotations={"description": description},
              starts_at=datetime(2026, 1, 1, tzinfo=UTC))
        for wf in workflows)
    return AlertGroup(group_key="g", receiver="responder", alerts=alerts)


def test_a_retryable_failure_schedules_the_retry_with_its_backoff() -> None:
    (d,) = decide(RULES, group("etl-1")).alerts
    assert d.analysis == NETWORK and d.matched == ("retry",)
    (action,) = d.runbooks[0].actions
    assert (action.verdict, action.action.target) == ("schedule", "workflow:ns/etl-1")
    assert action.delays == (10.0, 30.0, 60.0)
    assert action.first_delay == 10.0


def test_a_non_retryable_failure_is_refused_and_escalated() -> None:
    decisions = decide(RULES, group("etl-1", description="OOMKilled"))
    (d,) = decisions.alerts
    refusal = d.runbooks[0].refusal
    assert refusal is not None and refusal.outcome == "not_retryable" and refusal.escalates
    assert d.runbooks[0].actions[0].verdict == "refused"
    assert [(b.runbook, b.channel, len(b.members)) for b in decisions.escalations] == [
        ("retry", "pager", 1)]


def test_a_pause_holds_the_actions_without_escalating() -> None:
    decisions = decide(RULES, group("etl-1"), state=State(paused=True))
    refusal = decisions.alerts[0].runbooks[0].refusal
    assert refusal is not None and refusal.outcome == "paused" and not refusal.escalates
    assert decisions.escalations == ()


def test_an_open_breaker_refuses_its_key_only() -> None:
    decisions = decide(RULES, group("etl-1"), state=State(open_breakers={"ns"}))
    refusal = decisions.alerts[0].runbooks[0].refusal
    assert refusal is not None and refusal.reason == "breaker ns is open"
    other = decide(RULES, group("etl-1"), state=State(open_breakers={"other"}))
    assert other.alerts[0].runbooks[0].refusal is None


def test_a_given_analysis_is_used_instead_of_the_alerts_text() -> None:
    (d,) = decide(RULES, group("etl-1"), [OOM]).alerts
    assert d.analysis == OOM


def test_a_runbook_that_fails_to_render_is_an_error_and_still_matched() -> None:
    (d,) = decide(RULES, group("etl-2")).alerts
    assert d.matched == ("retry", "broken")
    assert [r.name for r in d.runbooks] == ["retry"]
    assert d.errors[0].runbook == "broken" and "nope" in d.errors[0].error


def test_one_message_per_group_unless_the_runbook_asks_per_alert() -> None:
    decisions = decide(RULES, group("etl-1", "etl-3", "etl-4"))
    shape = [(b.runbook, b.channel, b.scope, [m.index for m in b.members])
             for b in decisions.notifications]
    assert shape == [("retry", "oncall", None, [0, 1, 2]), ("retry", "pager", 0, [0]),
                     ("retry", "pager", 1, [1]), ("retry", "pager", 2, [2])]


def test_bucketing_keeps_first_appearance_order() -> None:
    @dataclass(frozen=True)
    class To:
        channel: str
        template: str | None = None
        fallback: str | None = None

    buckets = bucket([("a", "r1", To("x"), False), ("b", "r2", To("x"), False),
                      ("c", "r1", To("x"), False)], key=str)
    assert [(b.runbook, b.members) for b in buckets] == [("r1", ["a", "c"]), ("r2", ["b"])]
