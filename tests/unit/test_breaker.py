"""The breaker state machine of SPEC §6, driven with an explicit clock."""

from __future__ import annotations

from responder.act.breaker import (
    STATE_VALUES,
    BreakerState,
    allow,
    next_half_open,
    record_failure,
    record_success,
    reset,
    trip,
)

THRESHOLD, WINDOW, COOLDOWN = 3, 900.0, 600.0


def fail(s: BreakerState, now: float) -> tuple[BreakerState, str | None]:
    return record_failure(s, now, THRESHOLD, WINDOW)


def opened_at(now: float) -> BreakerState:
    s = BreakerState("taskmaster/etl")
    for t in (now - 2, now - 1, now):
        s, _ = fail(s, t)
    assert s.state == "open"
    return s


def test_a_new_breaker_is_closed_and_allows_actions() -> None:
    s = BreakerState("taskmaster/etl")
    assert (s.state, s.failures, s.opened_at, s.trial_in_flight) == ("closed", (), None, False)
    assert allow(s, 0.0, COOLDOWN) == (True, s, None)


def test_breaker_opens_after_three_failures_in_window() -> None:
    s = BreakerState("taskmaster/etl")
    s, t1 = fail(s, 0.0)
    s, t2 = fail(s, 100.0)
    assert (s.state, t1, t2) == ("closed", None, None)
    s, t3 = fail(s, 899.0)
    assert (s.state, t3, s.opened_at) == ("open", "opened", 899.0)
    assert s.failures == (0.0, 100.0, 899.0)


def test_failures_older_than_the_window_slide_out_and_do_not_count() -> None:
    s = BreakerState("taskmaster/etl")
    for t in (0.0, 100.0, 900.0):     # the first is exactly one window old at 900
        s, transition = fail(s, t)
    assert (s.state, transition) == ("closed", None)
    assert s.failures == (100.0, 900.0)
    s, transition = fail(s, 950.0)
    assert (s.state, transition) == ("open", "opened")


def test_an_open_breaker_refuses_actions_until_the_cooldown_has_passed() -> None:
    s = opened_at(1000.0)
    assert allow(s, 1000.0 + COOLDOWN - 0.001, COOLDOWN) == (False, s, None)
    assert next_half_open(s, COOLDOWN) == 1000.0 + COOLDOWN


def test_after_the_cooldown_exactly_one_trial_is_allowed_in_half_open() -> None:
    s = opened_at(1000.0)
    ok, s, transition = allow(s, 1600.0, COOLDOWN)
    assert (ok, s.state, s.trial_in_flight, transition) == (True, "half_open", True, "half_opened")
    ok, s2, transition = allow(s, 1601.0, COOLDOWN)
    assert (ok, s2, transition) == (False, s, None)
    assert next_half_open(s, COOLDOWN) is None


def test_a_half_open_breaker_without_a_trial_lets_one_through() -> None:
    s = BreakerState("k", "half_open", (1.0,), 1.0, False)
    ok, s, transition = allow(s, 700.0, COOLDOWN)
    assert (ok, s.trial_in_flight, transition) == (True, True, None)
    assert allow(s, 701.0, COOLDOWN)[0] is False


def test_a_failure_in_half_open_reopens_with_a_fresh_cooldown() -> None:
    s = opened_at(1000.0)
    _, s, _ = allow(s, 1600.0, COOLDOWN)
    s, transition = fail(s, 1700.0)
    assert (s.state, transition, s.opened_at, s.trial_in_flight) == ("open", "opened", 1700.0,
                                                                      False)
    assert allow(s, 2299.0, COOLDOWN)[0] is False
    assert allow(s, 2300.0, COOLDOWN)[0] is True


def test_a_success_in_half_open_closes_and_forgets_failures() -> None:
    s = opened_at(1000.0)
    _, s, _ = allow(s, 1600.0, COOLDOWN)
    s, transition = record_success(s, 1650.0)
    assert transition == "closed"
    assert s == BreakerState("taskmaster/etl", "closed", (), None, False)


def test_a_success_does_not_close_an_open_breaker_nor_clear_a_closed_one() -> None:
    s = opened_at(1000.0)
    assert record_success(s, 1100.0) == (s, None)
    closed, _ = fail(BreakerState("k"), 5.0)
    assert record_success(closed, 6.0) == (closed, None)


def test_failures_while_open_are_remembered_but_keep_the_cooldown() -> None:
    s = opened_at(1000.0)
    s2, transition = fail(s, 1200.0)
    assert (transition, s2.state, s2.opened_at) == (None, "open", 1000.0)
    assert s2.failures[-1] == 1200.0


def test_trip_opens_by_hand_and_restarts_the_cooldown() -> None:
    s, transition = trip(BreakerState("k"), 50.0)
    assert (s.state, s.opened_at, transition) == ("open", 50.0, "opened")
    s, transition = trip(s, 80.0)
    assert (s.state, s.opened_at, transition) == ("open", 80.0, None)
    _, half, _ = allow(s, 680.0, COOLDOWN)
    s, transition = trip(half, 700.0)
    assert (s.state, transition, s.trial_in_flight) == ("open", "opened", False)


def test_reset_closes_by_hand_from_any_state() -> None:
    s = opened_at(1000.0)
    s, transition = reset(s, 1001.0)
    assert (s, transition) == (BreakerState("taskmaster/etl"), "closed")
    assert reset(s, 1002.0) == (s, None)


def test_state_values_match_the_exported_gauge() -> None:
    assert STATE_VALUES == {"closed": 0, "open": 1, "half_open": 2}
