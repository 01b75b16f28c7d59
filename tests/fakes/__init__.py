"""Fake upstream APIs for the service tests: small aiohttp apps on 127.0.0.1, port 0.

Each fake records every request (method, path, query, headers, raw and JSON body), lets a
test script answers per method and path (``fake.script("PUT", path, [503, Reply(429,
headers={"Retry-After": "7"}), 200])``: statuses of 300 and up are answered in the API's
own error format, lower ones and ``Reply(delay=...)`` let the fake answer normally), and
otherwise answers like the real API, rejecting what the real API rejects.

``WorkflowStore`` is the in-memory cluster state the Argo Server and Kubernetes fakes
share: Workflows and CronWorkflows as the API returns them.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import ssl
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from aiohttp import web

__all__ = ["FakeServer", "Recorded", "Reply", "Route", "WorkflowStore"]

Handler = Callable[[web.Request, dict[str, str]], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]   # names lower-cased
    raw: bytes
    json: Any                 # the parsed body, or None when empty or not JSON

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()


@dataclass(frozen=True, slots=True)
class Reply:
    """A scripted answer. ``status=None`` (after ``delay``) lets the fake answer normally."""

    status: int | None = None
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class Route:
    """A path pattern (``{name}`` matches one segment) and its handlers by method."""

    pattern: str
    methods: Mapping[str, Handler]

    def match(self, path: str) -> dict[str, str] | None:
        regex = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.pattern)) + "$"
        m = re.match(regex, path)
        return m.groupdict() if m else None


class FakeServer:
    """Recording, scripting and routing shared by the fakes; subclasses add the API."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        self.requests: list[Recorded] = []
        self.url = ""
        self.port = 0             # kept after close(), so a restarted fake is at the same URL
        self._scripts: dict[tuple[str, str], deque[Reply]] = {}
        self._routes: list[Route] = []
        self._runner: web.AppRunner | None = None
        self.app = web.Application(middlewares=[self._record])
        self.app.router.add_route("*", "/{tail:.*}", self._dispatch)

    # --- what subclasses provide -------------------------------------------------------
    def error(self, status: int, message: str, **extra: Any) -> web.Response:
        """An error answer in the API's own format."""
        return web.json_response({"code": status, "message": message}, status=status)

    async def not_routed(self, request: web.Request, allowed: list[str]) -> web.StreamResponse:
        """Unknown path (``allowed`` empty) or wrong method for a known path."""
        if allowed:
            return self.error(405, "method not allowed")
        return self.error(404, "not found")

    async def authorize(self, request: web.Request) -> web.StreamResponse | None:
        """None when the request may go on; else the API's refusal."""
        return None

    authorize_before_routing = True

    # --- the machinery -----------------------------------------------------------------
    def route(self, pattern: str, **methods: Handler) -> None:
        self._routes.append(Route(pattern, {m.upper(): h for m, h in methods.items()}))

    def script(self, method: str, path: str, replies: Iterable[int | Reply]) -> None:
        queue = self._scripts.setdefault((method.upper(), path), deque())
        for reply in replies:
            if isinstance(reply, int):
                reply = Reply(reply if reply >= 300 else None)
            queue.append(reply)

    def calls(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        return [r for r in self.requests
                if (method is None or r.method == method.upper())
                and (path is None or r.path == path)]

    @web.middleware
    async def _record(self, request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                      ) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self.requests.append(Recorded(
            request.method, request.path, dict(request.query),
            {k.lower(): v for k, v in request.headers.items()}, raw, body))
        queue = self._scripts.get((request.method, request.path))
        if queue:
            reply = queue.popleft()
            if reply.delay:
                await asyncio.sleep(reply.delay)
            if reply.status is not None:
                if reply.body is None:
                    resp = self.error(reply.status, f"scripted {reply.status}")
                else:
                    resp = web.json_response(reply.body, status=reply.status)
                resp.headers.update(reply.headers)
                return resp
        return await handler(request)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if self.authorize_before_routing and (refusal := await self.authorize(request)):
            return refusal
        allowed: list[str] = []
        for route in self._routes:
            params = route.match(request.path)
            if params is None:
                continue
            handler = route.methods.get(request.method)
            if handler is None:
                allowed.extend(route.methods)
                continue
            if not self.authorize_before_routing and (refusal := await self.authorize(request)):
                return refusal
            return await handler(request, params)
        return await self.not_routed(request, allowed)

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self.ssl_context)
        await site.start()
        port = self.port = self._runner.addresses[0][1]
        scheme = "https" if self.ssl_context else "http"
        self.url = f"{scheme}://127.0.0.1:{port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()


