"""The operator console at ``/`` (SPEC §13): what the responder did, and the people's
controls over it, as plain server-rendered HTML forms with one stylesheet and one small
script (times in the browser's zone); no JavaScript build step."""

from __future__ import annotations

from aiohttp import web

from responder.console import session, views
from responder.service import Service

middleware = session.middleware


def setup(app: web.Application) -> None:
    """Routes and state; ``middleware`` must be among the app's middlewares."""
    app[session.CONSOLE] = session.ConsoleState()
    views.add_routes(app)


async def start(app: web.Application, service: Service) -> None:
    """Read (or create) the session-signing secret every replica shares."""
    await app[session.CONSOLE].load(service)
