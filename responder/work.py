"""The unit of work the pipeline passes between stages: one new alert and what was decided."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from responder.act.plan import RunbookPlan
from responder.analyze import Analysis
from responder.journal import Receipt
from responder.model import Alert


@dataclass
class AlertWork:
    receipt: Receipt
    alert: Alert
    analysis: Analysis
    plans: list[RunbookPlan]
    actions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
