"""The retry budget of a runbook action: when each attempt is due and when it is spent.

The wait itself is ``responder.backoff.Backoff`` (the one retry rule of the service); this
module counts it from the failure an attempt answers. SPEC §5, as Argo's own
``retryStrategy.backoff``: attempt ``n`` waits ``duration * factor**(n-1)``, capped at
``max_duration``; the first attempt waits ``duration`` too.
"""

from __future__ import annotations

from dataclasses import dataclass

from responder.backoff import Backoff


def backoff_delay(attempt: int, duration: float, factor: float, max_duration: float) -> float:
    """Seconds attempt ``attempt`` (1-based) waits after the failure it answers."""
    return Backoff(duration, factor, max_duration).delay(attempt)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    limit: int
    duration: float
    factor: float = 2.0
    max_duration: float = 0.0   # 0: no cap


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do about one failing target.

    ``verdict`` is ``"attempt"`` (run attempt ``attempt`` now), ``"wait"`` (attempt
    ``attempt`` is due at ``due``) or ``"exhausted"`` (``attempt`` attempts were made, the
    budget is spent: run ``on_exhausted``).
    """

    verdict: str
    attempt: int
    due: float | None = None


def due_at(attempt: int, failed_at: float, policy: RetryPolicy) -> float:
    """When attempt ``attempt`` may run, answering the failure seen at ``failed_at``."""
    return failed_at + backoff_delay(attempt, policy.duration, policy.factor,
                                     policy.max_duration)


def next_attempt(attempts_made: int, failed_at: float, now: float,
                 policy: RetryPolicy) -> Decision:
    """Decide the next step after ``attempts_made`` attempts, the last failure at ``failed_at``."""
    if attempts_made >= policy.limit:
        return Decision("exhausted", attempts_made)
    n = attempts_made + 1
    due = due_at(n, failed_at, policy)
    return Decision("attempt" if now >= due else "wait", n, due)
