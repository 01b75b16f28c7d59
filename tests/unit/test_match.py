"""Runbook selection: file order, first match wins unless ``continue``, status and ``when``
guards, and an index that always agrees with trying every runbook in turn."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from responder.analyze import Analysis
from responder.config.runbooks import (
    Matcher,
    RateLimitSpec,
    RetrySpec,
    RunbookSpec,
    load_runbooks_text,
)
from responder.errors import Origin
from responder.match import RunbookIndex
from responder.model import Alert

NETWORK = Analysis("Network", "connection-refused", 0.9, True, ())
OOM = Analysis("ResourceExhaustion", "oom-killed", 0.95, False, ())


def alert(status: str = "firing", **labels: str) -> Alert:
    return Alert(status=status, labels=labels,  # type: ignore[arg-type]
                 starts_at=datetime(2026, 1, 1, tzinfo=UTC))


def names(index: RunbookIndex, a: Alert, analysis: Analysis = NETWORK) -> list[str]:
    return [r.name for r in index.select(a, analysis)]


def index_of(text: str) -> RunbookIndex:
    return RunbookIndex(load_runbooks_text(text, channels=["c"]))


ROUTES = index_of("""
runbooks:
  - name: count-cron
    match: [alertname="WorkflowFailed", cronworkflow!=""]
    status: any
    notify: [c]
    continue: true
  - name: retry
    match: [alertname="WorkflowFailed"]
    when: {retryable: true}
    notify: [c]
  - name: escalate-resources
    match: [alertname="WorkflowFailed"]
    when: {category: [ResourceExhaustion, Configuration]}
    notify: [c]
  - name: catch-all-firing
    match: ['alertname=~".+"']
    notify: [c]
  - name: on-resolve
    match: [alertname="WorkflowFailed"]
    status: resolved
    notify: [c]
  - name: disk
    match: ['alertname=~"DiskFull|DiskSlow"', severity="critical"]
    notify: [c]
""")


def test_the_first_matching_runbook_wins() -> None:
    assert names(ROUTES, alert(alertname="WorkflowFailed")) == ["retry"]


def test_continue_lets_later_runbooks_match_too() -> None:
    assert names(ROUTES, alert(alertname="WorkflowFailed", cronworkflow="nightly")) == [
        "count-cron", "retry"]


def test_when_guards_skip_a_runbook_for_other_analyses() -> None:
    assert names(ROUTES, alert(alertname="WorkflowFailed"), OOM) == ["escalate-resources"]
    unknown = Analysis("Unknown", None, 0.0, False, ())
    assert names(ROUTES, alert(alertname="WorkflowFailed"), unknown) == ["catch-all-firing"]


def test_status_guards_separate_firing_from_resolved_alerts() -> None:
    assert names(ROUTES, alert("resolved", alertname="WorkflowFailed")) == ["on-resolve"]
    assert names(ROUTES, alert("resolved", alertname="WorkflowFailed", cronworkflow="n")) == [
        "count-cron", "on-resolve"]


def test_runbooks_without_an_alertname_are_interleaved_in_file_order() -> None:
    assert names(ROUTES, alert(alertname="DiskFull", severity="critical")) == [
        "catch-all-firing"]
    assert names(ROUTES, alert(alertname="Other")) == ["catch-all-firing"]
    assert names(ROUTES, alert("resolved", alertname="DiskSlow", severity="critical")) == []


def test_a_regex_of_plain_alertnames_is_indexed_under_each_name() -> None:
    index = index_of("""
runbooks:
  - name: disk
    match: ['alertname=~"DiskFull|DiskSlow"', severity="critical"]
    notify: [c]
""")
    assert names(index, alert(alertname="DiskSlow", severity="critical")) == ["disk"]
    assert names(index, alert(alertname="DiskFull", severity="warning")) == []
    assert names(index, alert(alertname="Disk", severity="critical")) == []


def test_an_alert_without_alertname_only_sees_runbooks_that_allow_any() -> None:
    index = index_of("""
runbooks:
  - name: named
    match: [alertname="X"]
    notify: [c]
  - name: nameless
    match: [alertname=""]
    notify: [c]
""")
    assert names(index, alert(job="x")) == ["nameless"]


# -- the index against brute force ----------------------------------------------------

LABEL_NAMES = ("alertname", "namespace", "cronworkflow")
VALUES = ("", "A", "B", "C")
REGEXES = ("A|B", "A", "B|C", ".*", ".+", "A.*", "")


@st.composite
def matchers(draw: st.DrawFn) -> Matcher:
    name = draw(st.sampled_from(LABEL_NAMES))
    op = draw(st.sampled_from(("=", "!=", "=~", "!~")))
    value = draw(st.sampled_from(REGEXES if "~" in op else VALUES))
    return Matcher(name, op, value)


@st.composite
def runbooks(draw: st.DrawFn) -> list[RunbookSpec]:
    count = draw(st.integers(0, 12))
    specs = []
    for i in range(count):
        categories = draw(st.none() | st.frozensets(
            st.sampled_from(("Network", "CodeDefect", "Unknown")), min_size=1))
        specs.append(RunbookSpec(
            name=f"rb{i}", description="", matchers=tuple(draw(st.lists(matchers(), max_size=3))),
            status=draw(st.sampled_from(("firing", "resolved", "any"))),
            when_retryable=draw(st.none() | st.booleans()), when_categories=categories,
            actions=(), retry=RetrySpec(), rate_limit=RateLimitSpec(), breaker=None,
            notify=(), on_exhausted=(), continue_=draw(st.booleans()),
            origin=Origin("gen.yaml", i + 1)))
    return specs


alerts = st.builds(
    lambda status, labels: alert(status, **labels),
    st.sampled_from(("firing", "resolved")),
    st.dictionaries(st.sampled_from(LABEL_NAMES), st.sampled_from(VALUES[1:]), max_size=3))
analyses = st.builds(
    lambda category, retryable: Analysis(category, None, 0.5, retryable, ()),
    st.sampled_from(("Network", "CodeDefect", "Unknown")), st.booleans())


def brute_force(specs: Sequence[RunbookSpec], a: Alert, analysis: Analysis) -> list[str]:
    out = []
    for rb in specs:
        if rb.status not in ("any", a.status):
            continue
        if not all(m.matches(a.labels) for m in rb.matchers):
            continue
        if rb.when_retryable is not None and rb.when_retryable != analysis.retryable:
            continue
        if rb.when_categories is not None and analysis.category not in rb.when_categories:
            continue
        out.append(rb.name)
        if not rb.continue_:
            break
    return out


@settings(max_examples=150)
@given(specs=runbooks(), a=alerts, analysis=analyses)
def test_index_selection_equals_trying_every_runbook_in_order(
        specs: list[RunbookSpec], a: Alert, analysis: Analysis) -> None:
    assert names(RunbookIndex(specs), a, analysis) == brute_force(specs, a, analysis)
