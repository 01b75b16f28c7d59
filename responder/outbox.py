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
from responder.journal import Event, JournalUnavailable, OutboxItem, OutboxMessage
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
            return [dataclasses.replace(base, outcome="failed",
                                        detail={"error": f"unknown channel {target.channel}"})]
        try:
            message = runtime.templates.render(channel, context, target.template)
        except RenderError as exc:
            self.service.metrics.notification_failed.labels(target.channel).inc()
            return [dataclasses.replace(base, outcome="render_failed", detail={"error": str(exc)})]
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
            collect.append(OutboxMessage(
                channel=target.channel, dedup=dedup, message=stored, fallback=target.fallback,
                receipt_id=receipt_id, event=dataclasses.replace(
                    base, detail={"event": context.event, "dedup": dedup})))
            return []
        queued = await self.service.journal.enqueue(
            channel=target.channel, dedup=dedup, message=stored, fallback=target.fallback,
            receipt_id=receipt_id)
        if queued:
            self.service.outbox_changed.set()
        return [dataclasses.replace(base, outcome="queued" if queued else "duplicate",
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
                for item in due:
                    await self.deliver(item)
                next_at = await service.journal.next_outbox_due()
            except JournalUnavailable as exc:
                log.error("journal unavailable: %s", exc)
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

    async def deliver(self, item: OutboxItem) -> None:
        service = self.service
        runtime = service.runtime
        sender = self._sender(runtime, item.channel)
        journal = service.journal
        base = Event(kind="notification", receipt_id=item.receipt_id, action=item.channel)
        if not await journal.claim_message(item.id):
            return   # another process is sending it, or it was sent meanwhile
        if sender is None:
            await journal.update_outbox(item.id, state="failed", tries=item.tries,
                                        error="channel no longer configured", events=[
                                            dataclasses.replace(base, outcome="failed", detail={
                                                "error": "channel no longer configured"})])
            service.metrics.notification_failed.labels(item.channel).inc()
            return
        bucket = self._bucket_for[item.channel]
        ok, wait = bucket.try_acquire(item.channel, service.clock())
        if not ok:
            await journal.update_outbox(item.id, state="pending", tries=item.tries,
                                        next_at=service.clock() + wait, error=item.last_error)
            return
        message = _message(item)
        tries = item.tries + 1
        try:
            await sender.send(message)
        except TemporaryError as exc:
            spec = runtime.config.channels[item.channel]   # it has a sender, so it exists
            policy = delivery(spec.max_tries, spec.backoff)
            if not policy.gives_up(tries):
                delay = policy.delay(tries, retry_after=exc.delay, random=random.random)
                await journal.update_outbox(
                    item.id, state="pending", tries=tries, next_at=service.clock() + delay,
                    error=str(exc), events=[dataclasses.replace(
                        base, outcome="retrying", detail={"error": str(exc), "try": tries,
                                                          "retry_in": round(delay, 3)})])
                return
            await self._failed(item, tries, f"gave up after {tries} tries: {exc}")
            return
        except PermanentError as exc:
            await self._failed(item, tries, str(exc))
            return
        except Exception as exc:  # a sender bug must not stop deliveries
            log.exception("sender for %s failed unexpectedly", item.channel)
            await self._failed(item, tries, f"unexpected error: {type(exc).__name__}")
            return
        service.metrics.notifications_sent.labels(item.channel).inc()
        await journal.update_outbox(item.id, state="sent", tries=tries, error=None, events=[
            dataclasses.replace(base, outcome="sent", detail={"try": tries})])

    async def _failed(self, item: OutboxItem, tries: int, error: str) -> None:
        service = self.service
        service.metrics.notification_failed.labels(item.channel).inc()
        events = [Event(kind="notification", receipt_id=item.receipt_id, action=item.channel,
                        outcome="failed", detail={"error": error, "tries": tries,
                                                  "fallback": item.fallback})]
        await service.journal.update_outbox(item.id, state="failed", tries=tries, error=error,
                                            events=events)
        log.warning("notification to %s failed permanently: %s", item.channel, error)
        if item.fallback and item.fallback != item.channel:
            await service.journal.add_events(await self._fall_back(item))

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
            return [dataclasses.replace(base, outcome="render_failed", detail={
                "error": f"no message rendered for fallback channel {item.fallback}"})]
        queued = await service.journal.enqueue(
            channel=item.fallback, dedup=dedup, fallback=None, receipt_id=item.receipt_id,
            message={"body": rendered["body"], "type": rendered["type"], "template": None})
        if queued:
            service.outbox_changed.set()
        return [dataclasses.replace(base, outcome="queued" if queued else "duplicate",
                                    detail={"event": rendered.get("event"), "dedup": dedup})]


def _message(item: OutboxItem) -> Message:
    return Message(channel=item.channel, type=item.message["type"], body=item.message["body"])
