"""Which runbooks handle an alert: Alertmanager-style routing over the runbook list.

Runbooks are tried in file order; the first that matches wins unless it says
``continue: true``, like an Alertmanager route. A runbook matches when the alert's status
fits ``status``, every matcher holds, and the analysis passes the ``when`` guards.

Per-alert cost must stay flat as runbooks grow from 10 to 10,000, so runbooks are indexed
by the alertname they require (``alertname="X"``, or ``alertname=~"X|Y"`` made of plain
names): an alert only looks at the runbooks for its own alertname plus those that accept
any alertname, merged back into file order.

Pure: no event loop, no I/O.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator, Sequence

from responder.analyze import Analysis
from responder.config.runbooks import Matcher, RunbookSpec
from responder.model import Alert

_PLAIN_NAMES = re.compile(r"[A-Za-z0-9_:\-]+(?:\|[A-Za-z0-9_:\-]+)*")


def alertnames(matchers: Sequence[Matcher]) -> frozenset[str] | None:
    """The alertnames a runbook can match, or None when any alertname might do."""
    names: frozenset[str] | None = None
    for m in matchers:
        if m.name != "alertname":
            continue
        if m.op == "=":
            allowed = frozenset({m.value})
        elif m.op == "=~" and _PLAIN_NAMES.fullmatch(m.value):
            allowed = frozenset(m.value.split("|"))
        else:
            continue
        names = allowed if names is None else names & allowed
    return names


def guards_pass(runbook: RunbookSpec, alert: Alert, analysis: Analysis) -> bool:
    """Status and ``when`` guards (the cheap checks, before any matcher runs)."""
    if runbook.status != "any" and runbook.status != alert.status:
        return False
    if runbook.when_retryable is not None and runbook.when_retryable != analysis.retryable:
        return False
    return runbook.when_categories is None or analysis.category in runbook.when_categories


def runbook_matches(runbook: RunbookSpec, alert: Alert, analysis: Analysis) -> bool:
    """Whether one runbook handles the alert, ignoring the others."""
    labels = alert.labels
    return guards_pass(runbook, alert, analysis) and all(
        m.matches(labels) for m in runbook.matchers)


class RunbookIndex:
    """The runbooks of one configuration, indexed for ``select``."""

    def __init__(self, runbooks: Sequence[RunbookSpec]) -> None:
        self.runbooks = tuple(runbooks)
        by_name: dict[str, list[tuple[int, RunbookSpec]]] = {}
        generic: list[tuple[int, RunbookSpec]] = []
        for position, runbook in enumerate(self.runbooks):
            names = alertnames(runbook.matchers)
            if names is None:
                generic.append((position, runbook))
            for name in sorted(names or ()):
                by_name.setdefault(name, []).append((position, runbook))
        self._by_name = {name: tuple(entries) for name, entries in by_name.items()}
        self._generic = tuple(generic)

    def __len__(self) -> int:
        return len(self.runbooks)

    def candidates(self, alertname: str) -> Iterator[RunbookSpec]:
        """Runbooks that may match an alert with this alertname, in file order."""
        specific = self._by_name.get(alertname, ())
        if not self._generic:
            return (runbook for _, runbook in specific)
        if not specific:
            return (runbook for _, runbook in self._generic)
        merged = heapq.merge(specific, self._generic, key=lambda entry: entry[0])
        return (runbook for _, runbook in merged)

    def select(self, alert: Alert, analysis: Analysis) -> list[RunbookSpec]:
        """The runbooks that handle ``alert``, in file order, stopping at the first match
        that does not ``continue``."""
        selected: list[RunbookSpec] = []
        for runbook in self.candidates(alert.alertname):
            if runbook_matches(runbook, alert, analysis):
                selected.append(runbook)
                if not runbook.continue_:
                    break
        return selected
