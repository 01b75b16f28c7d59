"""Wiring: one factory builds the application from a loaded runtime.

Everything with a lifetime (journal, HTTP client session, action backend, the pipeline,
scheduler and outbox workers) is owned by a ``cleanup_ctx``: started before ``yield``,
cancelled and awaited after, in reverse order. Nothing lives at module level, so a test
builds as many independent apps as it wants with its own registry and clock.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from responder import console, interact, operate, receive
from responder.act import scheduler
from responder.act.argo import ArgoSettings, Backend, KubeSettings, choose_backend
from responder.act.breaker_store import BreakerStore
from responder.actor import Actor
from responder.approvals import Approvals
from responder.journal import Journal, JournalOpenError, JournalUnavailable, SqliteJournal
from responder.journal.retention import Retention
from responder.load import Runtime
from responder.metrics import Metrics
from responder.outbox import Notifier
from responder.pipeline import Pipeline
from responder.service import Service
from responder.turns import Turns

log = logging.getLogger("responder")
TASKS: web.AppKey[set[asyncio.Task[None]]] = web.AppKey("tasks")


def _backend(runtime: Runtime, session: aiohttp.ClientSession) -> Backend:
    config = runtime.config
    argo = None
    if config.argo is not None and config.argo.server:
        argo = ArgoSettings(server=config.argo.server, token=config.argo.token,
                            ca_file=config.argo.ca_file,
                            insecure_skip_verify=config.argo.insecure_skip_verify,
                            timeout=config.argo.timeout, ui_url=config.argo.ui_url)
    kube = None
    if config.kubernetes is not None:
        kube = KubeSettings(kubeconfig=config.kubernetes.kubeconfig,
                            context=config.kubernetes.context)
    return choose_backend(argo, kube, session, dry_run=config.dry_run)


def _spawn(app: web.Application, coro: Coroutine[Any, Any, None], name: str) -> None:
    task = asyncio.create_task(coro, name=name)
    app[TASKS].add(task)

    def done(t: asyncio.Task[None]) -> None:
        app[TASKS].discard(t)
        if not t.cancelled() and t.exception() is not None:
            log.error("background task %s died", name, exc_info=t.exception())

    task.add_done_callback(done)


def create_app(runtime: Runtime, *, registry: CollectorRegistry | None = None,
               clock: Callable[[], float] = time.time, handle_signals: bool = False,
               journal_synchronous: str = "FULL",
               sleep: scheduler.Sleep = scheduler.sleep) -> web.Application:
    metrics = Metrics(registry if registry is not None else CollectorRegistry())
    turns = Turns()   # one budget of event loop turns for the pipeline and the journal
    journal = _journal(runtime, clock, journal_synchronous, turns)
    service = Service(runtime, journal, metrics, clock=clock, turns=turns)
    _wake_on_notify(journal, service)
    app = web.Application(
        client_max_size=runtime.config.max_body_bytes,
        middlewares=[receive.auth_middleware, console.middleware],
        handler_args={"max_field_size": 16384},
    )
    app[receive.SERVICE] = service
    app[TASKS] = set()
    receive.add_routes(app)
    operate.add_routes(app)
    console.setup(app)
    interact.setup(app)

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        # Every handler of the process, whoever logs: no record leaves with a secret.
        handlers = list(logging.getLogger().handlers)
        for handler in handlers:
            handler.addFilter(service.log_filter)
        # trust_env: HTTPS_PROXY, HTTP_PROXY and NO_PROXY apply, as for curl.
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30), trust_env=True)
        backend = _backend(runtime, session)
        breakers = BreakerStore(journal, metrics, clock)
        notifier = Notifier(service, session)
        actor = Actor(service, backend, notifier, breakers, sleep=sleep)
        app[receive.ACTOR] = actor
        app[receive.BREAKERS] = breakers
        approvals = Approvals(actor)
        app[operate.APPROVALS] = approvals
        pipeline = Pipeline(service, actor, notifier)

        async def start_workers() -> None:
            await breakers.load()
            await service.restore()
            await console.start(app, service)
            log.info("acting through %s%s", backend.name,
                     " (dry run: actions are planned and recorded, none executed)"
                     if backend.name == "dry-run" else "")
            _spawn(app, pipeline.run(), "pipeline")
            _spawn(app, actor.run(), "actor")
            _spawn(app, notifier.run(), "outbox")
            _spawn(app, approvals.run(), "approvals")
            _spawn(app, Retention(journal,
                                  retention=lambda: service.runtime.config.state_retention,
                                  clock=clock, report_size=metrics.journal_bytes.set).run(),
                   "retention")

        try:
            await journal.open()
        except JournalOpenError:
            await backend.close()
            await session.close()
            for handler in handlers:
                handler.removeFilter(service.log_filter)
            raise
        except JournalUnavailable as exc:
            # A database that is down at start is not a crash loop: serve /-/ready false
            # (and 503 to webhooks) and start the workers once it answers.
            log.error("%s; /-/ready stays false until it answers", exc)
            _spawn(app, _open_later(journal, start_workers), "journal-open")
        else:
            await start_workers()
        loop = asyncio.get_running_loop()
        if handle_signals:
            loop.add_signal_handler(signal.SIGHUP,
                                    lambda: _spawn(app, _reload(service), "reload"))
            for stop in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(stop, _stop, stop)
        try:
            yield
        finally:
            log.info("shutting down: stopping workers, closing the journal")
            if handle_signals:
                loop.remove_signal_handler(signal.SIGHUP)
            owned: set[asyncio.Task[None]] = app[TASKS]
            tasks = list(owned)
            for task in tasks:
                task.cancel()
            if tasks:
                _, stuck = await asyncio.wait(tasks, timeout=10.0)
                for task in stuck:
                    log.error("background task %s did not stop on cancel", task.get_name())
            await backend.close()
            await session.close()
            await journal.close()
            for handler in handlers:
                handler.removeFilter(service.log_filter)

    app.cleanup_ctx.append(lifetime)
    return app


def _journal(runtime: Runtime, clock: Callable[[], float], synchronous: str,
             turns: Turns) -> Journal:
    postgres = runtime.config.postgres
    if postgres is not None:
        from responder.journal.postgres import PostgresJournal

        return PostgresJournal(postgres.dsn, clock=clock, owner=_owner(runtime),
                               lease=postgres.lease)
    return SqliteJournal(runtime.config.state_path, clock=clock, synchronous=synchronous,
                         owner=_owner(runtime),
                         reserve_bytes=runtime.config.state_reserve_bytes, turns=turns)


def _wake_on_notify(journal: Journal, service: Service) -> None:
    """Work another replica journaled (PostgreSQL's NOTIFY) wakes this one's workers."""
    events = {"delivery": service.work_available, "attempt": service.attempts_changed,
              "outbox": service.outbox_changed}
    if hasattr(journal, "on_wake"):
        journal.on_wake = lambda kind: events[kind].set() if kind in events else None


async def _open_later(journal: Journal, then: Callable[[], Coroutine[Any, Any, None]],
                      every: float = 2.0) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await journal.open()
        except JournalUnavailable as exc:
            log.warning("%s; trying again in %.0fs", exc, every)
            continue
        log.info("journal open")
        await then()
        return


def _owner(runtime: Runtime) -> str:
    """The name this process's leases carry: the same after a restart on the same host and
    port, so a restart takes its own work back at once (a port of 0 is not a name)."""
    port = runtime.config.port
    return f"{os.uname().nodename}:{port}" if port else f"{os.uname().nodename}:pid{os.getpid()}"


def _stop(signum: signal.Signals) -> None:
    """aiohttp's own handler, with a line saying why the service stops."""
    log.info("received %s: shutting down", signum.name, extra={"signal": signum.name})
    raise web.GracefulExit()


async def _reload(service: Service) -> None:
    await service.reload()
