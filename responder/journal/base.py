"""The journal interface every backend implements (SQLite now, PostgreSQL next).

Callers speak only this vocabulary; no connection, cursor or SQL leaves a backend. Each
method is one transaction. Work is claimed before it is done: ``claim_deliveries``,
``claim_attempt`` and ``claim_message`` give the caller (the journal's ``owner``) a lease
until ``now + lease``; finishing the work (``finish_delivery``, ``update_attempt``,
``update_outbox``) or ``release_deliveries`` ends it. Work whose lease expired is claimable
again by anyone, so a process that dies loses its work only for the length of a lease;
``open`` gives back at once what this owner held when it last stopped.

Shared state changes inside the journal's transactions, never as a read in one process
and a write later: ``change_breaker`` runs a pure function on the breaker's current row
under its lock, ``acquire_rate`` counts a sliding window in the journal, the pause is a
flag read when it is needed.

The contract suite in ``tests/contract/`` states what each method guarantees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from responder.journal.records import (
    Approval,
    Attempt,
    Breaker,
    DecidedDelivery,
    DeliveryResult,
    Event,
    FinishedDelivery,
    OutboxItem,
    OutboxMessage,
    OutboxUpdate,
    Pause,
    PendingDelivery,
)
from responder.model import AlertGroup, Rejected

# A pure change to one breaker: the current row (None when there is none) in, the new row
# and the events to write with it out, or None to leave it as it is.
BreakerChange = Callable[[Breaker | None], tuple[Breaker, list[Event]] | None]


class Journal(Protocol):
    owner: str
    healthy: bool

    # -- lifecycle -------------------------------------------------------------------
    async def open(self) -> None:
        """Create or migrate the schema, refuse a newer one, give back this owner's leases."""

    async def close(self) -> None: ...

    # -- held commits ------------------------------------------------------------------
    def holding_commits(self) -> AbstractAsyncContextManager[None]:
        """Inside, the calling task's writes may be committed together (``commit_held``,
        or at the end); left by an exception, what is not committed is rolled back. A
        backend whose writes are round trips anyway commits each as it comes."""

    async def commit_held(self) -> None:
        """Commit what the holder of ``holding_commits`` has written so far."""

    # -- receipts and deliveries -----------------------------------------------------
    async def record_delivery(self, group: AlertGroup,
                              rejected: list[Rejected]) -> DeliveryResult:
        """Journal a webhook delivery durably; returns once its rows are committed."""

    async def record_rejection(self, detail: dict[str, Any]) -> None: ...

    async def pending_deliveries(self, after_id: int = 0, limit: int = 100,
                                 max_alerts: int = 200) -> list[PendingDelivery]:
        """Pending deliveries in id order, claimed or not (a read, no claim)."""

    async def claim_deliveries(self, *, limit: int = 50, max_alerts: int = 50,
                               lease: float = 120.0) -> list[PendingDelivery]:
        """Claim pending deliveries nobody holds (or whose lease expired), oldest first:
        up to ``limit``, and no more once ``max_alerts`` receipts are loaded (the first
        always comes whole)."""

    async def release_deliveries(self, delivery_ids: Sequence[int]) -> None:
        """Give back claimed deliveries unfinished, for anyone to claim now."""

    async def finish_delivery(
        self, delivery_id: int, receipts: Iterable[tuple[int, str, Any, Any]],
        events: Iterable[Event], messages: Sequence[OutboxMessage] = (),
    ) -> int:
        """Mark a delivery done with each receipt's (id, state, analysis, runbooks), its
        events and its messages, in one transaction; returns how many messages were
        queued. When another owner holds the delivery now, nothing is written (0)."""

    async def finish_deliveries(self, finished: Sequence[FinishedDelivery], *,
                                claimed: list[OutboxItem] | None = None,
                                lease: float = 120.0) -> list[int]:
        """``finish_delivery`` for each of ``finished`` in one transaction; how many
        messages each queued (0 for one another owner holds now, whose rows are left).
        A message with ``claim`` set is queued claimed by this journal's owner for
        ``lease`` seconds, and its row is appended to ``claimed`` (when given): the caller
        sends it and records the try (``update_outbox_many``)."""

    # -- events ----------------------------------------------------------------------
    async def add_events(self, events: Iterable[Event]) -> None: ...

    async def decided(self, since: float, *, limit: int = 10_000) -> list[DecidedDelivery]:
        """Deliveries processed since ``since`` (their receipt time), oldest first, with
        each new receipt's analysis, runbooks and events: what ``responder replay``
        compares a changed configuration against."""

    async def recent(self, limit: int = 50) -> dict[str, Any]:
        """The audit log: recent receipts with their events, recent rejections, and
        ``since``, the oldest moment it still holds (older rows are past retention)."""

    async def events(self, *, kind: str | None = None,
                     limit: int = 100) -> list[dict[str, Any]]: ...

    # -- attempts --------------------------------------------------------------------
    async def schedule_attempt(
        self, *, instance: str, runbook: str, target: str, n: int, action: str,
        params: dict[str, Any], due_at: float, receipt_id: int | None,
        context: dict[str, Any], state: str = "scheduled",
    ) -> Attempt | None:
        """Create attempt ``n`` unless it exists (idempotent); the new row or None."""

    async def due_attempts(self, now: float, limit: int = 50) -> list[Attempt]:
        """Attempts to claim: scheduled and due, or running under an expired lease."""

    async def next_attempt_due(self) -> float | None: ...

    async def attempts_for(self, instance: str, runbook: str | None = None) -> list[Attempt]: ...

    async def attempt(self, instance: str, runbook: str, target: str,
                      n: int) -> Attempt | None: ...

    async def open_escalations(self, runbook: str, *, other_than: str) -> list[Attempt]:
        """Escalation markers of ``runbook`` (target ``escalation``, action ``notify``)
        for instances other than ``other_than`` whose alert has not resolved."""

    async def claim_attempt(self, attempt_id: int, *, lease: float = 300.0) -> bool:
        """Mark a due attempt running under this owner's lease; False when it is not
        claimable (not due, finished, or held under a live lease)."""

    async def update_attempt(
        self, attempt_id: int, *, state: str, outcome: str | None = None,
        detail: str | None = None, executed_at: float | None = None,
        due_at: float | None = None, expect_state: str | None = None,
    ) -> bool:
        """Move an attempt on (its lease ends unless it stays running); with
        ``expect_state`` only if it is still in that state."""

    async def retry_attempt(self, attempt_id: int, *, due_at: float, tries: int) -> None:
        """Schedule a running attempt again at ``due_at`` after ``tries`` transient
        failures (kept as ``context["_tries"]``)."""

    # -- breakers --------------------------------------------------------------------
    async def load_breakers(self) -> list[Breaker]: ...

    async def change_breaker(self, key: str, change: BreakerChange) -> Breaker | None:
        """Apply ``change`` to the breaker's current row under its lock; the row after."""

    async def change_breakers(self, changes: Sequence[tuple[str, BreakerChange]],
                              ) -> list[Breaker | None]:
        """``change_breaker`` for each of ``changes``, in order, in one transaction (a
        key given twice sees its first change); the rows after, in the same order."""

    # -- outbox ----------------------------------------------------------------------
    async def enqueue(self, *, channel: str, dedup: str, message: dict[str, Any],
                      fallback: str | None, receipt_id: int | None,
                      next_at: float | None = None) -> bool:
        """Queue a message once (``dedup`` is unique); True when queued now."""

    async def due_outbox(self, now: float, limit: int = 50) -> list[OutboxItem]:
        """Messages to claim: pending and due, or sending under an expired lease."""

    async def next_outbox_due(self) -> float | None: ...

    async def claim_message(self, item_id: int, *, lease: float = 120.0) -> bool:
        """Mark a due message sending under this owner's lease; False when not claimable."""

    async def claim_messages(self, item_ids: Sequence[int], *,
                             lease: float = 120.0) -> list[int]:
        """``claim_message`` for each of ``item_ids`` in one transaction; the ids claimed,
        in the order given."""

    async def update_outbox(self, item_id: int, *, state: str, tries: int,
                            next_at: float | None = None, error: str | None = None,
                            events: Iterable[Event] = ()) -> None:
        """Record a delivery try (``sent``, ``pending`` again, ``failed``); ends the lease."""

    async def update_outbox_many(self, updates: Sequence[OutboxUpdate]) -> None:
        """``update_outbox`` for each of ``updates`` in one transaction."""

    # -- flags and rate limits -------------------------------------------------------
    async def get_flag(self, name: str) -> Any: ...

    async def set_flag(self, name: str, value: Any, events: Iterable[Event] = ()) -> None: ...

    async def acquire_rate(self, key: str, limit: int, window: float,
                           now: float) -> tuple[bool, float]:
        """Take one of ``limit`` slots per ``window`` seconds for ``key``, for every
        process on this journal: (True, 0) or (False, seconds until a slot frees)."""

    # -- the people's controls: pauses, attempts by hand, approvals -------------------
    async def add_pause(self, *, matchers: Sequence[str], reason: str | None, by: str,
                        until: float | None, events: Callable[[Pause], Iterable[Event]]) -> Pause:
        """Record a pause (no matchers: everything) with the events ``events`` makes of it."""

    async def active_pauses(self, now: float) -> list[Pause]:
        """Pauses neither lifted nor past their ``until``, oldest first."""

    async def lift_pauses(self, *, by: str, pause_id: int | None = None,
                          events: Callable[[Pause], Iterable[Event]]) -> list[Pause]:
        """Lift one active pause, or all of them; the pauses this call lifted."""

    async def attempt_by_id(self, attempt_id: int) -> Attempt | None: ...

    async def attempts_in(self, states: Sequence[str], limit: int = 200) -> list[Attempt]:
        """Attempts in any of ``states``; ``held`` names the scheduled attempts a pause
        holds (outcome ``paused``), and ``scheduled`` then the other scheduled ones."""

    async def cancel_attempt(self, attempt_id: int, *, by: str,
                             events: Callable[[Attempt], Iterable[Event]]) -> Attempt | None:
        """Cancel a scheduled (or held), waiting or approval-waiting attempt; None when it
        is none of these. An approval left with no waiting attempt closes as cancelled."""

    async def ask_approval(self, *, instance: str, runbook: str, receipt_id: int | None,
                           attempts: Sequence[int], summary: dict[str, Any], timeout_at: float,
                           on_timeout: str) -> Approval | None:
        """The question, once per alert instance and runbook; None if asked already."""

    async def approval(self, approval_id: int) -> Approval | None: ...

    async def approvals(self, *, open_only: bool = True, limit: int = 100) -> list[Approval]: ...

    async def expired_approvals(self, now: float) -> list[Approval]: ...

    async def next_approval_timeout(self) -> float | None: ...

    async def decide_approval(self, approval_id: int, *, decision: str, run: bool, by: str,
                              comment: str | None,
                              events: Callable[[Approval], Iterable[Event]]) -> Approval | None:
        """The one decision, under a conditional update: its attempts are scheduled
        (``run``) or cancelled with ``decision`` as their outcome, in the same transaction.
        None when it was decided already (here or by another process) or never asked."""

    async def close_approvals(self, instance: str, decision: str, by: str) -> int:
        """Close an instance's open approvals (its alert resolved)."""

    # -- corrections: operators' verdicts on analyses (the feedback loop) -------------
    async def receipt_alert(self, receipt_id: int) -> dict[str, Any] | None:
        """``{"alert", "analysis"}`` as journaled for receipt ``receipt_id``, or None."""

    async def record_correction(self, *, text_key: str, category: str, text: str,
                                receipt_id: int, by: str, previous: str | None) -> None:
        """Store (or replace) the category operators gave the text keyed ``text_key``,
        with a ``correction`` event; kept through retention (it is not finished work)."""

    async def corrections(self) -> list[tuple[str, str, str]]:
        """Every correction as (text key, category, text), oldest first."""

    async def correction_categories(self) -> list[tuple[str, str]]:
        """Every correction as (text key, category), oldest first: what the analysis
        applies, without the stored texts (only training reads those)."""

    # -- console sessions ended before their cookie expires (logging out) -------------
    async def revoke_session(self, session_id: str, *, until: float) -> None:
        """Refuse console session ``session_id`` on every replica until ``until`` (when
        its cookie expires anyway); revocations past their ``until`` are deleted here."""

    async def revoked_sessions(self) -> list[str]:
        """The revoked sessions not yet past their ``until``."""

    # -- health and retention --------------------------------------------------------
    async def pending_count(self) -> int: ...

    async def size_bytes(self) -> int:
        """What the journal takes on its storage (file and WAL, or the database)."""

    async def prune(self, before: float, *, batch: int = 500) -> int:
        """Delete one batch of finished work older than ``before``: done deliveries and
        their receipts, events, finished attempts, sent or failed messages, decided
        approvals, lifted or expired pauses. Pending work is never deleted. Returns the
        rows deleted (0: nothing left to prune)."""

    async def release_space(self, *, pages: int = 1024) -> int:
        """Give the space of pruned rows back to the filesystem, up to ``pages`` pages in
        one short transaction, keeping some free for the next writes. Returns the pages
        given back (0: nothing, or nothing more, to give back)."""