def now_stamp() -> str:
    """Now, as Argo writes timestamps."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class WorkflowStore:
    """Workflows and CronWorkflows by (namespace, name), shaped as the API returns them."""

    SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"   # apimachinery's generateName alphabet

    def __init__(self, seed: int = 0) -> None:
        self.workflows: dict[tuple[str, str], dict[str, Any]] = {}
        self.cron_workflows: dict[tuple[str, str], dict[str, Any]] = {}
        self._version = 1000
        self._random = random.Random(seed)

    def _meta(self, namespace: str, name: str, labels: Mapping[str, str] | None,
              generate_name: str | None = None) -> dict[str, Any]:
        self._version += 1
        meta: dict[str, Any] = {
            "name": name, "namespace": namespace, "uid": str(uuid.UUID(int=self._version)),
            "resourceVersion": str(self._version), "generation": 1,
            "creationTimestamp": now_stamp(), "labels": dict(labels or {})}
        if generate_name:
            meta["generateName"] = generate_name
        return meta

    def touch(self, obj: dict[str, Any]) -> None:
        self._version += 1
        obj["metadata"]["resourceVersion"] = str(self._version)

    def generate_name(self, prefix: str) -> str:
        return prefix + "".join(self._random.choice(self.SUFFIX_ALPHABET) for _ in range(5))

    def add_workflow(self, namespace: str, name: str, phase: str = "Failed", *,
                     message: str | None = None, nodes: Iterable[Mapping[str, Any]] = (),
                     labels: Mapping[str, str] | None = None,
                     spec: Mapping[str, Any] | None = None,
                     generate_name: str | None = None) -> dict[str, Any]:
        """``nodes``: ``{"name", "phase", "message"?, "exit_code"?, "type"?}`` each."""
        status: dict[str, Any] = {"phase": phase, "startedAt": now_stamp()}
        if phase in ("Succeeded", "Failed", "Error"):
            status["finishedAt"] = now_stamp()
        if message:
            status["message"] = message
        node_map: dict[str, Any] = {}
        for i, node in enumerate(nodes):
            node_id = f"{name}-{1000 + i}"
            entry: dict[str, Any] = {
                "id": node_id, "name": f"{name}.{node['name']}", "displayName": node["name"],
                "type": node.get("type", "Pod"), "phase": node.get("phase", "Failed"),
                "templateName": node["name"], "startedAt": now_stamp(), "finishedAt": now_stamp()}
            if node.get("message"):
                entry["message"] = node["message"]
            if node.get("exit_code") is not None:
                entry["outputs"] = {"exitCode": str(node["exit_code"])}
            node_map[node_id] = entry
        if node_map:
            status["nodes"] = node_map
        all_labels = {"workflows.argoproj.io/phase": phase, **(labels or {})}
        if "finishedAt" in status:
            all_labels["workflows.argoproj.io/completed"] = "true"
        wf = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
              "metadata": self._meta(namespace, name, all_labels, generate_name),
              "spec": dict(spec or {"entrypoint": "main",
                                    "templates": [{"name": "main", "container": {
                                        "image": "busybox", "command": ["false"]}}]}),
              "status": status}
        self.workflows[(namespace, name)] = wf
        return wf

    def add_cron_workflow(self, namespace: str, name: str, *, suspend: bool = False,
                          schedule: str = "0 * * * *") -> dict[str, Any]:
        cwf = {"apiVersion": "argoproj.io/v1alpha1", "kind": "CronWorkflow",
               "metadata": self._meta(namespace, name, None),
               "spec": {"schedule": schedule, "suspend": suspend, "workflowSpec": {
                   "entrypoint": "main", "templates": [{"name": "main"}]}},
               "status": {}}
        self.cron_workflows[(namespace, name)] = cwf
        return cwf

    def create_workflow(self, namespace: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Store a new Workflow (``metadata.name`` or ``generateName``); no status yet."""
        meta = dict(obj.get("metadata") or {})
        name = meta.get("name") or self.generate_name(str(meta["generateName"]))
        full = self._meta(namespace, name, meta.get("labels"), meta.get("generateName"))
        if meta.get("annotations"):
            full["annotations"] = dict(meta["annotations"])
        wf = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": full,
              "spec": dict(obj.get("spec") or {}), "status": {}}
        self.workflows[(namespace, name)] = wf
        return wf

    def phase(self, namespace: str, name: str) -> str | None:
        wf = self.workflows.get((namespace, name))
        return None if wf is None else wf.get("status", {}).get("phase")
