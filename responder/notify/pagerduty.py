"""PagerDuty Events API v2: trigger on firing and escalation, resolve with the same key.

The routing key is added to the rendered event here, at send time, so the outbox never
stores it. PagerDuty answers 202 ``{"status": "success", "dedup_key": ...}``; 400
``invalid event`` is permanent (the event will never be accepted), 429 and 5xx are
temporary.
"""

from __future__ import annotations

import json

import aiohttp

from responder.config.channels import ChannelSpec, PagerDutySettings
from responder.notify.base import judge, post
from responder.notify.render import Message


class PagerDutySender:
    def __init__(self, spec: ChannelSpec, session: aiohttp.ClientSession) -> None:
        assert isinstance(spec.settings, PagerDutySettings)
        self.name = spec.name
        self.settings = spec.settings
        self.session = session

    def __repr__(self) -> str:
        return f"PagerDutySender({self.name!r})"

    async def send(self, message: Message) -> None:
        what = f"pagerduty channel {self.name}"
        event = {**message.body, "routing_key": self.settings.routing_key.reveal()}
        status, text, retry_after = await post(
            self.session, self.settings.url, json.dumps(event, ensure_ascii=False).encode(),
            {"Content-Type": "application/json"}, seconds=self.settings.timeout, what=what)
        judge(what, status, _explain(text), retry_after, [self.settings.routing_key])


def _explain(text: str) -> str:
    """PagerDuty's ``message`` and ``errors`` when the answer is its JSON, else the text."""
    try:
        answer = json.loads(text)
    except ValueError:
        return text
    if not isinstance(answer, dict):
        return text
    parts = [str(answer.get("message") or answer.get("status") or "")]
    errors = answer.get("errors")
    if isinstance(errors, list) and errors:
        parts.append("; ".join(str(e) for e in errors))
    return ": ".join(p for p in parts if p)
