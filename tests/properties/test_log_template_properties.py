"""Property-based: the shipped ``log`` template spells out ``_common.j2``'s alertname,
subject and severity (it does not import them, to stay cheap); for any group it says what
those macros say, as the other shipped templates do."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from responder.config.channels import ChannelSpec, LogSettings
from responder.errors import Origin
from responder.model import Alert, AlertGroup
from responder.notify.render import Templates, build_context

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = Templates.load(REPO / "templates")
LOG = ChannelSpec("console", "log", Origin("test"), LogSettings(), 1.0, 1)
MACROS = TEMPLATES._sets["log"].parts["json"].environment.from_string(
    '{% import "_common.j2" as m with context %}'
    '{{ {"alertname": m.alertname() | string, "subject": m.subject() | string, '
    '"severity": m.severity() | string} | tojson }}')
VALUES = st.sampled_from(["", "A", "taskmaster", "nightly-etl", "CRITICAL", "Warning",
                          "10.0.0.1:9090", "x&<>\"'", "ünï", "{{ 1 }}", "a/b"])
LABELS = st.dictionaries(st.sampled_from(["alertname", "namespace", "workflow", "severity",
                                          "instance", "job"]), VALUES)


@st.composite
def groups(draw: st.DrawFn) -> AlertGroup:
    alerts = tuple(
        Alert(status=draw(st.sampled_from(["firing", "resolved"])), labels=labels,
              annotations={"summary": draw(VALUES)},
              starts_at=datetime(2026, 11, 1, tzinfo=UTC))
        for labels in draw(st.lists(LABELS, min_size=0, max_size=4)))
    return AlertGroup(status="firing", alerts=alerts,
                      common_labels=draw(LABELS) if not alerts else {})


@settings(max_examples=300, deadline=None)
@given(groups(), st.sampled_from(["firing", "resolved", "escalation", "approval"]))
def test_the_log_line_names_the_alert_as_the_shared_macros_do(group: AlertGroup,
                                                               event: str) -> None:
    context = build_context(group, event=event, runbook={"name": "r"})
    body = TEMPLATES.render(LOG, context).body
    assert {k: body[k] for k in ("alertname", "subject", "severity")} == json.loads(
        MACROS.render(context.variables()))
    assert body["event"] == event and body["alerts"] == len(group.alerts)


TEXTS = st.one_of(VALUES, st.text(max_size=8))
PLAIN = st.recursive(st.none() | st.booleans() | st.integers() | TEXTS
                     | st.floats(allow_nan=False, allow_infinity=False),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(TEXTS, inner, max_size=3), max_leaves=6)
ACTIONS = st.lists(st.fixed_dictionaries(
    {}, optional={"kind": TEXTS, "outcome": PLAIN, "target": TEXTS, "detail": PLAIN}),
    max_size=3)
ANALYSES = st.fixed_dictionaries({}, optional={"category": PLAIN, "pattern": PLAIN,
                                               "confidence": PLAIN})


@settings(max_examples=400, deadline=None)
@given(groups(), st.sampled_from(["firing", "resolved", "escalation", "approval"]),
       ANALYSES, ACTIONS, st.dictionaries(st.sampled_from(["name", "description"]), PLAIN))
def test_the_python_log_line_is_the_shipped_templates_line(
        group: AlertGroup, event: str, analysis: dict[str, object],
        actions: list[dict[str, object]], runbook: dict[str, object]) -> None:
    """The shipped set renders through ``log_line`` (it is cheaper); whatever it gives is
    what the template itself renders, parsed, and what it declines the template renders."""
    tset = TEMPLATES._sets["log"]
    assert tset.fast is not None
    context = build_context(group, event=event, analysis=analysis, actions=actions,
                            runbook=runbook, argo_ui_url="https://argo.example/")
    fast = tset.fast(context)
    by_jinja = json.loads(tset.parts["json"].render(context.variables()))
    assert fast == by_jinja
    assert TEMPLATES.render(LOG, context).body == by_jinja
