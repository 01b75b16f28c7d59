"""A fake Argo Server: the grpc-gateway REST API of ``argo server`` for workflows and crons.

Shaped after argo-workflows' ``api/openapi-spec/swagger.json`` and its server code:

* errors are gRPC statuses as JSON, ``{"code": 5, "message": "..."}``;
* a missing or wrong bearer token: 401, code 16, "token not valid. see ...";
* the gateway answers an unknown ``/api/`` path **501** (code 12, "Not Implemented") and a
  known path with the wrong verb **501** (code 12, "Method Not Allowed"): grpc-gateway
  v1.16 with ``WithProtoErrorHandler``, as ``argo server`` configures it, not 404/405;
* request bodies are decoded as JSON whatever the Content-Type (Argo registers its JSON
  marshaler for ``*``); a body that is not JSON, or a known field of the wrong type, is
  400 code 3; unknown fields are ignored, as Go's ``encoding/json`` does;
* retry refuses a workflow that is not Failed/Error (400, "Cannot retry a workflow in phase
  Running"; Succeeded needs restartSuccessful and nodeFieldSelector), else the workflow
  goes Running; resubmit creates a new workflow named from ``generateName`` (or
  ``<name>-``) plus a suffix; stop/terminate set ``spec.shutdown`` and refuse a completed
  workflow (500, "cannot shutdown a completed workflow", what the server really answers).
"""

from __future__ import annotations

import json
import ssl
from typing import Any

from aiohttp import web

from tests.fakes import FakeServer, WorkflowStore

GRPC_HTTP = {3: 400, 5: 404, 6: 409, 12: 501, 13: 500, 14: 503, 16: 401}
HTTP_GRPC = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 429: 8, 500: 13, 501: 12, 503: 14,
             504: 4}
_REQUESTS: dict[str, dict[str, type]] = {
    "retry": {"name": str, "namespace": str, "restartSuccessful": bool,
              "nodeFieldSelector": str, "parameters": list},
    "resubmit": {"name": str, "namespace": str, "memoized": bool, "parameters": list},
    "stop": {"name": str, "namespace": str, "nodeFieldSelector": str, "message": str},
    "terminate": {"name": str, "namespace": str},
    "suspend": {"name": str, "namespace": str},
    "resume": {"name": str, "namespace": str, "nodeFieldSelector": str},
}
_GO_TYPES = {str: "string", bool: "bool", list: "[]string"}


class BadRequest(Exception):
    pass


