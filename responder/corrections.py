"""An operator corrects an alert's analysis: ``POST /api/v1/alerts/{id}/category`` and the
console's form (``POST /ui/alerts/{id}/category``) both call ``correct``.

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
from responder.approvals import Refused
from responder.journal import JournalUnavailable, journal_id
from responder.service import Service

_encode = msgspec.json.Encoder().encode
MAX_TEXT = 16 * 1024  # what is kept for training: the analysis reads no more either


def _answer(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encode(data), status=status, content_type="application/json")


async def correct(service: Service, raw_id: str, category: object, by: str) -> dict[str, Any]:
    """Record ``by``'s ``category`` for receipt ``raw_id`` and apply it at once; returns
    ``{"id", "category", "previous"}``. ``Refused`` says why not (404 no such alert, 400
    unknown category or no failure text, 503 journal unavailable)."""
    receipt_id = journal_id(raw_id)
    if receipt_id is None:
        raise Refused(404, f"no alert with id {raw_id[:40]!r}")
    if not isinstance(category, str) or category not in CATEGORIES:
        raise Refused(400, f"category: expected one of {', '.join(CATEGORIES)}, "
                           f"got {category!r}")
    try:
        stored = await service.journal.receipt_alert(receipt_id)
        if stored is None:
            raise Refused(404, f"no alert with id {raw_id}")
        alert = stored["alert"]
        text = clean(alert_text(alert.get("labels") or {}, alert.get("annotations") or {}))
        if not text.strip():
            raise Refused(400, "the alert has no failure text (description, message, "
                               "summary, reason, exit_code) to correct")
        previous = (stored["analysis"] or {}).get("category")
        key = text_key(text)
        await service.journal.record_correction(
            text_key=key, category=category, text=text[:MAX_TEXT],
            receipt_id=receipt_id, by=by, previous=previous)
    except JournalUnavailable:
        raise Refused(503, "journal unavailable") from None
    service.corrections.add(key, category)
    return {"id": int(raw_id), "category": category, "previous": previous}


def category_handler(
        service_of: Callable[[web.Request], Service],
        who: Callable[[web.Request, object], str],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The API's handler, given how to find the service and the name the audit log records
    (``who(request, claimed)``; the caller owns the ``AppKey`` and the auth)."""

    async def handler(request: web.Request) -> web.Response:
        service = service_of(request)
        raw_id = request.match_info["id"]
        if journal_id(raw_id) is None:
            return _answer({"error": f"no alert with id {raw_id[:40]!r}"}, 404)
        try:
            body = await request.json()
        except ValueError:
            return _answer({"error": "body: expected a JSON object {\"category\": ...}"}, 400)
        if not isinstance(body, dict):
            body = {}
        try:
            done = await correct(service, raw_id, body.get("category"),
                                 who(request, body.get("by")))
        except Refused as exc:
            return _answer({"error": exc.message}, exc.status)
        return _answer(done)

    return handler
