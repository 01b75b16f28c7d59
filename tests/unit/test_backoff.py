"""Every retry rule of the service (``responder/backoff.py``), without an app.

To change a rule, change ``backoff.py`` and the assertion here that states it.
"""

from __future__ import annotations

import pytest

from responder.backoff import TRANSIENT_ACTION, Backoff, delivery

ATTEMPTS = Backoff(30.0, 2.0, cap=300.0, max_tries=3)   # a runbook's retry block


def test_backoff_doubles_from_the_duration_and_stops_at_the_cap() -> None:
    delays = [Backoff(30.0, 2.0, 300.0).delay(n) for n in range(1, 7)]
    assert delays == [30.0, 60.0, 120.0, 240.0, 300.0, 300.0]


def test_the_first_attempt_waits_the_duration_too() -> None:
    assert Backoff(45.0, 3.0, 600.0).delay(1) == 45.0


def test_a_huge_attempt_number_is_capped_without_overflow() -> None:
    assert Backoff(30.0, 2.0, 300.0).delay(10_000) == 300.0


def test_factor_one_is_a_constant_delay() -> None:
    assert [Backoff(10.0, 1.0, 300.0).delay(n) for n in (1, 2, 5)] == [10.0, 10.0, 10.0]


def test_attempt_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="attempt must be >= 1"):
        Backoff(30.0).delay(0)


def test_a_runbook_budget_lists_every_wait_and_is_spent_after_limit_tries() -> None:
    assert ATTEMPTS.delays() == (30.0, 60.0, 120.0)
    assert not ATTEMPTS.gives_up(2)
    assert ATTEMPTS.gives_up(3)


def test_a_transient_action_error_is_retried_quickly_six_times_in_all() -> None:
    assert [TRANSIENT_ACTION.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert TRANSIENT_ACTION.delay(20) == 60.0
    assert not TRANSIENT_ACTION.gives_up(5) and TRANSIENT_ACTION.gives_up(6)


def test_delivery_backoff_doubles_up_to_the_cap_and_retry_after_wins() -> None:
    policy = delivery(max_tries=10, first=1.0)
    assert [policy.delay(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert policy.delay(20) == 300.0
    assert policy.delay(10_000) == 300.0
    assert Backoff(5.0, 2.0, cap=12.0).delay(3) == 12.0
    assert policy.delay(7, retry_after=2.0) == 2.0


def test_jitter_only_ever_lengthens_a_wait_by_up_to_its_fraction() -> None:
    policy = delivery(max_tries=10, first=1.0)   # jitter 0.25
    assert policy.delay(3, random=lambda: 0.0) == 4.0
    assert policy.delay(3, random=lambda: 1.0) == 5.0
    assert policy.delay(3, random=lambda: 0.5, retry_after=7.0) == 7.0   # Retry-After is exact
    assert ATTEMPTS.delay(2, random=lambda: 1.0) == 60.0                 # attempts: no jitter


def test_no_cap_and_no_limit_mean_unbounded() -> None:
    assert Backoff(1.0, 10.0).delay(5) == 10_000.0
    assert not Backoff(1.0).gives_up(1_000_000)