class FakeArgoServer(FakeServer):
    authorize_before_routing = False    # the gateway routes first; auth is a gRPC interceptor

    def __init__(self, token: str | None = "argo-token", store: WorkflowStore | None = None,
                 *, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(ssl_context=ssl_context)
        self.token = token
        self.store = store or WorkflowStore()
        self.add_workflow = self.store.add_workflow
        self.add_cron_workflow = self.store.add_cron_workflow
        wf = "/api/v1/workflows/{namespace}/{name}"
        cron = "/api/v1/cron-workflows/{namespace}/{name}"
        self.route("/api/v1/workflows/{namespace}", get=self._list_workflows)
        self.route(wf, get=self._get_workflow, delete=self._delete_workflow)
        for action in ("retry", "resubmit", "stop", "terminate", "suspend", "resume"):
            self.route(f"{wf}/{action}", put=self._workflow_action)
        self.route(cron, get=self._get_cron)
        for action in ("suspend", "resume"):
            self.route(f"{cron}/{action}", put=self._cron_action)

    # --- the API's conventions --------------------------------------------------------
    def error(self, status: int, message: str, **extra: Any) -> web.Response:
        code = extra.get("grpc_code", HTTP_GRPC.get(status, 2))
        return web.json_response({"code": code, "message": message}, status=status)

    def grpc_error(self, code: int, message: str) -> web.Response:
        return self.error(GRPC_HTTP.get(code, 500), message, grpc_code=code)

    async def not_routed(self, request: web.Request, allowed: list[str]) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return web.Response(status=404, text="404 page not found\n")
        return self.grpc_error(12, "Method Not Allowed" if allowed else "Not Implemented")

    async def authorize(self, request: web.Request) -> web.StreamResponse | None:
        if self.token is None or request.headers.get("Authorization") == f"Bearer {self.token}":
            return None
        return self.grpc_error(
            16, "token not valid. see https://argo-workflows.readthedocs.io/en/latest/faq/")

    @staticmethod
    async def _body(request: web.Request, action: str) -> dict[str, Any]:
        raw = await request.read()
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise BadRequest(f"invalid character in request body: {exc}") from exc
        if not isinstance(body, dict):
            raise BadRequest(f"json: cannot unmarshal {type(body).__name__} into Go value of "
                             f"type {action}Request")
        for key, kind in _REQUESTS[action].items():
            if key in body and not isinstance(body[key], kind):
                raise BadRequest(f"json: cannot unmarshal {type(body[key]).__name__} into Go "
                                 f"struct field .{key} of type {_GO_TYPES[kind]}")
        return body

    def _workflow(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.store.workflows.get((namespace, name))

    def _not_found(self, kind: str, name: str) -> web.Response:
        return self.grpc_error(5, f'{kind}.argoproj.io "{name}" not found')

    # --- handlers ---------------------------------------------------------------------
    async def _list_workflows(self, request: web.Request, p: dict[str, str]) -> web.Response:
        items = [wf for (ns, _), wf in sorted(self.store.workflows.items())
                 if ns == p["namespace"]]
        return web.json_response({"metadata": {}, "items": items})

    async def _get_workflow(self, request: web.Request, p: dict[str, str]) -> web.Response:
        wf = self._workflow(p["namespace"], p["name"])
        if wf is None:
            return self._not_found("workflows", p["name"])
        return web.json_response(wf)

    async def _delete_workflow(self, request: web.Request, p: dict[str, str]) -> web.Response:
        if self.store.workflows.pop((p["namespace"], p["name"]), None) is None:
            return self._not_found("workflows", p["name"])
        return web.json_response({})

    async def _get_cron(self, request: web.Request, p: dict[str, str]) -> web.Response:
        cwf = self.store.cron_workflows.get((p["namespace"], p["name"]))
        if cwf is None:
            return self._not_found("cronworkflows", p["name"])
        return web.json_response(cwf)

    async def _workflow_action(self, request: web.Request, p: dict[str, str]) -> web.Response:
        action = request.path.rsplit("/", 1)[1]
        try:
            body = await self._body(request, action)
        except BadRequest as exc:
            return self.grpc_error(3, str(exc))
        ns, name = p["namespace"], p["name"]
        wf = self._workflow(ns, name)
        if wf is None:
            return self._not_found("workflows", name)
        phase = wf["status"].get("phase", "")
        completed = phase in ("Succeeded", "Failed", "Error")
        if action == "retry":
            if phase == "Succeeded" and not (body.get("restartSuccessful")
                                            and body.get("nodeFieldSelector")):
                return self.grpc_error(3, "To retry a succeeded workflow, set the options "
                                          "restartSuccessful and nodeFieldSelector")
            if phase not in ("Failed", "Error", "Succeeded"):
                return self.grpc_error(3, f"Cannot retry a workflow in phase {phase}")
            wf["status"]["phase"] = "Running"
            wf["status"].pop("message", None)
            wf["status"].pop("finishedAt", None)
            wf["status"]["nodes"] = {k: n for k, n in wf["status"].get("nodes", {}).items()
                                     if n.get("phase") not in ("Failed", "Error")}
            wf["metadata"]["labels"]["workflows.argoproj.io/phase"] = "Running"
            wf["metadata"]["labels"].pop("workflows.argoproj.io/completed", None)
        elif action == "resubmit":
            if body.get("memoized") and phase not in ("Failed", "Error"):
                return self.grpc_error(
                    3, "workflow must be Failed/Error to resubmit in memoized mode")
            labels = {k: v for k, v in wf["metadata"].get("labels", {}).items()
                      if k not in ("workflows.argoproj.io/phase",
                                   "workflows.argoproj.io/completed")}
            labels["workflows.argoproj.io/resubmitted-from-workflow"] = name
            spec = {k: v for k, v in wf["spec"].items() if k != "shutdown"}
            wf = self.store.create_workflow(ns, {"metadata": {
                "generateName": wf["metadata"].get("generateName") or f"{name}-",
                "labels": labels}, "spec": spec})
            wf["status"]["phase"] = "Pending"
        elif action in ("stop", "terminate"):
            if completed:
                return self.grpc_error(13, f'cannot shutdown a completed workflow: workflow: '
                                           f'"{name}", namespace: "{ns}"')
            wf["spec"]["shutdown"] = action.capitalize()
        elif action == "suspend":
            if completed:
                return self.grpc_error(3, "cannot suspend completed workflows")
            wf["spec"]["suspend"] = True
        else:
            wf["spec"].pop("suspend", None)
        self.store.touch(wf)
        return web.json_response(wf)

    async def _cron_action(self, request: web.Request, p: dict[str, str]) -> web.Response:
        action = request.path.rsplit("/", 1)[1]
        try:
            await self._body(request, action)
        except BadRequest as exc:
            return self.grpc_error(3, str(exc))
        cwf = self.store.cron_workflows.get((p["namespace"], p["name"]))
        if cwf is None:
            return self._not_found("cronworkflows", p["name"])
        cwf["spec"]["suspend"] = action == "suspend"
        self.store.touch(cwf)
        return web.json_response(cwf)
