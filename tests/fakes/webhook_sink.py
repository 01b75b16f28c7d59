"""A webhook receiver for the generic webhook channel: checks auth and the HMAC signature.

It wants ``Content-Type: application/json``, answers 401 when the configured bearer token
or basic credentials are missing or wrong, 401 when ``hmac_secret`` is set and
``X-Responder-Signature`` is not ``sha256=`` + HMAC-SHA256 of the exact body, else 200 and
keeps the parsed body in ``received``. Answers can be scripted like every fake.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from aiohttp import web

from tests.fakes import FakeServer


class FakeWebhookSink(FakeServer):
    path = "/hooks/responder"

    def __init__(self, *, bearer_token: str | None = None,
                 basic_auth: tuple[str, str] | None = None,
                 hmac_secret: str | None = None) -> None:
        super().__init__()
        self.bearer_token = bearer_token
        self.basic_auth = basic_auth
        self.hmac_secret = hmac_secret
        self.received: list[Any] = []
        self.route(self.path, post=self._receive)

    @property
    def hook_url(self) -> str:
        return self.url + self.path

    def _authorized(self, request: web.Request) -> bool:
        given = request.headers.get("Authorization", "")
        if self.bearer_token is not None:
            return hmac.compare_digest(given, f"Bearer {self.bearer_token}")
        if self.basic_auth is not None:
            user, password = self.basic_auth
            expected = base64.b64encode(f"{user}:{password}".encode()).decode()
            return hmac.compare_digest(given, f"Basic {expected}")
        return True

    async def _receive(self, request: web.Request, params: dict[str, str]) -> web.Response:
        if request.content_type != "application/json":
            return self.error(415, "expected application/json")
        if not self._authorized(request):
            return self.error(401, "unauthorized")
        raw = await request.read()
        if self.hmac_secret is not None:
            digest = hmac.new(self.hmac_secret.encode(), raw, hashlib.sha256).hexdigest()
            given = request.headers.get("X-Responder-Signature", "")
            if not hmac.compare_digest(given, f"sha256={digest}"):
                return self.error(401, "bad signature")
        try:
            self.received.append(json.loads(raw))
        except ValueError:
            return self.error(400, "body is not JSON")
        return web.json_response({"ok": True})
