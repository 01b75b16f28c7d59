"""The running service's shared state: the current runtime, journal, metrics and clock.

Handlers and background workers reach everything through one ``Service`` object stored
under an ``AppKey``, never through module globals. A reload swaps ``runtime`` atomically
(all or nothing); readers take ``service.runtime`` once per unit of work, so a reload never
changes the rules under an alert being processed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from responder.analyze import Corrections
from responder.config.secrets import redactor_for
from responder.errors import ConfigErrors
from responder.journal import Event, Journal
from responder.load import Runtime, load_runtime
from responder.metrics import Metrics
from responder.redact import RedactingFilter, Redactor

log = logging.getLogger("responder")


@dataclass
class ReloadResult:
    ok: bool
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Service:
    def __init__(self, runtime: Runtime, journal: Journal, metrics: Metrics, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.runtime = runtime
        self.journal = journal
        self.metrics = metrics
        self.clock = clock
        self.config_path: Path = runtime.config.path
        # Every secret ever loaded: a message queued before a reload may still quote an
        # old one.
        self.redactor: Redactor = redactor_for(runtime.config)
        self.log_filter = RedactingFilter(self.redactor)
        self.paused = False
        self.work_available = asyncio.Event()
        self.attempts_changed = asyncio.Event()
        self.outbox_changed = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self.corrections = Corrections()  # operators' corrections, loaded in restore()
        self.webhooks_in_flight = 0
        self._no_webhooks = asyncio.Event()
        self._no_webhooks.set()
        metrics.config_reload_ok.set(1)
        metrics.config_reload_time.set(runtime.loaded_at)

    # -- webhooks first --------------------------------------------------------------
    # Alertmanager waits for the webhook's 200 (and retries, duplicating, when it waits
    # too long); the pipeline's work is already safe in the journal. So the pipeline
    # gives way while webhook requests are in flight, for a bounded time per step,
    # and an alert storm is acknowledged first and processed right after.
    def webhook_started(self) -> None:
        self.webhooks_in_flight += 1
        self._no_webhooks.clear()

    def webhook_finished(self) -> None:
        self.webhooks_in_flight -= 1
        if self.webhooks_in_flight <= 0:
            self.webhooks_in_flight = 0
            self._no_webhooks.set()

    async def give_way_to_webhooks(self, at_most: float) -> None:
        """Return when no webhook request is in flight, or after ``at_most`` seconds."""
        if self._no_webhooks.is_set():
            return
        try:
            async with asyncio.timeout(at_most):
                await self._no_webhooks.wait()
        except TimeoutError:
            pass

    async def restore(self) -> None:
        """Read what must survive restarts (the kill switch, corrections) from the journal."""
        await self.is_paused()
        for key, category, _text in await self.journal.corrections():
            self.corrections.add(key, category)

    async def is_paused(self) -> bool:
        """The kill switch as the journal has it now (another process may have set it)."""
        self.paused = bool(await self.journal.get_flag("paused"))
        self.metrics.paused.set(1 if self.paused else 0)
        return self.paused

    async def set_paused(self, paused: bool, who: str) -> None:
        await self.journal.set_flag("paused", paused, [Event(
            kind="pause" if paused else "resume", outcome="ok", detail={"by": who})])
        self.paused = paused
        self.metrics.paused.set(1 if paused else 0)
        if not paused:
            self.attempts_changed.set()
        log.warning("actions %s by %s", "paused" if paused else "resumed", who)

    async def reload(self) -> ReloadResult:
        """Reload the configuration as a transaction; the old runtime stays on failure."""
        async with self._reload_lock:
            try:
                runtime = await asyncio.to_thread(load_runtime, self.config_path)
            except ConfigErrors as exc:
                self.metrics.config_reload_ok.set(0)
                errors = [self.redactor.scrub(str(e)) for e in exc.errors]
                for line in errors:
                    log.error("reload failed: %s", line)
                return ReloadResult(False, errors)
            except Exception as exc:  # an unexpected loader bug must not kill the service
                self.metrics.config_reload_ok.set(0)
                log.exception("reload failed")
                return ReloadResult(False, [self.redactor.scrub(f"{self.config_path}: {exc}")])
            old = self.runtime.config
            warnings = []
            for name in ("host", "port", "state_path", "log_format", "log_level"):
                if getattr(old, name) != getattr(runtime.config, name):
                    warnings.append(f"{name} changed: takes effect after a restart")
            self.runtime = runtime
            self.redactor = self.redactor + redactor_for(runtime.config)
            self.log_filter.redactor = self.redactor
            self.metrics.config_reload_ok.set(1)
            self.metrics.config_reload_time.set(runtime.loaded_at)
            log.info("configuration reloaded: %d runbooks, %d patterns",
                     len(runtime.runbooks), len(runtime.patterns))
            for line in warnings:
                log.warning("reload: %s", line)
            self.work_available.set()
            return ReloadResult(True, [], warnings)
