"""Rows to records and back, the same for every backend: column lists in the order the
decoders read them, and the JSON the journal stores (msgspec, as bytes)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from responder.journal.records import Approval, Attempt, Event, OutboxItem, Pause

json_encode = msgspec.json.Encoder().encode
json_decode = msgspec.json.Decoder().decode

ATTEMPT_COLS = ("id, instance, runbook, target, n, action, params, due_at, state, receipt_id, "
                "context, outcome, detail, executed_at")
OUTBOX_COLS = "id, channel, dedup, message, fallback, receipt_id, state, tries, next_at, last_error"
EVENT_COLS = "id, ts, kind, receipt_id, instance, runbook, action, target, outcome, detail"
FINISHED_ATTEMPT = "('done', 'failed', 'cancelled')"
CANCELLABLE = ("scheduled", "waiting", "approval")   # a held attempt is a scheduled one
PAUSE_COLS = "id, matchers, reason, created_by, created_at, until, lifted_at, lifted_by"
APPROVAL_COLS = ("id, instance, runbook, receipt_id, attempts, summary, asked_at, timeout_at, "
                 "on_timeout, decision, decided_by, decided_at, comment")


def attempts_in_states(states: Sequence[str], mark: str) -> tuple[str, list[str]] | None:
    """The WHERE condition for attempts in any of ``states`` and its parameters, with
    ``mark`` as the driver's placeholder; None when it can match nothing. ``held`` is a
    scheduled attempt a pause holds (outcome ``paused``), and ``scheduled`` then means the
    others."""
    wanted = [s for s in states if s not in ("held", "scheduled")]
    where = [f"state IN ({', '.join([mark] * len(wanted))})"] if wanted else []
    if "held" in states:
        where.append("(state = 'scheduled' AND COALESCE(outcome, '') = 'paused')")
    if "scheduled" in states:
        where.append("(state = 'scheduled' AND COALESCE(outcome, '') <> 'paused')")
    return (" OR ".join(where), wanted) if where else None


def attempt_of(row: Sequence[Any]) -> Attempt:
    return Attempt(row[0], row[1], row[2], row[3], row[4], row[5], json_decode(row[6]), row[7],
                   row[8], row[9], json_decode(row[10]) if row[10] else {}, row[11], row[12],
                   row[13])


def outbox_of(row: Sequence[Any]) -> OutboxItem:
    return OutboxItem(row[0], row[1], row[2], json_decode(row[3]), row[4], row[5], row[6],
                      row[7], row[8], row[9])


def event_dict(row: Sequence[Any]) -> dict[str, Any]:
    """An event row (EVENT_COLS) as the audit API shows it: empty fields left out."""
    out: dict[str, Any] = {"id": row[0], "ts": row[1], "kind": row[2]}
    for name, value in zip(("receipt_id", "instance", "runbook", "action", "target", "outcome"),
                           row[3:9], strict=True):
        if value is not None:
            out[name] = value
    if row[9] is not None:
        out["detail"] = json_decode(row[9])
    return out


def event_rows(events: Iterable[Event], now: float) -> list[tuple[Any, ...]]:
    """Events as the values of ``INSERT INTO events (ts, kind, receipt_id, instance,
    runbook, action, target, outcome, detail)``."""
    return [(now, e.kind, e.receipt_id, e.instance, e.runbook, e.action, e.target, e.outcome,
             json_encode(e.detail) if e.detail is not None else None) for e in events]


def pause_of(row: Sequence[Any]) -> Pause:
    return Pause(row[0], tuple(json_decode(row[1])), row[2], row[3], row[4], row[5], row[6], row[7])


def approval_of(row: Sequence[Any]) -> Approval:
    return Approval(row[0], row[1], row[2], row[3], tuple(json_decode(row[4])), json_decode(row[5]),
                    row[6], row[7], row[8], row[9], row[10], row[11], row[12])
