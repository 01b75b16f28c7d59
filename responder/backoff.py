"""Every retry rule of the service, in one place: how long a retry waits, when to give up.

Three things retry, and all three use ``Backoff``:

- a runbook's **attempts** (``retry: {limit, backoff: {duration, factor, max_duration}}``):
  attempt ``n`` waits ``duration * factor**(n-1)``, capped, the first one too (SPEC §5,
  as Argo's own ``retryStrategy``); no jitter, an operator reads the schedule in
  ``responder explain``;
- a **transient action error** (the Argo Server answered 5xx, the network dropped):
  ``TRANSIENT_ACTION``, short and jittered, since one outage fails many attempts at once;
- a **notification delivery** (5xx, 429, network): ``delivery(max_tries, first)``,
  doubling to 5 minutes, jittered for the same reason; a ``Retry-After`` wins.

Jitter only ever lengthens a wait, by up to ``jitter`` of it: a retry never comes sooner
than the plain schedule says, and clients that failed together spread out. Pure
arithmetic: the randomness is passed in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class RetrySettings(Protocol):
    """A runbook's ``retry`` block (``responder.config.runbooks.RetrySpec``)."""

    @property
    def limit(self) -> int: ...

    @property
    def duration(self) -> float: ...

    @property
    def factor(self) -> float: ...

    @property
    def max_duration(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Backoff:
    duration: float             # the first wait (seconds)
    factor: float = 2.0         # each further wait is this many times the one before
    cap: float = 0.0            # no wait is longer (0: no cap)
    max_tries: int = 0          # tries in all before giving up (0: never give up)
    jitter: float = 0.0         # 0..1: a wait is lengthened by up to this fraction of it

    @classmethod
    def of(cls, retry: RetrySettings) -> Backoff:
        """A runbook's attempt schedule."""
        return cls(float(retry.duration), float(retry.factor), float(retry.max_duration),
                   int(retry.limit))

    def delay(self, n: int, *, retry_after: float | None = None,
              random: Callable[[], float] | None = None) -> float:
        """Seconds try ``n`` (1-based) waits; an upstream's ``Retry-After`` wins."""
        if n < 1:
            raise ValueError(f"attempt must be >= 1, got {n}")
        if retry_after is not None:
            return max(0.0, retry_after)
        cap = self.cap if self.cap > 0 else float("inf")
        delay = float(self.duration)
        # Multiply step by step and stop at the cap, so huge try numbers cannot overflow.
        for _ in range(n - 1):
            if delay >= cap:
                break
            delay *= self.factor
        delay = min(delay, cap)
        if self.jitter and random is not None:
            delay += delay * self.jitter * random()
        return delay

    def gives_up(self, tries: int) -> bool:
        """Whether ``tries`` tries made are all there may be."""
        return 0 < self.max_tries <= tries

    def delays(self) -> tuple[float, ...]:
        """The plain wait of every try (needs ``max_tries``)."""
        return tuple(self.delay(n) for n in range(1, self.max_tries + 1))


#: An action the backend could not reach: 0.5s doubling to 1 minute, 6 tries in all.
TRANSIENT_ACTION = Backoff(0.5, 2.0, cap=60.0, max_tries=6, jitter=0.25)


def delivery(max_tries: int, first: float) -> Backoff:
    """A channel's delivery retries (``retry: {max_tries, backoff}``): doubling to 5m."""
    return Backoff(first, 2.0, cap=300.0, max_tries=max_tries, jitter=0.25)
