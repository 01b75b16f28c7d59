"""The unit of work the pipeline hands to the actor: one new alert and what was decided."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from responder.act.plan import RunbookPlan
from responder.analyze import Analysis
from responder.decide import AlertDecision
from responder.journal import Receipt
from responder.model import Alert


@dataclass
class AlertWork:
    receipt: Receipt
    decision: AlertDecision
    #: per runbook, what the actor did about each action (the notification's ``actions``)
    actions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def alert(self) -> Alert:
        return self.decision.alert

    @property
    def analysis(self) -> Analysis:
        return self.decision.analysis

    @property
    def plans(self) -> list[RunbookPlan]:
        return [r.plan for r in self.decision.runbooks]
