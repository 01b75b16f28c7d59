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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from responder.access import FailedLogins
from responder.act import pauses
from responder.analyze import Corrections
from responder.config.secrets import redactor_for
from responder.errors import ConfigErrors
from responder.journal import Event, Journal, Pause
from responder.load import Runtime, load_runtime, template_problems
from responder.metrics import Metrics
from responder.redact import RedactingFilter, Redactor
from responder.turns import Turns

log = logging.getLogger("responder")


@dataclass
class ReloadResult:
    ok: bool
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Service:
    # Seconds a decision may use the pauses read before (a pause made here is seen at once,
    # and the scheduler checks again before anything runs).
    PAUSES_FRESH = 0.25
    # Seconds between re-reads of the operators' corrections: another replica's correction
    # applies here this long after it was made, at the latest.
    CORRECTIONS_FRESH = 2.0

    def __init__(self, runtime: Runtime, journal: Journal, metrics: Metrics, *,
                 clock: Callable[[], float] = time.time, turns: Turns | None = None) -> None:
        self.runtime = runtime
        self.journal = journal
        self.metrics = metrics
        self.clock = clock
        self.config_path: Path = runtime.config.path
        self._started_with = runtime.config   # what keys that take effect at start are now
        # Every secret ever loaded: a message queued before a reload may still quote an
        # old one.
        self.redactor: Redactor = redactor_for(runtime.config)
        self.log_filter = RedactingFilter(self.redactor)
        self.pauses: list[Pause] = []
        self.last_reload: tuple[float, ReloadResult] | None = None   # when, and how it went
        self._pauses_read_at = 0.0
        self._corrections_read_at = 0.0
        self.work_available = asyncio.Event()
        self.attempts_changed = asyncio.Event()
        self.outbox_changed = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self.corrections = Corrections()  # operators' corrections, loaded in restore()
        self.webhooks_in_flight = 0
        self._no_webhooks = asyncio.Event()
        self._no_webhooks.set()
        self.turns = turns if turns is not None else Turns()   # the event loop's budget
        self.failed_logins = FailedLogins()
        metrics.config_reload_ok.set(1)
        metrics.config_reload_time.set(runtime.loaded_at)
        metrics.runbooks_loaded(r.name for r in runtime.runbooks)

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
        """Return when no webhook request is in flight, or after ``at_most`` seconds; with
        none in flight, after a turn of the event loop when the last was long enough ago
        (``Turns``): a request that has not started yet, a message in flight, run too.
        Writes the caller holds (``Journal.holding_commits``) are committed first."""
        if self._no_webhooks.is_set():
            await self.turns.take()
            return
        await self.journal.commit_held()   # their rows wait for the journal's lock
        try:
            async with asyncio.timeout(at_most):
                await self._no_webhooks.wait()
        except TimeoutError:
            pass

    async def restore(self) -> None:
        """Read what must survive restarts (the pauses, corrections) from the journal."""
        if await self.journal.get_flag("paused"):   # the one global switch of old
            await self.add_pause(matchers=[], reason="paused before pauses had matchers",
                                 until=None, by="upgrade")
            await self.journal.set_flag("paused", False)
        await self.refresh_pauses()
        await self.refresh_corrections()

    async def refresh_corrections(self, older_than: float = 0.0) -> None:
        """Re-read the operators' corrections (one may have been made through another
        replica), unless they were read less than ``older_than`` seconds ago."""
        now = self.clock()
        if older_than and now - self._corrections_read_at < older_than:
            return
        self._corrections_read_at = now
        self.corrections.update(await self.journal.correction_categories())

    async def is_paused(self, older_than: float = 0.0) -> bool:
        """Whether a pause without matchers holds everything, as the journal has it now
        (another replica may have paused), or had it at most ``older_than`` seconds ago."""
        await self.refresh_pauses(older_than=older_than)
        return self.paused

    # -- pauses (held actions are released by the scheduler) ---------------------------
    @property
    def paused(self) -> bool:
        """Whether a pause without matchers holds every action now."""
        now = self.clock()
        return any(not p.matchers and pauses.active(p, now) for p in self.pauses)

    def pause_for(self, labels: Mapping[str, str]) -> Pause | None:
        return pauses.covering(self.pauses, labels, self.clock())

    async def refresh_pauses(self, older_than: float = 0.0) -> list[Pause]:
        """Re-read the active pauses (another replica may have changed them), unless
        they were read less than ``older_than`` seconds ago."""
        now = self.clock()
        if older_than and now - self._pauses_read_at < older_than:
            return self.pauses
        self.pauses = await self.journal.active_pauses(now)
        self._pauses_read_at = now
        self.metrics.paused.set(1 if self.paused else 0)
        return self.pauses

    async def add_pause(self, *, matchers: Sequence[str], reason: str | None,
                        until: float | None, by: str) -> Pause:
        pause = await self.journal.add_pause(
            matchers=matchers, reason=reason, by=by, until=until,
            events=lambda p: [Event(kind="pause", outcome="ok", detail={"by": by, **p.to_dict()})])
        await self.refresh_pauses()
        log.warning("actions paused by %s: %s%s", by, ", ".join(matchers) or "everything",
                    f" ({reason})" if reason else "")
        return pause

    async def lift_pauses(self, by: str, pause_id: int | None = None) -> list[Pause]:
        lifted = await self.journal.lift_pauses(
            by=by, pause_id=pause_id,
            events=lambda p: [Event(kind="resume", outcome="ok",
                                    detail={"by": by, "pause": p.id,
                                            "matchers": list(p.matchers)})])
        await self.refresh_pauses()
        if lifted:
            self.attempts_changed.set()
            log.warning("pause(s) %s lifted by %s", ", ".join(str(p.id) for p in lifted), by)
        return lifted

    async def reload(self) -> ReloadResult:
        """Reload the configuration as a transaction; the old runtime stays on failure."""
        result = await self._reload()
        self.last_reload = (self.clock(), result)
        return result

    async def _reload(self) -> ReloadResult:
        async with self._reload_lock:
            try:
                runtime = await asyncio.to_thread(load_runtime, self.config_path)
                problems = await asyncio.to_thread(template_problems, runtime)
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
            old = self._started_with
            warnings = [self.redactor.scrub(p) for p in problems]
            if runtime.model_error is not None:
                warnings.append(f"analysis.model unusable, analysing with patterns only: "
                                f"{self.redactor.scrub(runtime.model_error)}")
            for name in ("host", "port", "state_path", "log_format", "log_level"):
                if getattr(old, name) != getattr(runtime.config, name):
                    warnings.append(f"{name} changed: takes effect after a restart")
            self.runtime = runtime
            self.redactor = self.redactor + redactor_for(runtime.config)
            self.log_filter.redactor = self.redactor
            self.metrics.config_reload_ok.set(1)
            self.metrics.config_reload_time.set(runtime.loaded_at)
            self.metrics.runbooks_loaded(r.name for r in runtime.runbooks)
            log.info("configuration reloaded: %d runbooks, %d patterns",
                     len(runtime.runbooks), len(runtime.patterns))
            for line in warnings:
                log.warning("reload: %s", line)
            self.work_available.set()
            return ReloadResult(True, [], warnings)
