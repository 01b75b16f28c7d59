"""The gate: every branch of "may this attempt run now?", with the clock as a number."""

from __future__ import annotations

from responder.act.gate import (
    ESCALATE,
    UNREADABLE,
    Attempt,
    Exhausted,
    Facts,
    Hold,
    Need,
    Recovered,
    Refuse,
    Run,
    Wait,
    gate,
)

NOW = 1_000.0
FIRST = Attempt("argo.retry", 1, breaker_key="ns/etl", retry_duration=30.0, limit=3,
                rate_limited=True)
SECOND = Attempt("argo.retry", 2, breaker_key="ns/etl", retry_duration=30.0, limit=3,
                 rate_limited=True)
SPENT = Attempt(ESCALATE, 4, breaker_key="ns/etl", limit=3)


def test_a_first_attempt_reads_breaker_then_rate_limit_and_runs() -> None:
    facts = Facts(NOW)
    assert gate(FIRST, facts) == Need("breaker_allows")
    facts = facts.learn(breaker_allows=True)
    assert gate(FIRST, facts) == Need("rate_wait")
    assert gate(FIRST, facts.learn(rate_wait=0.0)) == Run()


def test_a_paused_attempt_is_held_before_anything_is_read() -> None:
    assert gate(FIRST, Facts(NOW, paused=True)) == Hold()


def test_a_pause_does_not_hold_an_escalation() -> None:
    assert gate(SPENT, Facts(NOW, paused=True)) == Need("phase")


def test_a_breaker_action_runs_even_when_its_breaker_is_open_but_not_when_paused() -> None:
    trip = Attempt("breaker.trip", 1, breaker_key="ns/etl")
    assert gate(trip, Facts(NOW, breaker_allows=False)) == Run()
    assert gate(trip, Facts(NOW, paused=True)) == Hold()


def test_an_open_breaker_refuses_and_escalates() -> None:
    verdict = gate(FIRST, Facts(NOW, breaker_allows=False))
    assert verdict == Refuse("breaker_open", "breaker ns/etl is open")
    assert isinstance(verdict, Refuse) and verdict.escalate


def test_on_open_actions_are_not_under_the_breaker_they_serve() -> None:
    suspend = Attempt("argo.suspend_cron", 1, breaker_key="ns/etl", breaker_action=True)
    assert gate(suspend, Facts(NOW)) == Run()


def test_a_later_attempt_runs_only_when_the_workflow_still_failed() -> None:
    facts = Facts(NOW, breaker_allows=True)
    assert gate(SECOND, facts) == Need("phase")
    facts = facts.learn(phase="Failed")
    assert gate(SECOND, facts) == Need("failure_opened")
    facts = facts.learn(failure_opened=False)
    assert gate(SECOND, facts) == Need("rate_wait")
    assert gate(SECOND, facts.learn(rate_wait=0.0)) == Run()


def test_a_workflow_that_succeeded_meanwhile_is_a_recovery() -> None:
    assert gate(SECOND, Facts(NOW, breaker_allows=True, phase="Succeeded")) == \
        Recovered("Succeeded")


def test_a_workflow_still_running_is_looked_at_again_after_the_retry_duration() -> None:
    assert gate(SECOND, Facts(NOW, breaker_allows=True, phase="Running")) == \
        Wait(NOW + 30.0, "waiting", "workflow is Running")


def test_an_unreadable_workflow_counts_as_still_failing() -> None:
    facts = Facts(NOW, breaker_allows=True, phase=UNREADABLE, failure_opened=False,
                  rate_wait=0.0)
    assert gate(SECOND, facts) == Run()


def test_a_persisting_failure_that_opens_the_breaker_refuses_the_attempt() -> None:
    facts = Facts(NOW, breaker_allows=True, phase="Error", failure_opened=True)
    assert gate(SECOND, facts) == Refuse("breaker_open", "breaker ns/etl opened")


def test_a_spent_budget_still_failing_is_exhausted_and_escalates() -> None:
    facts = Facts(NOW, phase="Failed", failure_opened=False)
    verdict = gate(SPENT, facts)
    assert verdict == Exhausted(3)
    assert isinstance(verdict, Exhausted)
    assert verdict.reason == "retry budget of 3 spent, still failing"


def test_a_spent_budget_whose_workflow_recovered_does_not_escalate() -> None:
    assert gate(SPENT, Facts(NOW, phase="Succeeded")) == Recovered("Succeeded")


def test_a_rate_limited_target_waits_for_its_next_slot() -> None:
    facts = Facts(NOW, breaker_allows=True, rate_wait=12.5)
    assert gate(FIRST, facts) == Wait(NOW + 12.5, "rate_limited", "retry in 12.5s")


def test_an_attempt_without_breaker_or_rate_limit_runs_at_once() -> None:
    assert gate(Attempt("argo.stop", 1), Facts(NOW)) == Run()
