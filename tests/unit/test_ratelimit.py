"""Rate limits: sliding window per action target, token bucket per channel."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from responder.act.ratelimit import SlidingWindow, TokenBucket


def test_sliding_window_allows_n_then_says_when_the_oldest_leaves() -> None:
    limiter = SlidingWindow(limit=2, window=60.0)
    assert limiter.try_acquire("taskmaster/etl", 0.0) == (True, 0.0)
    assert limiter.try_acquire("taskmaster/etl", 10.0) == (True, 0.0)
    assert limiter.try_acquire("taskmaster/etl", 20.0) == (False, 40.0)
    assert limiter.try_acquire("other/wf", 20.0) == (True, 0.0)
    assert limiter.try_acquire("taskmaster/etl", 60.0) == (True, 0.0)


@settings(max_examples=200, deadline=None)
@given(limit=st.integers(1, 5), window=st.floats(1.0, 100.0),
       gaps=st.lists(st.floats(0.0, 50.0), min_size=1, max_size=60),
       keys=st.lists(st.sampled_from("ab"), min_size=60, max_size=60))
def test_sliding_window_never_allows_more_than_n_in_any_window(
        limit: int, window: float, gaps: list[float], keys: list[str]) -> None:
    limiter = SlidingWindow(limit=limit, window=window)
    now = 0.0
    granted: dict[str, list[float]] = {"a": [], "b": []}
    for gap, key in zip(gaps, keys, strict=False):
        now += gap
        ok, retry_after = limiter.try_acquire(key, now)
        if ok:
            granted[key].append(now)
        else:
            # refused only when full, and told exactly when the oldest grant leaves
            inside = [t for t in granted[key] if now - t < window]
            assert len(inside) == limit
            assert retry_after == pytest.approx(window - (now - min(inside)))
            assert retry_after > 0
    for times in granted.values():
        for start in times:
            inside = [t for t in times if t <= start and start - t < window]
            assert len(inside) <= limit


def test_sliding_window_forgets_idle_keys_past_max_keys() -> None:
    limiter = SlidingWindow(limit=1, window=10.0, max_keys=3)
    for i in range(100):
        assert limiter.try_acquire(f"k{i}", float(i * 20))[0]
    assert len(limiter) <= 3


def test_sliding_window_drops_the_least_recently_used_when_every_key_is_busy() -> None:
    limiter = SlidingWindow(limit=1, window=1000.0, max_keys=2)
    for key in ("a", "b", "c"):
        limiter.try_acquire(key, 0.0)
    assert len(limiter) == 2
    assert limiter.try_acquire("a", 1.0)[0]     # "a" was evicted: memory over precision


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=0.5, burst=3)
    assert [bucket.try_acquire("oncall", 0.0)[0] for _ in range(3)] == [True] * 3
    ok, retry_after = bucket.try_acquire("oncall", 0.0)
    assert (ok, retry_after) == (False, 2.0)
    assert bucket.try_acquire("oncall", 2.0) == (True, 0.0)
    assert bucket.try_acquire("pager", 2.0) == (True, 0.0)


@settings(max_examples=200, deadline=None)
@given(rate=st.floats(0.1, 10.0), burst=st.integers(1, 5),
       gaps=st.lists(st.floats(0.0, 3.0), min_size=1, max_size=80))
def test_token_bucket_never_exceeds_burst_plus_rate_times_elapsed(
        rate: float, burst: int, gaps: list[float]) -> None:
    bucket = TokenBucket(rate=rate, burst=burst)
    now, granted = 0.0, []
    for gap in gaps:
        now += gap
        ok, retry_after = bucket.try_acquire("c", now)
        if ok:
            granted.append(now)
        else:
            assert retry_after > 0
    for i, start in enumerate(granted):
        for j in range(i, len(granted)):
            assert j - i + 1 <= burst + rate * (granted[j] - start) + 1e-6


def test_token_bucket_forgets_full_buckets_past_max_keys() -> None:
    bucket = TokenBucket(rate=1.0, burst=1, max_keys=2)
    for i in range(50):
        bucket.try_acquire(f"c{i}", float(i * 10))
    assert len(bucket) <= 2


def test_limits_refuse_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        SlidingWindow(limit=0, window=1.0)
    with pytest.raises(ValueError):
        TokenBucket(rate=0.0, burst=1)
