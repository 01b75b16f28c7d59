"""The retry budget: Argo-style exponential backoff, capped, and when it is spent."""

from __future__ import annotations

import pytest

from responder.act.budget import Decision, RetryPolicy, backoff_delay, due_at, next_attempt

POLICY = RetryPolicy(limit=3, duration=30.0, factor=2.0, max_duration=300.0)


def test_backoff_doubles_from_the_duration_and_stops_at_the_cap() -> None:
    delays = [backoff_delay(n, 30.0, 2.0, 300.0) for n in range(1, 7)]
    assert delays == [30.0, 60.0, 120.0, 240.0, 300.0, 300.0]


def test_the_first_attempt_waits_the_duration_too() -> None:
    assert backoff_delay(1, 45.0, 3.0, 600.0) == 45.0


def test_a_huge_attempt_number_is_capped_without_overflow() -> None:
    assert backoff_delay(10_000, 30.0, 2.0, 300.0) == 300.0


def test_factor_one_is_a_constant_delay() -> None:
    assert [backoff_delay(n, 10.0, 1.0, 300.0) for n in (1, 2, 5)] == [10.0, 10.0, 10.0]


def test_attempt_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="attempt must be >= 1"):
        backoff_delay(0, 30.0, 2.0, 300.0)


def test_the_first_attempt_is_due_one_duration_after_the_failure() -> None:
    assert next_attempt(0, 1000.0, 1010.0, POLICY) == Decision("wait", 1, 1030.0)
    assert next_attempt(0, 1000.0, 1030.0, POLICY) == Decision("attempt", 1, 1030.0)


def test_later_attempts_count_their_backoff_from_the_failure_they_answer() -> None:
    assert due_at(2, 2000.0, POLICY) == 2060.0
    assert next_attempt(2, 5000.0, 5200.0, POLICY) == Decision("attempt", 3, 5120.0)


def test_the_budget_is_exhausted_after_limit_attempts() -> None:
    assert next_attempt(3, 0.0, 10_000.0, POLICY) == Decision("exhausted", 3)
