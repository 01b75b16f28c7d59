"""Rate limits of SPEC §6, pure and with the clock passed in.

``SlidingWindow`` caps actions per target (at most ``limit`` in any ``window`` seconds), so
a flapping alert cannot retry the same workflow in a tight loop even when budgets and
breakers allow it. ``TokenBucket`` smooths notifications per channel (``rate`` per second,
bursts up to ``burst``). Both answer ``try_acquire(key, now) -> (ok, retry_after)`` and keep
memory bounded: keys with nothing left to remember are forgotten, and past ``max_keys``
the least recently used key goes first.
"""

from __future__ import annotations

from collections import OrderedDict, deque


class SlidingWindow:
    """At most ``limit`` acquisitions per key in any ``window`` seconds."""

    def __init__(self, limit: int, window: float, *, max_keys: int = 10_000) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._events: OrderedDict[str, deque[float]] = OrderedDict()

    def try_acquire(self, key: str, now: float) -> tuple[bool, float]:
        events = self._events.get(key)
        if events is None:
            events = self._events[key] = deque()
        self._events.move_to_end(key)
        # Elapsed time, not "t <= now - window": the refusal's retry_after stays > 0 in floats.
        while events and now - events[0] >= self.window:
            events.popleft()
        if len(events) >= self.limit:
            return False, self.window - (now - events[0])
        events.append(now)
        self._trim(now)
        return True, 0.0

    def _trim(self, now: float) -> None:
        if len(self._events) <= self.max_keys:
            return
        for key in [k for k, ev in self._events.items() if not ev or now - ev[-1] >= self.window]:
            del self._events[key]
        while len(self._events) > self.max_keys:
            self._events.popitem(last=False)

    def __len__(self) -> int:
        return len(self._events)


class TokenBucket:
    """``rate`` tokens per second per key, holding at most ``burst``; one per acquisition."""

    def __init__(self, rate: float, burst: int, *, max_keys: int = 10_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _tokens(self, key: str, now: float) -> float:
        tokens, last = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + max(0.0, now - last) * self.rate)

    def try_acquire(self, key: str, now: float) -> tuple[bool, float]:
        tokens = self._tokens(key, now)
        if tokens < 1.0 - 1e-9:   # tolerate float error after waiting retry_after
            self._buckets[key] = (tokens, now)
            self._buckets.move_to_end(key)
            return False, (1.0 - tokens) / self.rate
        self._buckets[key] = (max(0.0, tokens - 1.0), now)
        self._buckets.move_to_end(key)
        self._trim(now)
        return True, 0.0

    def _trim(self, now: float) -> None:
        if len(self._buckets) <= self.max_keys:
            return
        # A full bucket is the same as no bucket: forgetting it changes nothing.
        for key in [k for k in self._buckets if self._tokens(k, now) >= self.burst]:
            del self._buckets[key]
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)
