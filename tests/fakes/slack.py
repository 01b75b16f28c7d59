"""A fake Slack incoming webhook that refuses what Slack refuses.

Shaped after Slack's incoming-webhook error reference: answers are plain text, ``ok`` on
success; ``invalid_payload`` (400) for a body that is not a JSON object, has no content
(``text``, ``blocks``, or a legacy attachment with text of its own), or more than 50
blocks; ``invalid_blocks`` (400) for a malformed
block; ``no_service`` (404) for an unknown webhook path; ``rate_limited`` (429) and 5xx
when scripted (``fake.script("POST", fake.path, [Reply(429, headers={"Retry-After":
"2"})])``). Like Slack, it wants ``Content-Type: application/json``.

It is also the Slack side of interactivity: ``interaction()`` builds the body Slack posts
when a button of an accepted message is clicked (form-encoded ``payload=`` JSON), ``sign()``
the headers Slack signs it with, and the ``response_url`` it names records what the app
posts back (``responses``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from tests.fakes import FakeServer

MAX_BLOCKS = 50
# What makes a legacy attachment a message (Alertmanager's own Slack notifier sends these).
_ATTACHMENT_CONTENT = ("text", "fallback", "pretext", "title", "fields", "blocks")
ERROR_CODES = {400: "invalid_payload", 403: "invalid_token", 404: "no_service",
               410: "channel_is_archived", 429: "rate_limited", 500: "internal_error",
               503: "service_unavailable"}


class FakeSlack(FakeServer):
    path = "/services/T0000FAKE/B0000FAKE/fAkEsEcReTtOkEn0123456789"
    response_path = "/actions/T0000FAKE/1234567890/rEsPoNsEuRlToKeN"

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []   # the payloads Slack accepted
        self.responses: list[dict[str, Any]] = []  # what was posted to a response_url
        self.route(self.path, post=self._post)
        self.route(self.response_path, post=self._respond)

    async def _respond(self, request: web.Request, params: dict[str, str]) -> web.Response:
        try:
            payload = json.loads(await request.read())
        except ValueError:
            return self.error(400, "invalid_payload")
        if not isinstance(payload, dict) or not (payload.get("text") or payload.get("blocks")):
            return self.error(400, "invalid_payload")
        self.responses.append(payload)
        return web.Response(text="ok", content_type="text/html")

    def interaction(self, message: dict[str, Any], action_id: str, *, user: str = "U0ALICE",
                    username: str = "alice") -> bytes:
        """The body Slack posts to the app's Request URL when a button of ``message`` (an
        accepted message with an ``actions`` block) is clicked: form-encoded ``payload=``
        JSON of a ``block_actions`` interaction."""
        button = next(e for b in _blocks(message) if b["type"] == "actions"
                      for e in b["elements"] if e.get("action_id") == action_id)
        block = next(b for b in _blocks(message) if button in b.get("elements", []))
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": username, "name": username, "team_id": "T0000FAKE"},
            "api_app_id": "A0000FAKE", "token": "deprecatedVerificationToken",
            "container": {"type": "message", "message_ts": "1764612000.000100",
                          "channel_id": "C0000FAKE", "is_ephemeral": False},
            "trigger_id": "1234567890.0987654321.abcdef", "team": {"id": "T0000FAKE",
                                                                  "domain": "fake"},
            "channel": {"id": "C0000FAKE", "name": "oncall"},
            "message": {"type": "message", "ts": "1764612000.000100", "text": message["text"]},
            "response_url": self.url + self.response_path,
            "actions": [{"type": "button", "action_id": action_id,
                         "block_id": block.get("block_id", ""), "value": button["value"],
                         "text": button["text"], "action_ts": "1764612001.000200"}],
        }
        return urlencode({"payload": json.dumps(payload)}).encode()


    @property
    def webhook_url(self) -> str:
        return self.url + self.path

    def error(self, status: int, message: str, **extra: Any) -> web.Response:
        return web.Response(status=status, text=ERROR_CODES.get(status, message),
                            content_type="text/html")

    async def not_routed(self, request: web.Request, allowed: list[str]) -> web.StreamResponse:
        if allowed:
            return web.Response(status=405, text="invalid_method", content_type="text/html")
        return self.error(404, "no_service")

    async def _post(self, request: web.Request, params: dict[str, str]) -> web.Response:
        if request.content_type != "application/json":
            return self.error(400, "invalid_payload")
        try:
            payload = json.loads(await request.read())
        except ValueError:
            return self.error(400, "invalid_payload")
        if not isinstance(payload, dict):
            return self.error(400, "invalid_payload")
        text, blocks = payload.get("text"), payload.get("blocks")
        attachments = payload.get("attachments") or []
        all_blocks = list(blocks or [])
        attached = False      # legacy attachments carry content of their own
        for attachment in attachments if isinstance(attachments, list) else [None]:
            if not isinstance(attachment, dict):
                return self.error(400, "invalid_payload")
            all_blocks.extend(attachment.get("blocks") or [])
            attached = attached or any(attachment.get(k) for k in _ATTACHMENT_CONTENT)
        if not text and not blocks and not attached:
            return self.error(400, "invalid_payload")
        if len(all_blocks) > MAX_BLOCKS:
            return self.error(400, "invalid_payload")
        if not all(_valid_block(b) for b in all_blocks):
            return web.Response(status=400, text="invalid_blocks", content_type="text/html")
        self.messages.append(payload)
        return web.Response(text="ok", content_type="text/html")


def _valid_block(block: Any) -> bool:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        return False
    text = block.get("text")
    if block["type"] == "header":
        return isinstance(text, dict) and text.get("type") == "plain_text" \
            and 0 < len(text.get("text", "")) <= 150
    if block["type"] == "section":
        fields = block.get("fields") or []
        if text is None and not fields:
            return False
        if text is not None and not (isinstance(text, dict) and 0 < len(text.get("text", ""))
                                     <= 3000):
            return False
        return len(fields) <= 10 and all(0 < len(f.get("text", "")) <= 2000 for f in fields)
    if block["type"] in ("actions", "context"):
        elements = block.get("elements")
        return isinstance(elements, list) and 0 < len(elements) <= 25
    return True


def sign(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The headers Slack sends: ``v0=`` HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    base = f"v0:{timestamp}:".encode() + body
    return {"X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest(),
            "Content-Type": "application/x-www-form-urlencoded"}


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = list(message.get("blocks") or [])
    for attachment in message.get("attachments") or []:
        blocks.extend(attachment.get("blocks") or [])
    return blocks
