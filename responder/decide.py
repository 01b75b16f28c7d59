"""Alerts + analyses + rules -> decisions: the one place that knows the order.

analyze -> match -> plan -> refuse or schedule -> notification and escalation buckets.
The pipeline, ``responder explain``, ``responder test`` and ``responder replay`` all call
``decide`` and read its answer; none of them repeats the order or the bucketing, so what
an operator dry-runs is what the service does.

Pure: no event loop, no I/O. The state that decides a refusal (the pause switch, open
breakers) is handed in as a snapshot; acting on a decision (attempts, breakers, the
outbox) is the caller's business.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from responder.act.plan import CHAINED, PlanError, PlannedAction, RunbookPlan, plan
from responder.analyze import Analysis
from responder.backoff import Backoff
from responder.config.runbooks import RunbookSpec
from responder.grouping import Bucket, bucket
from responder.match import RunbookIndex
from responder.model import Alert, AlertGroup

PAUSED = "actions paused by the operator"
ASKED = "waits for a person's approval"


class AlertAnalyzer(Protocol):
    def analyze_alert(self, labels: Mapping[str, str],
                      annotations: Mapping[str, str]) -> Analysis: ...


class Rules(Protocol):
    """What a decision is made with: the service's ``Runtime`` has both."""

    @property
    def analyzer(self) -> AlertAnalyzer: ...

    @property
    def index(self) -> RunbookIndex: ...


@dataclass(frozen=True, slots=True)
class State:
    """The runtime facts a refusal depends on, as they are when the decision is made."""

    paused: bool = False
    open_breakers: Container[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a runbook's actions do not run; ``outcome`` is the recorded action outcome."""

    outcome: str   # paused | not_retryable | breaker_open
    reason: str

    @property
    def escalates(self) -> bool:
        """A paused action is held, not given up: only the other refusals escalate."""
        return self.outcome != "paused"


@dataclass(frozen=True, slots=True)
class ActionDecision:
    action: PlannedAction
    refusal: Refusal | None
    chained: bool            # a workflow retry/resubmit: attempts under the retry budget
    delays: tuple[float, ...]   # chained: the wait of each attempt of the budget

    @property
    def verdict(self) -> str:
        if self.refusal is not None:
            return "refused"
        return "schedule" if self.chained else "run"

    @property
    def first_delay(self) -> float:
        return self.delays[0] if self.chained and self.delays else 0.0

    def first_outcome(self, runbook: RunbookSpec) -> tuple[str, str, int]:
        """(outcome, detail, attempt) a notification's ``actions`` shows of this action
        when it is decided: refused (attempt 0), awaiting approval, held by a pause, or
        scheduled. ``explain`` shows what the service records."""
        if self.refusal is not None and self.refusal.escalates:
            return self.refusal.outcome, self.refusal.reason, 0
        if runbook.approval is not None:
            return "awaiting_approval", ASKED, 1
        if self.refusal is not None:
            return "paused", PAUSED, 1
        limit = runbook.retry.limit
        return "scheduled", (f"attempt 1 of {limit} in {self.first_delay:g}s" if self.chained
                             else "runs now"), 1


@dataclass(frozen=True, slots=True)
class RunbookDecision:
    plan: RunbookPlan
    refusal: Refusal | None
    actions: tuple[ActionDecision, ...]

    @property
    def name(self) -> str:
        return self.plan.runbook.name


@dataclass(frozen=True, slots=True)
class PlanFailure:
    runbook: str
    error: str


@dataclass(frozen=True, slots=True)
class AlertDecision:
    index: int
    alert: Alert
    analysis: Analysis
    matched: tuple[str, ...]           # every selected runbook, planned or not
    runbooks: tuple[RunbookDecision, ...]
    errors: tuple[PlanFailure, ...]

    def runbook(self, name: str) -> RunbookSpec:
        """The planned runbook called ``name``."""
        return next(r.plan.runbook for r in self.runbooks if r.name == name)

    def escalations(self) -> list[tuple[RunbookDecision, Refusal]]:
        """The runbooks whose refusal sends ``on_exhausted`` at once."""
        return [(r, r.refusal) for r in self.runbooks
                if r.refusal is not None and r.refusal.escalates and r.plan.actions]


@dataclass(frozen=True, slots=True)
class Decisions:
    alerts: tuple[AlertDecision, ...]
    notifications: tuple[Bucket[AlertDecision], ...]
    escalations: tuple[Bucket[AlertDecision], ...]


def refusal(p: RunbookPlan, analysis: Analysis, state: State) -> Refusal | None:
    """Whether the runbook's actions are refused before any attempt exists."""
    if not p.actions:
        return None
    if state.paused:
        return Refusal("paused", PAUSED)
    chained = any(a.kind in CHAINED for a in p.actions)
    if chained and not analysis.retryable and p.runbook.when_retryable is None:
        return Refusal("not_retryable",
                       f"analysis says {analysis.category} is not retryable")
    if p.breaker_key and p.breaker_key in state.open_breakers:
        return breaker_open(p.breaker_key)
    return None


def breaker_open(key: str) -> Refusal:
    return Refusal("breaker_open", f"breaker {key} is open")


def decide_runbook(p: RunbookPlan, analysis: Analysis, state: State) -> RunbookDecision:
    refused = refusal(p, analysis, state)
    backoff = Backoff.of(p.runbook.retry)
    actions = tuple(
        ActionDecision(a, refused, a.kind in CHAINED,
                       backoff.delays() if a.kind in CHAINED else ())
        for a in p.actions)
    return RunbookDecision(p, refused, actions)


def decide_alert(rules: Rules, group: AlertGroup, index: int,
                 analysis: Analysis | None = None, state: State = State()) -> AlertDecision:
    """Analyze (unless given), match, plan and refuse or schedule for one alert."""
    alert = group.alerts[index]
    if analysis is None:
        analysis = rules.analyzer.analyze_alert(alert.labels, alert.annotations)
    selected = rules.index.select(alert, analysis)
    decided: list[RunbookDecision] = []
    errors: list[PlanFailure] = []
    for runbook in selected:
        try:
            p = plan(runbook, alert, group, analysis)
        except PlanError as exc:
            errors.append(PlanFailure(runbook.name, str(exc)))
            continue
        decided.append(decide_runbook(p, analysis, state))
    return AlertDecision(index, alert, analysis, tuple(r.name for r in selected),
                         tuple(decided), tuple(errors))


def decide(rules: Rules, group: AlertGroup,
           analyses: Sequence[Analysis | None] | None = None,
           state: State = State()) -> Decisions:
    """Every decision for the alerts of one Alertmanager group.

    ``analyses`` (aligned with ``group.alerts``) are the verdicts already made, e.g.
    enriched from the workflow itself; an alert without one is analyzed from its own
    text."""
    given = list(analyses) if analyses is not None else []
    alerts = tuple(
        decide_alert(rules, group, i, given[i] if i < len(given) else None, state)
        for i in range(len(group.alerts)))
    notifications = bucket(
        ((a, r.name, spec, spec.per_alert) for a in alerts for r in a.runbooks
         for spec in r.plan.notify),
        key=lambda a: a.index)
    escalations = bucket(
        ((a, r.name, spec, False) for a in alerts for r, _ in a.escalations()
         for spec in r.plan.on_exhausted),
        key=lambda a: a.index)
    return Decisions(alerts, tuple(notifications), tuple(escalations))
