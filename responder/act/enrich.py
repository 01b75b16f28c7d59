"""The workflow's own failure messages, to classify more than the alert's annotations.

An alert rule only knows that a workflow failed; the workflow status says why
(``OOMKilled (exit code 137)``, ``ErrImagePull``, a Python traceback's last line). Reading
it is best effort: analysis must finish from the annotations alone when the cluster is
slow, unreachable or the workflow is gone, so every failure here yields ``[]``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

from responder.act.argo import Backend

log = logging.getLogger(__name__)

FAILED_NODE_PHASES = frozenset({"Failed", "Error"})
_MAX_NODES_BYTES = 16 << 20


async def failure_messages(backend: Backend, namespace: str, workflow: str, *,
                           timeout: float = 2.0,  # noqa: ASYNC109 (a budget, not a cancel scope)
                           max_messages: int = 20,
                           max_chars: int = 500) -> list[str]:
    """``status.message`` and each failed node's message and exit code, deduplicated."""
    try:
        async with asyncio.timeout(timeout):
            wf = await backend.get_workflow(namespace, workflow)
        if not wf:
            return []
        return _bounded(_messages(wf), max_messages, max_chars)
    except Exception as exc:  # best effort by design: any failure means "no extra text"
        log.info("failure messages of workflow %s/%s unavailable: %s: %s",
                 namespace, workflow, type(exc).__name__, exc)
        return []


def _messages(wf: Mapping[str, Any]) -> Iterable[str]:
    status = wf.get("status")
    if not isinstance(status, Mapping):
        return
    if status.get("message"):
        yield str(status["message"])
    nodes = status.get("nodes")
    if not isinstance(nodes, Mapping) and status.get("compressedNodes"):
        nodes = _decompress(str(status["compressedNodes"]))
    if not isinstance(nodes, Mapping):
        return
    failed = [n for n in nodes.values()
              if isinstance(n, Mapping) and n.get("phase") in FAILED_NODE_PHASES]
    failed.sort(key=lambda n: (str(n.get("finishedAt") or ""), str(n.get("name") or "")))
    for node in failed:
        message = str(node.get("message") or "").strip()
        outputs = node.get("outputs")
        code = str(outputs.get("exitCode") or "") if isinstance(outputs, Mapping) else ""
        if code and code != "0" and f"exit code {code}" not in message:
            message = f"{message} (exit code {code})" if message else f"exit code {code}"
        if message:
            yield message


def _decompress(encoded: str) -> Any:
    """Argo stores large node maps gzipped and base64-encoded in ``compressedNodes``."""
    try:
        raw = base64.b64decode(encoded)
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        data = inflater.decompress(raw, _MAX_NODES_BYTES)
        return json.loads(data) if not inflater.unconsumed_tail else None
    except (binascii.Error, zlib.error, ValueError):
        return None


def _bounded(messages: Iterable[str], max_messages: int, max_chars: int) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for message in messages:
        if len(message) > max_chars:
            message = message[: max_chars - 1] + "…"
        if message not in seen:
            seen.add(message)
            out.append(message)
            if len(out) >= max_messages:
                break
    return out
