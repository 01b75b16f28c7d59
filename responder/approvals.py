"""Deciding the actions that wait for a person: approve, reject, or the timeout's default.

The question was recorded by the actor (``approval`` attempts and an approval row). One
decision wins, in the journal's conditional update, whoever or whatever takes it: the
API, the console, a Slack button or the timeout on any replica; a second decision gets
``Conflict``. An approved action is scheduled and runs like any other, which means it
reads the workflow's phase first: approved after the workflow recovered is
``nothing_to_do``. A timeout escalates (``on_exhausted``) or proceeds, as configured.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from responder.actor import Actor
from responder.journal import Approval, Event, JournalUnavailable
from responder.journal.fullness import failure_level

log = logging.getLogger("responder.approvals")
DECISIONS = {"approve": "approved", "reject": "rejected"}


@dataclass(frozen=True, slots=True)
class Refused(Exception):
    status: int       # 404 no such approval, 409 decided already
    message: str


class Approvals:
    POLL = 1.0    # seconds between timeout checks at most (another replica may ask)

    def __init__(self, actor: Actor) -> None:
        self.actor = actor
        self.service = actor.service

    async def decide(self, approval_id: int, verb: str, by: str,
                     comment: str | None = None) -> Approval:
        """``verb`` is approve or reject; raises Refused (404, 409)."""
        journal = self.service.journal
        current = await journal.approval(approval_id)
        if current is None:
            raise Refused(404, f"no approval {approval_id}")
        decision = DECISIONS[verb]
        decided = None
        if current.decision is None:
            decided = await journal.decide_approval(
                approval_id, decision=decision, run=decision == "approved", by=by,
                comment=comment, events=lambda a: [self._event(a, decision, by, comment)])
        if decided is None:
            again = await journal.approval(approval_id) or current
            raise Refused(409, f"approval {approval_id} was already decided: {again.decision} "
                               f"by {again.decided_by}")
        self.service.metrics.approvals.labels(decision).inc()
        self.service.attempts_changed.set()
        log.warning("approval %d %s by %s", approval_id, decision, by)
        return decided

    async def expire(self) -> int:
        """Apply ``on_timeout`` to every approval whose time is up; the number applied."""
        journal = self.service.journal
        count = 0
        for approval in await journal.expired_approvals(self.service.clock()):
            proceed = approval.on_timeout == "proceed"
            decided = await journal.decide_approval(
                approval.id, decision="timeout", run=proceed, by="timeout", comment=None,
                events=lambda a: [self._event(a, "timeout", "timeout", None)])
            if decided is None:
                continue   # decided meanwhile, here or on another replica
            count += 1
            self.service.metrics.approvals.labels("timeout").inc()
            if not proceed and decided.attempts:
                attempt = await journal.attempt_by_id(decided.attempts[0])
                if attempt is not None:
                    await journal.add_events(await self.actor.escalations.escalate(
                        attempt.context, decided.receipt_id, decided.instance,
                        "no decision on the approval in time"))
        if count:
            self.service.attempts_changed.set()
        return count

    async def run(self) -> None:
        while True:
            try:
                await self.expire()
                next_at = await self.service.journal.next_approval_timeout()
            except JournalUnavailable as exc:
                log.log(failure_level(exc), "journal unavailable: %s", exc)
                next_at = None
            wait = self.POLL if next_at is None else max(0.0, min(
                self.POLL, next_at - self.service.clock()))
            await asyncio.sleep(wait)

    @staticmethod
    def _event(a: Approval, decision: str, by: str, comment: str | None) -> Event:
        return Event(kind="approval", receipt_id=a.receipt_id, instance=a.instance,
                     runbook=a.runbook, outcome=decision,
                     detail={"approval": a.id, "by": by, "comment": comment,
                             "attempts": list(a.attempts)})
