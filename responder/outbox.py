"""Notifications through the journal's outbox: render now, deliver until delivered.

``Notifier.notify`` renders the message and writes it to the outbox in one step (the
dedup key makes a re-processed delivery enqueue nothing new). ``Notifier.run`` delivers
due rows: a per-channel token bucket paces them, temporary failures (5xx, 429 with its
``Retry-After``, network errors) come back later with backoff, permanent ones are counted
and handed to the runbook's fallback channel, re-rendered for that channel's type.
A stored message is what is sent (body and type) and, when the target has a fallback
channel, the message rendered for that channel too: a fallback or a restart needs nothing
from memory, and the journal does not keep each message's whole rendering context.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from responder.act.ratelimit import TokenBucket
from responder.backoff import delivery
from responder.errors import PermanentError, TemporaryError
from responder.journal import (
    Event,
    JournalUnavailable,
    OutboxItem,
    OutboxMessage,
    OutboxUpdate,
)
from responder.journal.fullness import failure_level
from responder.load import Runtime
from responder.model import Alert, AlertGroup
from responder.notify.base import Sender
from responder.notify.render import Message, NotificationContext, RenderError, build_context
from responder.notify.senders import build_senders
from responder.service import Service

log = logging.getLogger("responder.notify")


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """Where one notification goes (a runbook's ``notify`` or ``on_exhausted`` entry)."""

    channel: str
    template: str | None = None
    fallback: str | None = None


class Notifier:
    # Messages loaded per pass. A stored message carries its whole rendering context, and
    # loading runs on the event loop: small passes keep webhook requests from waiting.
    BATCH = 20

    def __init__(self, service: Service, session: aiohttp.ClientSession) -> None:
        self.service = service
        self.session = session
        self._senders: dict[str, Sender] = {}
        self._senders_for: object = None
        self._bucket_for: dict[str, TokenBucket] = {}

    # -- enqueue -----------------------------------------------------------------------
    async def notify(
        self, runtime: Runtime, *, group: AlertGroup, alerts: Sequence[Alert],
        analysis: Mapping[str, Any] | None, actions: Sequence[Mapping[str, Any]],
        runbook: Mapping[str, Any], target: Target, event: str, dedup: str,
        receipt_id: int | None, collect: list[OutboxMessage] | None = None,
    ) -> list[Event]:
        """Render and queue one message. With ``collect`` the rendered message is added to
        it instead, for the caller to queue in its own transaction (the pipeline does,
        with the delivery's ``finish_delivery``)."""
        config = runtime.config
        context = build_context(
            group, alerts=list(alerts), analysis=analysis, actions=list(actions),
            runbook=runbook, argo_ui_url=config.argo.ui_url if config.argo else None,
            dashboard_url=config.dashboard_url, event=event)
        return await self._enqueue(runtime, target, context, dedup, receipt_id, collect)

    async def _enqueue(self, runtime: Runtime, target: Target, context: NotificationContext,
                       dedup: str, receipt_id: int | None,
                       collect: list[OutboxMessage] | None = None) -> list[Event]:
        channel = runtime.config.channels.get(target.channel)
        base = Event(kind="notification", receipt_id=receipt_id, action=target.channel,
                     runbook=str(context.runbook.get("name", "")) or None)
        if channel is None:
            return [base.but(outcome="failed",
                             detail={"error": f"unknown channel {target.channel}"})]
        try:
            message = runtime.templates.render(channel, context, target.template)
        except RenderError as exc:
            self.service.metrics.notification_failed.labels(target.channel).inc()
            log.warning("notification to %s cannot be rendered: %s", target.channel, exc)
            return [base.but(outcome="render_failed", detail={"error": str(exc)})]
        stored: dict[str, Any] = {"body": message.body, "type": message.type,
                                  "template": target.template}
        fallback = runtime.config.channels.get(target.fallback) if target.fallback else None
        if fallback is not None and target.fallback != target.channel:
            try:
                other = runtime.templates.render(fallback, context, None)
                stored["fallback"] = {"body": other.body, "type": other.type,
                                      "event": context.event,
                                      "runbook": str(context.runbook.get("name", "")) or None}
            except RenderError as exc:
                log.warning("fallback %s of %s cannot be rendered: %s", target.fallback,
                            target.channel, exc)
        if collect is not None:
            # A message to a ``log`` channel (in process, never blocking) is queued claimed:
            # the caller sends it right after its commit (``send_claimed``).
            collect.append(OutboxMessage(
                channel=target.channel, dedup=dedup, message=stored, fallback=target.fallback,
                receipt_id=receipt_id, event=base.but(
                    detail={"event": context.event, "dedup": dedup}),
                claim=channel.type == "log"))
            return []
        queued = await self.service.journal.enqueue(
            channel=target.channel, dedup=dedup, message=stored, fallback=target.fallback,
            receipt_id=receipt_id)
        if queued:
            self.service.outbox_changed.set()
        return [base.but(outcome="queued" if queued else "duplicate",
                         detail={"event": context.event, "dedup": dedup})]

    # -- deliver -----------------------------------------------------------------------
    def _sender(self, runtime: Runtime, channel: str) -> Sender | None:
        if self._senders_for is not runtime.config.channels:
            self._senders = build_senders(runtime.config.channels, self.session)
            self._senders_for = runtime.config.channels
            self._bucket_for = {
                name: TokenBucket(rate=spec.rate, burst=spec.burst)
                for name, spec in runtime.config.channels.items()}
        return self._senders.get(channel)

    async def run(self) -> None:
        service = self.service
        while True:
            service.outbox_changed.clear()
            try:
                due = await service.journal.due_outbox(service.clock(), limit=self.BATCH)
                await self.deliver_many(due)
                next_at = await service.journal.next_outbox_due()
            except JournalUnavailable as exc:
                log.log(failure_level(exc), "journal unavailable: %s", exc)
                await asyncio.sleep(1.0)
                continue
            if len(due) == self.BATCH:
                continue
            timeout = None if next_at is None else max(0.0, next_at - service.clock())
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that races with the event, and then shutdown waits for ever.
            try:
                async with asyncio.timeout(timeout):
                    await service.outbox_changed.wait()
            except TimeoutError:
                pass

    async def deliver_many(self, items: Sequence[OutboxItem]) -> None:
        """Deliver due messages in order. Messages to ``log`` channels (in process, never
        blocking) are claimed, sent and recorded together, one transaction each way; a
        message to any other channel is claimed just before it is sent and its try
        recorded right after, so a slow upstream never holds a claim on messages it is
        not sending yet."""
        runtime = self.service.runtime
        local: list[OutboxItem] = []
        for item in items:
            spec = runtime.config.channels.get(item.channel)
            if spec is not None and spec.type == "log":
                local.append(item)
                continue
            await self._deliver_local(local)
            local = []
            await self.deliver(item)
        await self._deliver_local(local)

    async def _deliver_local(self, items: Sequence[OutboxItem]) -> None:
        if not items:
            return
        claimed = set(await self.service.journal.claim_messages([i.id for i in items]))
        await self._send_all([i for i in items if i.id in claimed])

    async def send_claimed(self, items: Sequence[OutboxItem]) -> None:
        """Send messages queued already claimed by this process (``OutboxMessage.claim``).
        One its channel's token bucket holds back goes back to pending, for ``run`` to
        send when it is due."""
        if any(u.state == "pending" for u in await self._send_all(items)):
            self.service.outbox_changed.set()

    async def _send_all(self, items: Sequence[OutboxItem]) -> list[OutboxUpdate]:
        """Send claimed messages in order and record their tries in one transaction; the
        event loop gets its turns between them (``Turns``), as between pipeline steps."""
        updates = []
        for item in items:
            await self.service.turns.take()
            updates.append(await self._try(item))
        if updates:
            await self._record(items, updates)
        return updates

    async def deliver(self, item: OutboxItem) -> None:
        if not await self.service.journal.claim_message(item.id):
            return   # another process is sending it, or it was sent meanwhile
        await self._record([item], [await self._try(item)])

    async def _try(self, item: OutboxItem) -> OutboxUpdate:
        """Send one claimed message; what to record of the try."""
        service = self.service
        runtime = service.runtime
        sender = self._sender(runtime, item.channel)
        base = Event(kind="notification", receipt_id=item.receipt_id, action=item.channel)
        if sender is None:
            service.metrics.notification_failed.labels(item.channel).inc()
            return OutboxUpdate(item.id, "failed", item.tries,
                                error="channel no longer configured", events=(
                                    base.but(outcome="failed", detail={
                                        "error": "channel no longer configured"}),))
        bucket = self._bucket_for[item.channel]
        ok, wait = bucket.try_acquire(item.channel, service.clock())
        if not ok:
            return OutboxUpdate(item.id, "pending", item.tries, next_at=service.clock() + wait,
                                error=item.last_error)
        message = _message(item)
        tries = item.tries + 1
        try:
            await sender.send(message)
        except TemporaryError as exc:
            spec = runtime.config.channels[item.channel]   # it has a sender, so it exists
            policy = delivery(spec.max_tries, spec.backoff)
            if not policy.gives_up(tries):
                delay = policy.delay(tries, retry_after=exc.delay, random=random.random)
                return OutboxUpdate(
                    item.id, "pending", tries, next_at=service.clock() + delay,
                    error=str(exc), events=(base.but(
                        outcome="retrying", detail={"error": str(exc), "try": tries,
                                                    "retry_in": round(delay, 3)}),))
            return self._failed(item, tries, f"gave up after {tries} tries: {exc}")
        except PermanentError as exc:
            return self._failed(item, tries, str(exc))
        except Exception as exc:  # a sender bug must not stop deliveries
            log.exception("sender for %s failed unexpectedly", item.channel)
            return self._failed(item, tries, f"unexpected error: {type(exc).__name__}")
        service.metrics.notifications_sent.labels(item.channel).inc()
        return OutboxUpdate(item.id, "sent", tries, events=(
            base.but(outcome="sent", detail={"try": tries}),))

    def _failed(self, item: OutboxItem, tries: int, error: str) -> OutboxUpdate:
        self.service.metrics.notification_failed.labels(item.channel).inc()
        log.warning("notification to %s failed permanently: %s", item.channel, error)
        return OutboxUpdate(item.id, "failed", tries, error=error, events=(Event(
            kind="notification", receipt_id=item.receipt_id, action=item.channel,
            outcome="failed", detail={"error": error, "tries": tries,
                                      "fallback": item.fallback}),))

    async def _record(self, items: Sequence[OutboxItem],
                      updates: Sequence[OutboxUpdate]) -> None:
        """Record the tries in one transaction, then queue the fallbacks of what failed
        for good (a message to a channel that is no longer configured has none)."""
        journal = self.service.journal
        await journal.update_outbox_many(updates)
        for item, update in zip(items, updates, strict=True):
            if (update.state == "failed" and update.tries > item.tries and item.fallback
                    and item.fallback != item.channel):
                await journal.add_events(await self._fall_back(item))

    async def _fall_back(self, item: OutboxItem) -> list[Event]:
        """Queue the message rendered for the fallback channel when it was queued."""
        service = self.service
        assert item.fallback is not None
        dedup = f"{item.dedup}:fallback:{item.fallback}"
        if "context" in item.message:   # queued by schema version 1: render it now
            return await self._enqueue(service.runtime, Target(item.fallback),
                                       NotificationContext(**item.message["context"]), dedup,
                                       item.receipt_id)
        rendered = item.message.get("fallback")
        base = Event(kind="notification", receipt_id=item.receipt_id, action=item.fallback,
                     runbook=rendered.get("runbook") if rendered else None)
        if rendered is None:
            return [base.but(outcome="render_failed", detail={
                "error": f"no message rendered for fallback channel {item.fallback}"})]
        queued = await service.journal.enqueue(
            channel=item.fallback, dedup=dedup, fallback=None, receipt_id=item.receipt_id,
            message={"body": rendered["body"], "type": rendered["type"], "template": None})
        if queued:
            service.outbox_changed.set()
        return [base.but(outcome="queued" if queued else "duplicate",
                         detail={"event": rendered.get("event"), "dedup": dedup})]


def _message(item: OutboxItem) -> Message:
    return Message(channel=item.channel, type=item.message["type"], body=item.message["body"])
