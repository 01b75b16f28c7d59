"""The HTTP server ``responder serve`` runs: aiohttp's, with deadlines for slow clients.

aiohttp closes a connection that stays idle past ``keepalive_timeout``, but a client that
sends its headers (or its body) one byte a second is not idle, and it may hold its
connection for as long as it likes, before authentication: a few hundred of them exhaust
file descriptors. So each connection here has reading deadlines, as Go's
``ReadHeaderTimeout`` and ``ReadTimeout`` do:

* **headers**: from the connection's start, or from the first byte of a request on a
  kept-alive connection, its headers must be complete within ``limits.header_timeout``;
* **body**: from the end of the headers, the body must be complete within
  ``limits.body_timeout`` (a handler that is still busy after its body arrived is not
  cut off: the deadline is for the client, not for the journal);
* **idle**: a keep-alive connection with no request is closed after
  ``limits.idle_timeout``, and at most ``limits.max_idle_connections`` idle ones are kept
  (the oldest idle one is closed to admit another).

A connection cut off, or a client that goes away mid-request, is one line at debug level:
the client's problem is not the operator's, and it is never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import OrderedDict
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from responder.config.main import HttpLimits

log = logging.getLogger("responder.http")


class IdleConnections:
    """Connections waiting for their next request, oldest first, bounded in number."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._idle: OrderedDict[GuardedRequestHandler, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._idle)

    def add(self, handler: GuardedRequestHandler) -> None:
        self._idle[handler] = None
        self._idle.move_to_end(handler)
        while len(self._idle) > self.limit:
            oldest, _ = self._idle.popitem(last=False)
            oldest.cut_off(f"more than {self.limit} idle connections")

    def discard(self, handler: GuardedRequestHandler) -> None:
        self._idle.pop(handler, None)


class GuardedRequestHandler(RequestHandler):
    """aiohttp's protocol with header and body deadlines and the idle bound."""

    def __init__(self, manager: web.Server, *, limits: HttpLimits, idle: IdleConnections,
                 **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._limits = limits
        self._idle = idle
        self._deadline: asyncio.TimerHandle | None = None
        self._peer = "?"

    # -- the connection's life ---------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self._peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        super().connection_made(transport)
        # A new connection owes its first request's headers; only a connection that has
        # been answered and kept alive counts as idle.
        self._arm(self._limits.header_timeout, "request headers", None)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        self._idle.discard(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        awaiting_headers = not self._request_in_progress and not self._messages
        before = self._request_count
        super().data_received(data)
        if self._request_count > before:
            # Headers complete: the body has its own deadline from now.
            self._idle.discard(self)
            payload = self._messages[-1][1] if self._messages else None
            self._arm(self._limits.body_timeout, "request body", payload)
        elif awaiting_headers and data and self._deadline is None:
            self._idle.discard(self)
            self._arm(self._limits.header_timeout, "request headers", None)

    async def finish_response(self, request: BaseRequest, resp: web.StreamResponse,
                              start_time: float | None) -> tuple[web.StreamResponse, bool]:
        result = await super().finish_response(request, resp, start_time)
        self._disarm()
        if not self._messages and self.transport is not None and not self._force_close:
            self._idle.add(self)
        return result

    # -- deadlines ---------------------------------------------------------------------
    def _arm(self, seconds: float, what: str, payload: Any) -> None:
        self._disarm()
        self._deadline = self._loop.call_later(seconds, self._expired, seconds, what, payload)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, seconds: float, what: str, payload: Any) -> None:
        self._deadline = None
        if payload is not None and payload.is_eof():
            return      # the body arrived: the handler is working, not the client
        self.cut_off(f"{what} not received within {seconds:g}s")

    def cut_off(self, reason: str) -> None:
        log.debug("closing connection from %s: %s", self._peer, reason)
        self._idle.discard(self)
        self.force_close()

    # -- a client that went away ---------------------------------------------------------
    def handle_error(self, request: BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if _client_gone(exc):
            log.debug("client %s went away during %s %s: %s", self._peer, request.method,
                      request.path, exc or "connection lost")
            self.force_close()
            return web.Response(status=400, text="client went away")
        return super().handle_error(request, status, exc, message)


def _client_gone(exc: BaseException | None) -> bool:
    """Whether a handler failed only because its client's connection is gone: reset by
    the client, or closed by a reading deadline while the handler read the body (aiohttp's
    payload stream then raises a bare ``RuntimeError("Connection closed.")``)."""
    return isinstance(exc, ConnectionError) or (
        isinstance(exc, RuntimeError) and str(exc) == "Connection closed.")


class GuardedServer(web.Server):
    """aiohttp's Server building ``GuardedRequestHandler`` connections."""

    def __init__(self, server: web.Server, limits: HttpLimits) -> None:
        # The same handler, request factory and options aiohttp's app runner chose.
        super().__init__(server.request_handler, request_factory=server.request_factory,
                         handler_cancellation=server.handler_cancellation,
                         loop=server._loop, **server._kwargs)
        self.limits = limits
        self.idle = IdleConnections(limits.max_idle_connections)

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, limits=self.limits, idle=self.idle, loop=self._loop,
                                     **self._kwargs)


class GuardedAppRunner(web.AppRunner):
    """An AppRunner whose server guards its connections (see the module docstring)."""

    def __init__(self, app: web.Application, limits: HttpLimits, **kwargs: Any) -> None:
        super().__init__(app, keepalive_timeout=limits.idle_timeout, **kwargs)
        self.limits = limits

    async def _make_server(self) -> web.Server:
        return GuardedServer(await super()._make_server(), self.limits)


def listen(host: str, port: int) -> list[socket.socket]:
    """Bound, listening sockets for ``host:port`` (every address the name has, as
    aiohttp's own site binds), made before the service starts anything: a port in use
    fails here, before the journal is opened or a worker runs. OSError when one cannot be
    bound."""
    made: list[socket.socket] = []
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
        for family, kind, proto, _, address in dict.fromkeys(
                (i[0], i[1], i[2], "", i[4]) for i in infos):
            sock = socket.socket(family, kind, proto)
            made.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(1024)
            sock.setblocking(False)
    except OSError:
        for sock in made:
            sock.close()
        raise
    return made


async def _serve(app: web.Application, sockets: list[socket.socket], limits: HttpLimits,
                 shutdown_timeout: float) -> None:
    runner = GuardedAppRunner(app, limits, handle_signals=True, access_log=None,
                              shutdown_timeout=shutdown_timeout)
    try:
        await runner.setup()   # a failed start still closes what started (sessions, threads)
        for sock in sockets:
            await web.SockSite(runner, sock).start()
        await asyncio.Event().wait()      # until SIGTERM/SIGINT raise GracefulExit
    finally:
        await runner.cleanup()


def run(app: web.Application, *, sockets: list[socket.socket], limits: HttpLimits,
        shutdown_timeout: float = 10.0) -> None:
    """Serve ``app`` on ``sockets`` (``listen``) until SIGINT or SIGTERM, then shut down
    gracefully (in-flight requests are answered, for up to ``shutdown_timeout`` seconds),
    as ``web.run_app`` does."""
    try:
        asyncio.run(_serve(app, sockets, limits, shutdown_timeout))
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        for sock in sockets:
            sock.close()
