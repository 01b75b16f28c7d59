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
from responder.journal import SqliteJournal
from responder.load import Runtime
from responder.metrics import Metrics
from responder.outbox import Notifier
from responder.pipeline import Pipeline
from responder.service import Service

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
    journal = SqliteJournal(runtime.config.state_path, clock=clock,
                            synchronous=journal_synchronous, owner=_owner(runtime))
    service = Service(runtime, journal, metrics, clock=clock)
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
        await journal.open()
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        backend = _backend(runtime, session)
        breakers = BreakerStore(journal, metrics, clock)
        await breakers.load()
        await service.restore()
        await console.start(app, service)
        notifier = Notifier(service, session)
        actor = Actor(service, backend, notifier, breakers, sleep=sleep)
        app[receive.ACTOR] = actor
        app[receive.BREAKERS] = breakers
        approvals = Approvals(actor)
        app[operate.APPROVALS] = approvals
        pipeline = Pipeline(service, actor, notifier)
        log.info("acting through %s%s", backend.name,
                 " (dry run: actions are planned and recorded, none executed)"
                 if backend.name == "dry-run" else "")
        _spawn(app, pipeline.run(), "pipeline")
        _spawn(app, actor.run(), "actor")
        _spawn(app, notifier.run(), "outbox")
        _spawn(app, approvals.run(), "approvals")
        loop = asyncio.get_running_loop()
        if handle_signals:
            loop.add_signal_handler(signal.SIGHUP,
                                    lambda: _spawn(app, _reload(service), "reload"))
        try:
            yield
        finally:
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

    app.cleanup_ctx.append(lifetime)
    return app


def _owner(runtime: Runtime) -> str:
    """The name this process's leases carry: the same after a restart on the same host and
    port, so a restart takes its own work back at once (a port of 0 is not a name)."""
    port = runtime.config.port
    return f"{os.uname().nodename}:{port}" if port else f"{os.uname().nodename}:pid{os.getpid()}"


async def _reload(service: Service) -> None:
    await service.reload()
