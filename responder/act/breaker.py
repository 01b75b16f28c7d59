"""The circuit-breaker state machine of SPEC §6, pure and with the clock passed in.

A breaker stops automatic actions on one key (say ``taskmaster/etl``) once recovery keeps
failing: ``threshold`` failures inside ``window`` open it, ``cooldown`` later it goes
half-open and lets exactly one trial through; a recovery closes it, a failure reopens it.
Every function returns the new state and the transition it made (``None`` when it made
none), so the caller persists both and runs ``on_open``/``on_close`` once per transition.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

STATE_VALUES = {"closed": 0, "open": 1, "half_open": 2}

Transition = str | None


@dataclass(frozen=True, slots=True)
class BreakerState:
    key: str
    state: str = "closed"
    failures: tuple[float, ...] = ()
    opened_at: float | None = None
    trial_in_flight: bool = False

    def to_row(self) -> dict[str, Any]:
        """The state as the journal stores it (``failures`` a list), without the generic
        ``dataclasses.asdict`` walk: a storm counts a failure per alert."""
        return {"key": self.key, "state": self.state, "failures": list(self.failures),
                "opened_at": self.opened_at, "trial_in_flight": self.trial_in_flight}


def _in_window(failures: tuple[float, ...], now: float, window: float) -> tuple[float, ...]:
    return tuple(t for t in failures if t > now - window)


def _open(s: BreakerState, now: float, failures: tuple[float, ...]) -> BreakerState:
    return replace(s, state="open", failures=failures, opened_at=now, trial_in_flight=False)


def record_failure(s: BreakerState, now: float, threshold: int,
                   window: float) -> tuple[BreakerState, Transition]:
    """A recovery for the key failed (the alert fired again, the workflow failed again)."""
    # Only the newest ``threshold`` failures can decide anything: keeping more would make
    # an alert storm against an open breaker cost time and journal space per failure.
    failures = (*_in_window(s.failures, now, window), now)[-max(threshold, 1):]
    if s.state == "half_open":
        return _open(s, now, failures), "opened"
    if s.state == "open":
        # Already open: remember the failure, but the cooldown keeps counting from opening.
        return replace(s, failures=failures), None
    if len(failures) >= threshold:
        return _open(s, now, failures), "opened"
    return replace(s, failures=failures), None


def record_success(s: BreakerState, now: float) -> tuple[BreakerState, Transition]:
    """A recovery succeeded (alert resolved). Closes a half-open breaker.

    An open breaker stays open until its cooldown has passed: a recovery nobody automated
    says nothing about whether automation is safe again. A closed breaker keeps its failure
    history, since opening is decided by failures within the window, not in a row.
    """
    if s.state == "half_open":
        return replace(s, state="closed", failures=(), opened_at=None,
                       trial_in_flight=False), "closed"
    return s, None


def allow(s: BreakerState, now: float,
          cooldown: float) -> tuple[bool, BreakerState, Transition]:
    """May an automatic action run for the key now? Claims the single half-open trial."""
    if s.state == "closed":
        return True, s, None
    if s.state == "open":
        due = next_half_open(s, cooldown)
        if due is None or now < due:
            return False, s, None
        return True, replace(s, state="half_open", trial_in_flight=True), "half_opened"
    if s.trial_in_flight:
        return False, s, None
    return True, replace(s, trial_in_flight=True), None


def trip(s: BreakerState, now: float) -> tuple[BreakerState, Transition]:
    """Open by hand (``breaker.trip``); the cooldown starts now, even if already open."""
    transition: Transition = None if s.state == "open" else "opened"
    return _open(s, now, s.failures), transition


def reset(s: BreakerState, now: float) -> tuple[BreakerState, Transition]:
    """Close by hand (``breaker.reset``, ``POST /api/v1/breakers/{key}/reset``)."""
    closed = BreakerState(key=s.key)
    return closed, (None if s.state == "closed" else "closed")


def next_half_open(s: BreakerState, cooldown: float) -> float | None:
    """When an open breaker lets its trial through; None unless open."""
    if s.state != "open" or s.opened_at is None:
        return None
    return s.opened_at + cooldown


def is_idle(s: BreakerState, now: float, window: float) -> bool:
    """Closed with no failure left in the window: the same as a breaker never seen, so it
    can be forgotten (its key, often one per workflow, leaves the metrics and the API)."""
    return s.state == "closed" and not s.trial_in_flight and not _in_window(s.failures, now,
                                                                           window)
