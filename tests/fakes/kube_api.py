"""A fake Kubernetes API server for the ``argoproj.io/v1alpha1`` custom resources.

Enough of the API server for the official ``kubernetes`` client to talk to it through a
kubeconfig (``write_kubeconfig``): workflows (list, get, create, patch, replace, delete)
and cronworkflows (get, patch), with the API server's habits:

* every error is a ``Status`` object (``kind: Status``, ``reason``, ``code``, ``details``);
* authentication comes first: no or wrong bearer token is 401 on any path;
* unknown path 404 "the server could not find the requested resource", wrong verb 405;
* PATCH takes ``application/merge-patch+json`` (RFC 7386, null deletes); other patch
  types are 415 (json-patch is real but not implemented here: 415 says so); POST and PUT
  take ``application/json`` (also assumed when no Content-Type is sent), else 415;
* POST honours ``metadata.generateName``, needs ``apiVersion``/``kind``, refuses a
  namespace other than the path's (400) and a taken name (409 AlreadyExists).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.fakes import FakeServer, WorkflowStore

API = "/apis/argoproj.io/v1alpha1/namespaces/{namespace}"
_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
            405: "MethodNotAllowed", 409: "AlreadyExists", 415: "UnsupportedMediaType",
            422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
            503: "ServiceUnavailable", 504: "Timeout"}
_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
                "application/apply-patch+yaml")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


class FakeKubeAPI(FakeServer):
    def __init__(self, token: str | None = "kube-token", store: WorkflowStore | None = None
                 ) -> None:
        super().__init__()
        self.token = token
        self.store = store or WorkflowStore()
        self.add_workflow = self.store.add_workflow
        self.add_cron_workflow = self.store.add_cron_workflow
        self.route(f"{API}/workflows", get=self._list, post=self._create)
        self.route(f"{API}/workflows/{{name}}", get=self._get, patch=self._patch,
                   put=self._replace, delete=self._delete)
        self.route(f"{API}/cronworkflows/{{name}}", get=self._get, patch=self._patch)

    def write_kubeconfig(self, path: Path, *, token: str | None = None,
                         namespace: str = "default") -> Path:
        """A kubeconfig pointing at this fake (JSON is YAML), current context ``fake``."""
        user = {"token": token if token is not None else (self.token or "")}
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": user}],
            "contexts": [{"name": "fake", "context": {
                "cluster": "fake", "user": "fake", "namespace": namespace}}],
        }
        path.write_text(json.dumps(config, indent=2))
        return path

    # --- the API's conventions --------------------------------------------------------
    def error(self, status: int, message: str, **extra: Any) -> web.Response:
        body: dict[str, Any] = {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": extra.get("reason", _REASONS.get(status, "Unknown")),
            "details": extra.get("details", {}), "code": status}
        if status == 401:
            body.pop("details")
        return web.json_response(body, status=status)

    async def not_routed(self, request: web.Request, allowed: list[str]) -> web.StreamResponse:
        if allowed:
            return self.error(405, "the server does not allow this method on the requested "
                                   "resource")
        return self.error(404, "the server could not find the requested resource")

    async def authorize(self, request: web.Request) -> web.StreamResponse | None:
        if self.token is None or request.headers.get("Authorization") == f"Bearer {self.token}":
            return None
        return self.error(401, "Unauthorized")

    def _plural(self, request: web.Request) -> str:
        return "cronworkflows" if "/cronworkflows/" in request.path else "workflows"

    def _objects(self, plural: str) -> dict[tuple[str, str], dict[str, Any]]:
        return self.store.cron_workflows if plural == "cronworkflows" else self.store.workflows

    def _not_found(self, plural: str, name: str) -> web.Response:
        return self.error(404, f'{plural}.argoproj.io "{name}" not found',
                          details={"name": name, "group": "argoproj.io", "kind": plural})

    async def _json_body(self, request: web.Request, accepted: tuple[str, ...]
                         ) -> tuple[Any, web.Response | None]:
        # No Content-Type means the first supported type, as the API server negotiates it.
        content_type = request.content_type if request.headers.get("Content-Type") else accepted[0]
        if content_type not in accepted:
            return None, self.error(415, "the body of the request was in an unknown format - "
                                         "accepted media types include: " + ", ".join(accepted))
        try:
            return json.loads(await request.read()), None
        except ValueError as exc:
            return None, self.error(400, f"error decoding request body: {exc}")

    # --- handlers ---------------------------------------------------------------------
    async def _list(self, request: web.Request, p: dict[str, str]) -> web.Response:
        items = [wf for (ns, _), wf in sorted(self.store.workflows.items())
                 if ns == p["namespace"]]
        return web.json_response({"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowList",
                                  "metadata": {"resourceVersion": "1"}, "items": items})

    async def _get(self, request: web.Request, p: dict[str, str]) -> web.Response:
        plural = self._plural(request)
        obj = self._objects(plural).get((p["namespace"], p["name"]))
        if obj is None:
            return self._not_found(plural, p["name"])
        return web.json_response(obj)

    async def _create(self, request: web.Request, p: dict[str, str]) -> web.Response:
        body, refusal = await self._json_body(request, ("application/json", "application/yaml"))
        if refusal is not None:
            return refusal
        if not isinstance(body, dict) or not body.get("kind") or not body.get("apiVersion"):
            return self.error(400, "Object 'Kind' is missing in request body")
        if body["kind"] != "Workflow" or body["apiVersion"] != "argoproj.io/v1alpha1":
            return self.error(400, f"the API version in the data ({body['apiVersion']}) does "
                                   "not match the expected API version (argoproj.io/v1alpha1)")
        meta = body.get("metadata") or {}
        if meta.get("namespace") not in (None, "", p["namespace"]):
            return self.error(400, "the namespace of the provided object does not match the "
                                   "namespace sent on the request")
        if not meta.get("name") and not meta.get("generateName"):
            return self.error(422, 'Workflow.argoproj.io "" is invalid: metadata.name: '
                                   "Required value: name or generateName is required")
        name = meta.get("name")
        if name and (p["namespace"], name) in self.store.workflows:
            return self.error(409, f'workflows.argoproj.io "{name}" already exists',
                              details={"name": name, "group": "argoproj.io",
                                       "kind": "workflows"})
        wf = self.store.create_workflow(p["namespace"], body)
        return web.json_response(wf, status=201)

    async def _patch(self, request: web.Request, p: dict[str, str]) -> web.Response:
        plural = self._plural(request)
        if request.content_type != "application/merge-patch+json":
            # json-patch and apply-patch are real, but not implemented by this fake.
            return self.error(415, "the body of the request was in an unknown format - "
                                   "accepted media types include: " + ", ".join(_PATCH_TYPES))
        try:
            patch = json.loads(await request.read())
        except ValueError as exc:
            return self.error(400, f"error decoding patch: {exc}")
        objects = self._objects(plural)
        obj = objects.get((p["namespace"], p["name"]))
        if obj is None:
            return self._not_found(plural, p["name"])
        if not isinstance(patch, dict):
            return self.error(400, "error decoding patch: not a JSON object")
        patched = merge_patch(obj, patch)
        patched["metadata"] = {**obj["metadata"], **patched.get("metadata", {}),
                               "name": obj["metadata"]["name"]}
        self.store.touch(patched)
        objects[(p["namespace"], p["name"])] = patched
        return web.json_response(patched)

    async def _replace(self, request: web.Request, p: dict[str, str]) -> web.Response:
        body, refusal = await self._json_body(request, ("application/json", "application/yaml"))
        if refusal is not None:
            return refusal
        if (p["namespace"], p["name"]) not in self.store.workflows:
            return self._not_found("workflows", p["name"])
        if not isinstance(body, dict) or (body.get("metadata") or {}).get("name") != p["name"]:
            return self.error(400, "the name of the object does not match the name on the URL")
        self.store.touch(body)
        self.store.workflows[(p["namespace"], p["name"])] = body
        return web.json_response(body)

    async def _delete(self, request: web.Request, p: dict[str, str]) -> web.Response:
        if self.store.workflows.pop((p["namespace"], p["name"]), None) is None:
            return self._not_found("workflows", p["name"])
        return web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                  "status": "Success", "details": {
                                      "name": p["name"], "group": "argoproj.io",
                                      "kind": "workflows"}})
