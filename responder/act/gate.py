"""The gate: may a due attempt run now? One pure function, every rule in order.

A due attempt passes, in this order: the operator's pause (it is held, not dropped: SPEC
§4), the breaker of its key, the "still failing" check of a later attempt (the workflow's
phase where it can be read), the retry budget, the rate limit of its target. The
scheduler (``act/scheduler.py``) asks the gate, and fetches whatever fact the gate asks
for (``Need``) in the order it asks: reading a fact may have its owner's side effect (a
half-open breaker hands out its single trial, a rate limiter its token, a persisting
failure counts toward the breaker), so nothing is read that the verdict does not need.

Verdicts: ``Run``, ``Hold`` (paused), ``Refuse`` (and escalate), ``Wait`` (until a time),
``Recovered``, ``Exhausted`` (escalate: the budget is spent), ``Need`` (a fact first).
A person's approval (``Ask``) slots in before ``Run`` in the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

ESCALATE = "escalate"
FAILED_PHASES = frozenset({"Failed", "Error"})
#: A phase the scheduler could not read (no cluster, no such workflow, an error): the
#: failure counts as confirmed, as Alertmanager's re-send already said so.
UNREADABLE = "<unreadable>"


@dataclass(frozen=True, slots=True)
class Attempt:
    """What the gate needs of an attempt (``journal.Attempt`` has it all)."""

    action: str
    n: int
    breaker_key: str | None = None
    breaker_action: bool = False      # on_open / on_close: not under the breaker it serves
    retry_duration: float = 30.0      # a workflow still running is looked at again after
    limit: int = 0                    # the retry budget (for the message when spent)
    rate_limited: bool = False        # the runbook has a rate limit for the target


@dataclass(frozen=True, slots=True)
class Facts:
    """What is known now; ``None`` is "not read yet"."""

    now: float
    paused: bool = False
    breaker_allows: bool | None = None
    phase: str | None = None          # the workflow's phase, or UNREADABLE
    failure_opened: bool | None = None   # counting the persisting failure opened the breaker
    rate_wait: float | None = None    # 0: a token was taken; else seconds until one is free

    def learn(self, **facts: object) -> Facts:
        return replace(self, **facts)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Need:
    fact: str   # breaker_allows | phase | failure_opened | rate_wait


@dataclass(frozen=True, slots=True)
class Run:
    pass


@dataclass(frozen=True, slots=True)
class Hold:
    reason: str = "actions paused by the operator"


@dataclass(frozen=True, slots=True)
class Refuse:
    outcome: str
    reason: str
    escalate: bool = True


@dataclass(frozen=True, slots=True)
class Wait:
    until: float
    outcome: str      # waiting | rate_limited
    detail: str


@dataclass(frozen=True, slots=True)
class Recovered:
    phase: str


@dataclass(frozen=True, slots=True)
class Exhausted:
    limit: int

    @property
    def reason(self) -> str:
        return f"retry budget of {self.limit} spent, still failing"


Verdict = Need | Run | Hold | Refuse | Wait | Recovered | Exhausted


def gate(a: Attempt, f: Facts) -> Verdict:
    """The verdict on attempt ``a`` given facts ``f``, or the next fact it needs."""
    escalation = a.action == ESCALATE
    if f.paused and not escalation:
        return Hold()
    if a.action.startswith("breaker."):
        return Run()   # local: a trip or reset is not under any breaker
    under_breaker = a.breaker_key is not None and not a.breaker_action
    if under_breaker and not escalation:
        if f.breaker_allows is None:
            return Need("breaker_allows")
        if not f.breaker_allows:
            return Refuse("breaker_open", f"breaker {a.breaker_key} is open")
    if a.n > 1 or escalation:
        if f.phase is None:
            return Need("phase")
        if f.phase == "Succeeded":
            return Recovered(f.phase)
        if f.phase not in FAILED_PHASES and f.phase != UNREADABLE:
            return Wait(f.now + a.retry_duration, "waiting", f"workflow is {f.phase}")
        # Still failing: the failure counts toward the breaker.
        if a.breaker_key is not None and f.failure_opened is None:
            return Need("failure_opened")
        if escalation:
            return Exhausted(a.limit)
        if f.failure_opened:
            return Refuse("breaker_open", f"breaker {a.breaker_key} opened")
    if a.rate_limited:
        if f.rate_wait is None:
            return Need("rate_wait")
        if f.rate_wait > 0:
            return Wait(f.now + f.rate_wait, "rate_limited", f"retry in {f.rate_wait:g}s")
    return Run()
