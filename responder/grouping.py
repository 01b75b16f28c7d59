"""One message per Alertmanager group: the bucketing SPEC §8 asks for, written once.

A runbook's ``notify`` (and ``on_exhausted``) entry sends one message per group for the
alerts it handled, or one per alert when the entry says ``per_alert``. ``decide`` buckets
its notifications and escalations with ``bucket``; the escalations the scheduler decides
later go through it too.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from responder.model import Alert

T = TypeVar("T")


class NotifyTarget(Protocol):
    @property
    def channel(self) -> str: ...

    @property
    def template(self) -> str | None: ...

    @property
    def fallback(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Bucket(Generic[T]):
    """One message: a runbook's entry for a channel, for the members it groups."""

    runbook: str
    target: NotifyTarget
    scope: Hashable | None           # the member's key when the runbook asks per alert
    members: list[T] = field(default_factory=list)

    @property
    def channel(self) -> str:
        return self.target.channel


@dataclass(frozen=True, slots=True)
class Target:
    """A ``NotifyTarget`` read back from the journal (an attempt's ``on_exhausted``)."""

    channel: str
    template: str | None = None
    fallback: str | None = None


def bucket(entries: Iterable[tuple[T, str, NotifyTarget, bool]],
           key: Callable[[T], Hashable]) -> list[Bucket[T]]:
    """One message per runbook and channel, or per member when its entry says per alert.

    ``entries`` are (member, runbook, target, per_alert); the order of first appearance
    is kept. Used for notifications and escalations alike (SPEC §8: one message per
    Alertmanager group, not per alert, unless the runbook asks)."""
    out: dict[tuple[str, str, Hashable | None], Bucket[T]] = {}
    for member, runbook, target, per_alert in entries:
        scope = key(member) if per_alert else None
        k = (runbook, target.channel, scope)
        if k not in out:
            out[k] = Bucket(runbook, target, scope)
        out[k].members.append(member)
    return list(out.values())


def event_of(alerts: Iterable[Alert]) -> str:
    """A message about only resolved alerts is a resolution; anything firing is firing."""
    return "resolved" if all(a.status == "resolved" for a in alerts) else "firing"
