"""A fake PagerDuty Events API v2 (``POST /v2/enqueue``) that validates like the real one.

Success is 202 ``{"status": "success", "message": "Event processed", "dedup_key": ...}``.
A bad event is 400 ``{"status": "invalid event", "message": "Event object is invalid",
"errors": [...]}``: missing routing_key or event_action, an unknown event_action, a resolve
or acknowledge without dedup_key, a trigger without payload.summary, source or severity, a
severity outside critical/error/warning/info, a summary over 1024 characters. Scripted 429
and 5xx answer in PagerDuty's format. ``incidents`` tracks each dedup_key's state.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web

from tests.fakes import FakeServer

SEVERITIES = ("critical", "error", "warning", "info")
ACTIONS = ("trigger", "acknowledge", "resolve")


class FakePagerDuty(FakeServer):
    path = "/v2/enqueue"

    def __init__(self, routing_keys: set[str] | None = None) -> None:
        super().__init__()
        self.routing_keys = routing_keys      # None: any well-formed key is accepted
        self.events: list[dict[str, Any]] = []
        self.incidents: dict[str, str] = {}   # dedup_key -> triggered | acknowledged | resolved
        self.route(self.path, post=self._enqueue)

    @property
    def events_url(self) -> str:
        return self.url + self.path

    def error(self, status: int, message: str, **extra: Any) -> web.Response:
        if status == 429:
            body = {"status": "throttle event", "message": "Requests for this service are "
                    "arriving too quickly. Please retry later."}
        elif status >= 500:
            body = {"status": "error", "message": "Internal server error"}
        else:
            body = {"status": "invalid event", "message": "Event object is invalid",
                    "errors": extra.get("errors", [message])}
        return web.json_response(body, status=status)

    async def _enqueue(self, request: web.Request, params: dict[str, str]) -> web.Response:
        try:
            event = json.loads(await request.read())
        except ValueError:
            return self.error(400, "invalid", errors=["Malformed JSON"])
        if not isinstance(event, dict):
            return self.error(400, "invalid", errors=["Event must be a JSON object"])
        errors = _problems(event)
        if not errors and self.routing_keys is not None \
                and event["routing_key"] not in self.routing_keys:
            errors = ["Invalid routing key"]
        if errors:
            return self.error(400, "invalid", errors=errors)
        action = event["event_action"]
        key = event.get("dedup_key") or uuid.uuid4().hex
        self.events.append(event)
        self.incidents[key] = {"trigger": "triggered", "acknowledge": "acknowledged",
                               "resolve": "resolved"}[action]
        return web.json_response({"status": "success", "message": "Event processed",
                                  "dedup_key": key}, status=202)


def _problems(event: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    if not isinstance(event.get("routing_key"), str) or not event["routing_key"]:
        errors.append("'routing_key' is missing or blank")
    action = event.get("event_action")
    if action is None:
        errors.append("'event_action' is missing or blank")
    elif action not in ACTIONS:
        errors.append("'event_action' must be one of trigger, acknowledge or resolve")
    if action in ("acknowledge", "resolve") and not event.get("dedup_key"):
        errors.append("'dedup_key' is missing or blank")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            errors.append("'payload' is missing or blank")
            return errors
        for key in ("summary", "source", "severity"):
            if not isinstance(payload.get(key), str) or not payload[key]:
                errors.append(f"'payload.{key}' is missing or blank")
        if isinstance(payload.get("severity"), str) and payload["severity"] \
                and payload["severity"] not in SEVERITIES:
            errors.append("'payload.severity' must be one of critical, error, warning or info")
        if isinstance(payload.get("summary"), str) and len(payload["summary"]) > 1024:
            errors.append("'payload.summary' must be at most 1024 characters")
    return errors
