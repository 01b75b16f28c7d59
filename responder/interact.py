"""Slack's Approve / Reject buttons: ``POST /slack/interactions``.

Slack signs every interaction request with the app's signing secret: ``X-Slack-Signature``
is ``v0=`` and the hex HMAC-SHA256 of ``v0:{X-Slack-Request-Timestamp}:{raw body}``. A
request is taken only when it verifies against a Slack channel's ``signing_secret_file``
(compared in constant time), its timestamp is within five minutes of now, and its
signature was not seen before (a replay); anything else is 401 and changes nothing. The
clicking user must be in the channel's ``approvers`` when that list is given. The decision
is the same one the API takes (``Approvals.decide``); the message is then updated through
the interaction's ``response_url``, so everyone in the channel sees who decided.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import aiohttp
from aiohttp import web

from responder.approvals import Refused
from responder.config.channels import ChannelSpec, SlackSettings
from responder.journal import journal_id
from responder.operate import APPROVALS
from responder.receive import SERVICE, json_response

log = logging.getLogger("responder.slack")
WINDOW = 300.0            # seconds a timestamp may be off (Slack's own advice)
MAX_BODY = 64 * 1024
VERBS = {"approve": ("approve", "✅ Approved"), "reject": ("reject", "⛔ Rejected")}


class SlackInteractions:
    """Signatures seen in the last five minutes (replays), and the client that answers."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.session: aiohttp.ClientSession | None = None

    def replayed(self, signature: str, now: float) -> bool:
        for old, at in list(self.seen.items()):
            if at < now - 2 * WINDOW:
                del self.seen[old]
        if signature in self.seen:
            return True
        self.seen[signature] = now
        return False


SLACK = web.AppKey("slack_interactions", SlackInteractions)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def _verified(channels: dict[str, ChannelSpec], timestamp: str, body: bytes,
              given: str) -> ChannelSpec | None:
    found = None
    for channel in channels.values():
        settings = channel.settings
        if not isinstance(settings, SlackSettings) or settings.signing_secret is None:
            continue
        expected = signature(settings.signing_secret.reveal(), timestamp, body)
        if hmac.compare_digest(expected.encode(), given.encode()) and found is None:
            found = channel
    return found


def _unverified(reason: str) -> web.Response:
    return json_response({"error": f"unverified Slack request: {reason}"}, 401)


async def _answer(request: web.Request, url: object, message: dict[str, Any]) -> None:
    """Update the message (or tell the clicking user) through Slack's ``response_url``."""
    session = request.app[SLACK].session
    if not isinstance(url, str) or not url.startswith(("https://", "http://")) or session is None:
        return
    try:
        async with session.post(url, json=message,
                                timeout=aiohttp.ClientTimeout(total=5)) as response:
            if response.status >= 300:
                log.warning("Slack response_url answered %d", response.status)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("Slack response_url failed: %s", type(exc).__name__)


async def interactions(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    if request.content_length is not None and request.content_length > MAX_BODY:
        return _unverified("body too large")
    body = await request.read()
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    given = request.headers.get("X-Slack-Signature", "")
    now = service.clock()
    if not timestamp.isdigit() or abs(now - int(timestamp)) > WINDOW:
        return _unverified("missing timestamp, or more than 5 minutes off")
    channel = _verified(service.runtime.config.channels, timestamp, body, given)
    if channel is None:
        return _unverified("bad signature")
    if request.app[SLACK].replayed(given, now):
        return _unverified("replayed")
    try:
        payload = json.loads(parse_qs(body.decode())["payload"][0])
        action = payload["actions"][0]
        verb, done = VERBS[action["action_id"]]
        approval_id = journal_id(action["value"])
        user = payload["user"]
        if approval_id is None or not isinstance(user, dict):
            raise ValueError("not an approval button a Slack user clicked")
    except (KeyError, IndexError, ValueError, TypeError, UnicodeDecodeError):
        return json_response({"error": "not an Approve / Reject interaction"}, 400)
    name = str(user.get("username") or user.get("name") or user.get("id"))
    settings = channel.settings
    assert isinstance(settings, SlackSettings)
    url = payload.get("response_url")
    if settings.approvers is not None and not {user.get("id"), name} & set(settings.approvers):
        log.warning("Slack user %s may not decide approvals (channel %s)", name, channel.name)
        await _answer(request, url, {"response_type": "ephemeral", "replace_original": False,
                                     "text": f"{name} is not among this channel's approvers."})
        return web.Response(status=200)
    try:
        decided = await request.app[APPROVALS].decide(approval_id, verb, f"{name} (Slack)")
    except Refused as exc:
        await _answer(request, url, {"response_type": "ephemeral", "replace_original": False,
                                     "text": exc.message})
        return web.Response(status=200)
    text = f"{done} by {name}: approval {decided.id}, {decided.runbook}"
    await _answer(request, url, {"replace_original": True, "text": text, "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}}]})
    return web.Response(status=200)


def setup(app: web.Application) -> None:
    app[SLACK] = SlackInteractions()
    app.router.add_post("/slack/interactions", interactions)

    async def client(app: web.Application) -> AsyncIterator[None]:
        session = app[SLACK].session = aiohttp.ClientSession()
        yield
        await session.close()

    app.cleanup_ctx.append(client)
