"""Generic webhooks: POST the rendered JSON with optional bearer or basic auth, HMAC and
the channel's own ``headers`` (Opsgenie's ``Authorization: GenieKey ...``, an API key).
A template that renders ``{}`` for an event sends nothing for it.

With ``hmac_secret`` every request carries ``X-Responder-Signature: sha256=<hex>``, the
HMAC-SHA256 of the exact body bytes, so the receiver can verify who sent it. Answers are
judged like every HTTP upstream: 2xx delivered, 429/5xx temporary, other 4xx permanent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import aiohttp

from responder.config.channels import ChannelSpec, WebhookSettings
from responder.notify.base import judge, post
from responder.notify.render import Message

SIGNATURE_HEADER = "X-Responder-Signature"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSender:
    def __init__(self, spec: ChannelSpec, session: aiohttp.ClientSession) -> None:
        assert isinstance(spec.settings, WebhookSettings)
        self.name = spec.name
        self.settings = spec.settings
        self.session = session

    def __repr__(self) -> str:
        return f"WebhookSender({self.name!r})"

    async def send(self, message: Message) -> None:
        s = self.settings
        what = f"webhook channel {self.name}"
        if message.body == {}:
            return      # the template chose to send nothing for this event (e.g. Opsgenie's resolve)
        body = json.dumps(message.body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {name: value.reveal() for name, value in s.headers}
        headers["Content-Type"] = "application/json"
        if s.bearer_token is not None:
            headers["Authorization"] = f"Bearer {s.bearer_token.reveal()}"
        if s.hmac_secret is not None:
            headers[SIGNATURE_HEADER] = signature(s.hmac_secret.reveal(), body)
        if s.basic_auth is not None:
            pair = f"{s.basic_auth.username}:{s.basic_auth.password.reveal()}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        status, text, retry_after = await post(
            self.session, s.url.reveal(), body, headers, seconds=s.timeout, what=what)
        secrets = [s.url, s.bearer_token, s.hmac_secret,
                   s.basic_auth.password if s.basic_auth else None,
                   *(value for _, value in s.headers)]
        judge(what, status, text, retry_after, secrets)
