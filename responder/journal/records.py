"""The journal's records: what every backend reads and writes, as frozen dataclasses.

The vocabulary is the product's, not the database's: a *receipt* is one alert as received
(unique per instance and status), a *delivery* one webhook request with its receipts,
an *attempt* one action (unique per instance, runbook, target and n), a *breaker* one
circuit breaker's state, the *outbox* the messages to send, a *flag* a named switch
(the pause), an *event* one line of the audit log. Work to do (a pending delivery, a due
attempt, a due message) is *claimed* with a lease before it is done.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class JournalUnavailable(Exception):
    """The journal cannot be written: the webhook answers 503 so Alertmanager retries."""


class JournalFull(JournalUnavailable):
    """The journal's disk is full: webhooks get the reserve, everything else waits."""


class JournalVersionError(Exception):
    """The journal was written by a newer version of the responder than this one."""


class JournalOpenError(Exception):
    """The journal cannot be opened where the configuration puts it (a directory that
    cannot be made, a file that is not a database): waiting will not help."""


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    delivery_id: int
    accepted: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class Receipt:
    id: int
    instance: str
    status: str
    alert: dict[str, Any]
    deliveries: int
    received_at: float
    state: str


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    id: int
    group: dict[str, Any]
    received_at: float
    new: tuple[Receipt, ...]
    duplicates: tuple[Receipt, ...]


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    receipt_id: int | None = None
    instance: str | None = None
    runbook: str | None = None
    action: str | None = None
    target: str | None = None
    outcome: str | None = None
    detail: Any = None

    def but(self, *, outcome: str | None = None, detail: Any = None) -> Event:
        """This event with ``outcome`` and/or ``detail`` set: a constructor call, where
        ``dataclasses.replace`` walks the fields generically (several times per alert)."""
        return Event(self.kind, self.receipt_id, self.instance, self.runbook, self.action,
                     self.target, self.outcome if outcome is None else outcome,
                     self.detail if detail is None else detail)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A rendered message to queue; ``event`` is its audit event, whose outcome is decided
    when it is written (``queued``, or ``duplicate`` when its dedup key exists)."""

    channel: str
    dedup: str
    message: dict[str, Any]
    fallback: str | None
    receipt_id: int | None
    event: Event
    #: Written already claimed by the writer (state ``sending``, its owner, a lease): the
    #: writer sends it right after the commit and records the try, with no claim between.
    #: A crash before the record leaves it to the outbox once the lease runs out.
    claim: bool = False


@dataclass(frozen=True, slots=True)
class FinishedDelivery:
    """What ``finish_delivery`` writes for one delivery: each receipt's (id, state,
    analysis, runbooks), its events and its messages."""

    delivery_id: int
    receipts: tuple[tuple[int, str, Any, Any], ...]
    events: tuple[Event, ...]
    messages: tuple[OutboxMessage, ...] = ()


@dataclass(frozen=True, slots=True)
class Attempt:
    id: int
    instance: str
    runbook: str
    target: str
    n: int
    action: str
    params: dict[str, Any]
    due_at: float
    state: str
    receipt_id: int | None
    context: dict[str, Any]
    outcome: str | None
    detail: str | None
    executed_at: float | None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    channel: str
    dedup: str
    message: dict[str, Any]
    fallback: str | None
    receipt_id: int | None
    state: str
    tries: int
    next_at: float
    last_error: str | None


@dataclass(frozen=True, slots=True)
class OutboxUpdate:
    """One delivery try of a claimed message, as ``update_outbox`` records it."""

    item_id: int
    state: str
    tries: int
    next_at: float | None = None
    error: str | None = None
    events: tuple[Event, ...] = ()


@dataclass(frozen=True, slots=True)
class Breaker:
    """A breaker's stored state (the state machine's fields) and its runbook's spec."""

    key: str
    state: dict[str, Any]
    spec: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Pause:
    id: int
    matchers: tuple[str, ...]
    reason: str | None
    by: str
    created_at: float
    until: float | None
    lifted_at: float | None
    lifted_by: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "matchers": list(self.matchers), "reason": self.reason,
                "by": self.by, "created_at": self.created_at, "until": self.until,
                "lifted_at": self.lifted_at, "lifted_by": self.lifted_by}


@dataclass(frozen=True, slots=True)
class Approval:
    id: int
    instance: str
    runbook: str
    receipt_id: int | None
    attempts: tuple[int, ...]
    summary: dict[str, Any]     # what is asked: the alert's labels, actions, channels
    asked_at: float
    timeout_at: float
    on_timeout: str             # escalate | proceed
    decision: str | None        # approved | rejected | timeout | cancelled | resolved
    decided_by: str | None
    decided_at: float | None
    comment: str | None

    def to_dict(self) -> dict[str, Any]:
        actions = self.summary.get("actions", [])
        return {"id": self.id, "instance": self.instance, "runbook": self.runbook,
                "receipt_id": self.receipt_id, "attempts": list(self.attempts),
                "action": ", ".join(a["kind"] for a in actions),
                "target": ", ".join(a["target"] for a in actions),
                "actions": actions, "labels": self.summary.get("labels", {}),
                "asked_at": self.asked_at, "timeout_at": self.timeout_at,
                "on_timeout": self.on_timeout, "decision": self.decision,
                "decided_by": self.decided_by, "decided_at": self.decided_at,
                "comment": self.comment}


@dataclass(frozen=True, slots=True)
class DecidedReceipt:
    """A receipt as it was decided: its analysis, its runbooks, its audit events."""

    receipt: Receipt
    analysis: dict[str, Any] | None
    runbooks: list[str]
    events: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class DecidedDelivery:
    """A processed delivery (one Alertmanager group) with what was decided for it."""

    id: int
    received_at: float
    group: dict[str, Any]
    receipts: tuple[DecidedReceipt, ...]


MAX_ID = 2**63 - 1   # the largest row id both backends store (SQLite INTEGER, bigint)


def journal_id(raw: object) -> int | None:
    """A row id given as text (a path, a form, a Slack button), or None when it cannot
    name a row: not all digits, or past what the journal stores."""
    text = str(raw)
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    value = int(text)
    return value if value <= MAX_ID else None
