"""``POST /api/v1/alerts/{id}/category``: an operator corrects an alert's analysis.

The correction is journaled (with an audit event) under the hash of the alert's own
failure text, normalised (``responder.analyze.feedback``), and added to the service's
in-memory ``Corrections`` at once: the next alert with the same text, on this replica, gets
the corrected category (``source: feedback``); after a restart the journal restores it;
``responder train`` folds the corrected texts into the next model.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from responder.analyze import CATEGORIES, alert_text, clean, text_key
from responder.journal import JournalUnavailable
from responder.service import Service

_encode = msgspec.json.Encoder().encode
MAX_TEXT = 16 * 1024  # what is kept for training: the analysis reads no more either


def _answer(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encode(data), status=status, content_type="application/json")


def category_handler(
        service_of: Callable[[web.Request], Service],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The handler, given how to find the service (the caller owns the ``AppKey``)."""

    async def handler(request: web.Request) -> web.Response:
        service = service_of(request)
        raw_id = request.match_info["id"]
        if not raw_id.isdigit():
            return _answer({"error": f"no alert with id {raw_id!r}"}, 404)
        try:
            body = await request.json()
        except ValueError:
            return _answer({"error": "body: expected a JSON object {\"category\": ...}"}, 400)
        category = body.get("category") if isinstance(body, dict) else None
        if not isinstance(category, str) or category not in CATEGORIES:
            return _answer({"error": f"category: expected one of {', '.join(CATEGORIES)}, "
                                     f"got {category!r}"}, 400)
        try:
            stored = await service.journal.receipt_alert(int(raw_id))
            if stored is None:
                return _answer({"error": f"no alert with id {raw_id}"}, 404)
            alert = stored["alert"]
            text = clean(alert_text(alert.get("labels") or {}, alert.get("annotations") or {}))
            if not text.strip():
                return _answer({"error": "the alert has no failure text (description, message, "
                                         "summary, reason, exit_code) to correct"}, 400)
            previous = (stored["analysis"] or {}).get("category")
            key = text_key(text)
            who = request.headers.get("X-Responder-User") or (request.remote or "unknown")
            if isinstance(body.get("by"), str) and body["by"].strip():
                who = body["by"].strip()[:100]
            await service.journal.record_correction(
                text_key=key, category=category, text=text[:MAX_TEXT],
                receipt_id=int(raw_id), by=who, previous=previous)
        except JournalUnavailable:
            return _answer({"error": "journal unavailable"}, 503)
        service.corrections.add(key, category)
        return _answer({"id": int(raw_id), "category": category, "previous": previous})

    return handler
