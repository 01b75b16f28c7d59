"""The framework's ceiling: an aiohttp handler that only reads and parses the payload.

It answers the same status and shape of body as the responder's webhook, with nothing
else: no auth, no validation, no journal, no work behind it. Run as its own process by
``bench/run.py``: ``python bench/bare_server.py PORT``.
"""

from __future__ import annotations

import json
import sys

from aiohttp import web


async def webhook(request: web.Request) -> web.Response:
    payload = json.loads(await request.read())
    alerts = payload["alerts"] if isinstance(payload, dict) else payload
    return web.Response(body=json.dumps({"accepted": len(alerts), "duplicates": 0}).encode(),
                        content_type="application/json")


async def ready(request: web.Request) -> web.Response:
    return web.Response(text="OK\n")


def main() -> None:
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post("/webhook", webhook)
    app.router.add_get("/-/ready", ready)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
