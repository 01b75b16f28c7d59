"""``responder replay``: last week's real alerts through today's (edited) configuration.

Every delivery the journal processed in the period is decided again by ``decide`` with
the configured analysis and runbooks, and compared per alert with what the journal says
was decided then: the runbooks, the actions (and whether they were refused), the
notifications and the escalations sent with the delivery. An operator reads the
differences before rolling a runbook change out. Nothing is executed or written: the
journal is opened read-only, nothing is rendered or sent.

The comparison is of what configuration decides. State of the moment (a pause, an open
breaker) only held actions back: replay counts them as planned, then and now. An
analysis that was read from the workflow itself (``source: workflow``) is kept as it
was, since replay does not read the cluster. The operators' corrections of analyses
(``POST /api/v1/alerts/{id}/category``) are read from the same journal and applied as the
service applies them, at once to the same text: an alert corrected since it was decided
shows its new category, and what that changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from responder.act.plan import CHAINED
from responder.analyze import Analysis, Corrections
from responder.decide import AlertDecision, Decisions, decide
from responder.journal import DecidedDelivery, DecidedReceipt, SqliteJournal
from responder.load import Runtime
from responder.model import Alert, group_from_dict

#: Outcomes the pipeline records when it plans an action (the rest come later, when it runs).
PLANNED = frozenset({"scheduled", "paused", "breaker_open", "not_retryable"})
Item = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Decided:
    """What was (or would be) decided for one alert, as sets to compare."""

    category: str
    runbooks: tuple[str, ...]
    items: frozenset[Item]   # ("action", runbook, kind, target, verdict), ("notify", ...)


@dataclass(frozen=True, slots=True)
class Difference:
    delivery: int
    receipt: int
    received_at: float
    alert: str
    then: Decided
    now: Decided

    @property
    def runbooks(self) -> set[str]:
        """The runbooks involved: those that came or went, or decide something else."""
        names = set(self.then.runbooks) ^ set(self.now.runbooks)
        return names | {i[1] for i in self.then.items ^ self.now.items}


@dataclass(frozen=True, slots=True)
class Journaled:
    """What replay reads from a journal: the decided deliveries, the corrections."""

    deliveries: list[DecidedDelivery]
    corrections: Corrections


@dataclass
class Report:
    deliveries: int = 0
    alerts: int = 0
    differences: list[Difference] = field(default_factory=list)


async def decided_since(runtime: Runtime, state: str | None, since: float) -> Journaled:
    """What the journal decided since ``since``, and the operators' corrections in it:
    ``state`` is a SQLite file or a ``postgresql://`` DSN (default: the configuration's
    ``state``), opened read-only."""
    postgres = runtime.config.postgres
    dsn = state if state and "://" in state else (
        postgres.dsn if postgres is not None and not state else None)
    journal: Any
    if dsn is not None:
        from responder.journal.postgres import PostgresJournal

        journal = PostgresJournal(dsn)
    else:
        journal = SqliteJournal(Path(state or runtime.config.state_path))
    await journal.open_read_only()
    try:
        decided: list[DecidedDelivery] = await journal.decided(since)
        corrections = await journal.corrections()
        return Journaled(decided, Corrections((key, category) for key, category, _ in corrections))
    finally:
        await journal.close()


def replay(runtime: Runtime, deliveries: Iterable[DecidedDelivery],
           corrections: Corrections | None = None) -> Report:
    report = Report()
    for delivery in deliveries:
        if not delivery.receipts:
            continue
        report.deliveries += 1
        group = group_from_dict(delivery.group, [r.receipt.alert for r in delivery.receipts])
        decisions = decide(runtime, group, [
            _analysis(runtime, r, alert, corrections)
            for r, alert in zip(delivery.receipts, group.alerts, strict=True)])
        shared = _delivery_messages(delivery)
        for r, d in zip(delivery.receipts, decisions.alerts, strict=True):
            report.alerts += 1
            then, now = _then(r, shared), _now(d, decisions)
            if then != now:
                report.differences.append(Difference(
                    delivery.id, r.receipt.id, delivery.received_at, _name(d), then, now))
    return report


def _analysis(runtime: Runtime, r: DecidedReceipt, alert: Alert,
              corrections: Corrections | None) -> Analysis:
    """The journaled analysis when it came from the workflow (not re-readable), else the
    alert's text analyzed again, with the operators' corrections, as the service would."""
    a = r.analysis
    if not a or a.get("source") != "workflow":
        return runtime.analyzer.analyze_alert(alert.labels, alert.annotations,
                                              corrections=corrections)
    return Analysis(a["category"], a.get("pattern"), float(a.get("confidence", 0.0)),
                    bool(a.get("retryable")), tuple(a.get("recommendations") or ()),
                    a.get("matched"), "workflow")


def _delivery_messages(delivery: DecidedDelivery) -> set[tuple[str, str, str]]:
    """(kind, runbook, channel) of the messages the delivery queued: a group's message is
    journaled on its first alert, so every alert of the delivery looks them up here."""
    out = set()
    for r in delivery.receipts:
        for e in r.events:
            detail = e.get("detail") or {}
            if e["kind"] != "notification" or not e.get("runbook") or "dedup" not in detail:
                continue
            kind = "escalate" if detail.get("event") == "escalation" else "notify"
            if kind == "escalate" and not str(detail["dedup"]).startswith(f"esc:d{delivery.id}:"):
                continue   # escalated later, by the scheduler: not this delivery's decision
            out.add((kind, str(e["runbook"]), str(e["action"])))
    return out


def _then(r: DecidedReceipt, shared: set[tuple[str, str, str]]) -> Decided:
    runbooks = tuple(r.runbooks)
    items: set[Item] = set()
    for e in r.events:
        detail = e.get("detail") or {}
        if e["kind"] == "action" and e.get("outcome") in PLANNED and _planned_event(detail):
            verdict = "refused" if e["outcome"] == "not_retryable" else _verdict(e["action"])
            items.add(("action", str(e["runbook"]), str(e["action"]), str(e["target"]), verdict))
        elif e["kind"] == "error" and e.get("outcome") == "plan_failed":
            items.add(("error", str(e["runbook"])))
    refused = {i[1] for i in items if i[0] == "action" and i[-1] == "refused"}
    # A message of one of its runbooks; an escalation only where the configuration refused
    # the actions (not retryable), not where a breaker open at the moment did.
    items.update((kind, rb, ch) for kind, rb, ch in shared
                 if rb in runbooks and (kind == "notify" or rb in refused))
    category = str((r.analysis or {}).get("category", "Unknown"))
    return Decided(category, runbooks, frozenset(items))


def _planned_event(detail: dict[str, Any]) -> bool:
    """An action event the pipeline wrote when planning (not one of a later run)."""
    return "attempt" not in detail or (detail.get("attempt") == 1 and "due_in" in detail)


def _verdict(kind: str) -> str:
    return "schedule" if kind in CHAINED else "run"


def _now(d: AlertDecision, decisions: Decisions) -> Decided:
    items: set[Item] = set()
    for r in d.runbooks:
        for a in r.actions:
            items.add(("action", r.name, a.action.kind, a.action.target, a.verdict))
    items.update(("error", e.runbook) for e in d.errors)
    for kind, buckets in (("notify", decisions.notifications),
                          ("escalate", decisions.escalations)):
        items.update((kind, b.runbook, b.channel) for b in buckets
                     if any(m.index == d.index for m in b.members))
    return Decided(d.analysis.category, tuple(r.name for r in d.runbooks), frozenset(items))


def _name(d: AlertDecision) -> str:
    labels = d.alert.labels
    where = "/".join(labels[k] for k in ("namespace", "workflow") if labels.get(k))
    return f"{d.alert.alertname} {where}".strip() + f" [{d.alert.status}]"


def _show(item: Item) -> str:
    if item[0] == "action":
        _, runbook, kind, target, verdict = item
        return f"{runbook}: {verdict} {kind} {target}"
    if item[0] == "error":
        return f"{item[1]}: fails to render"
    kind, runbook, channel = item
    return f"{runbook}: {'notify' if kind == 'notify' else 'escalate to'} {channel}"


def format_report(report: Report, since: float) -> str:
    start = datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out: list[str] = []
    for diff in report.differences:
        when = datetime.fromtimestamp(diff.received_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        out.append(f"alert {diff.alert} received {when} (receipt {diff.receipt}, "
                   f"delivery {diff.delivery})")
        then, now = diff.then, diff.now
        if then.category != now.category:
            out.append(f"  analysis: {then.category} -> {now.category}")
        if then.runbooks != now.runbooks:
            out.append(f"  runbooks: {_names(then.runbooks)} -> {_names(now.runbooks)}")
        out.extend(f"  - {_show(i)}" for i in sorted(then.items - now.items))
        out.extend(f"  + {_show(i)}" for i in sorted(now.items - then.items))
    involved = sorted(set().union(*(d.runbooks for d in report.differences)))
    summary = (f"replayed {report.alerts} alerts in {report.deliveries} deliveries since "
               f"{start}: ")
    if report.differences:
        summary += (f"{len(report.differences)} would be decided differently "
                    f"(runbooks involved: {', '.join(involved)})")
    else:
        summary += "no differences"
    return "\n".join([*out, summary] if out else [summary])


def _names(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "(none)"
