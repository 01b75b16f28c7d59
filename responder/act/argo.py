"""Acting on Argo Workflows: one ``Backend`` protocol, three ways to reach the cluster.

``ArgoServerBackend`` speaks the Argo Server REST API (the grpc-gateway paths of SPEC §5),
``KubernetesBackend`` patches and creates the ``argoproj.io`` custom resources through the
Kubernetes API (no retry: resetting failed nodes is the Argo Server's job), and
``DryRunBackend`` says what it would do. ``choose_backend`` picks one from the config.

Every action reads the workflow first where the phase decides the outcome: retrying a
Running workflow or stopping a finished one is "nothing to do", not an error. Failures
are ``PermanentError`` or ``TemporaryError(delay)`` by the one HTTP policy of
``responder.errors``. This is the only module that imports ``kubernetes``; the synchronous
client runs in ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.incluster_config import InClusterConfigLoader

from responder.errors import PermanentError, TemporaryError, classify_http_status
from responder.redact import Redactor

log = logging.getLogger(__name__)

WORKFLOW_KINDS = ("argo.retry", "argo.resubmit", "argo.stop", "argo.terminate")
CRON_KINDS = ("argo.suspend_cron", "argo.resume_cron")
KINDS = WORKFLOW_KINDS + CRON_KINDS
RETRYABLE_PHASES = frozenset({"Failed", "Error"})
COMPLETED_PHASES = frozenset({"Succeeded", "Failed", "Error"})
GROUP, VERSION = "argoproj.io", "v1alpha1"
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
RESUBMITTED_FROM_LABEL = "workflows.argoproj.io/resubmitted-from-workflow"
# Labels Argo's own resubmit does not carry over: they describe the old run, not the new.
_RUN_LABELS = frozenset(f"workflows.argoproj.io/{k}" for k in (
    "creator", "creator-email", "creator-preferred-username", "phase", "completed",
    "workflow-archiving-status"))
_DONE = {"argo.retry": "retried", "argo.resubmit": "resubmitted", "argo.stop": "stopped",
         "argo.terminate": "terminated", "argo.suspend_cron": "suspended",
         "argo.resume_cron": "resumed"}


@dataclass(frozen=True, slots=True)
class ArgoSettings:
    server: str | None
    token: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    insecure_skip_verify: bool = False
    timeout: float = 10.0
    ui_url: str | None = None


@dataclass(frozen=True, slots=True)
class KubeSettings:
    kubeconfig: Path | None = None
    context: str | None = None
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class ActionResult:
    outcome: str    # "success" | "nothing_to_do" | "skipped" | "dry_run"
    detail: str
    phase: str | None = None
    response: Mapping[str, Any] | None = None


class Backend(Protocol):
    name: str

    async def get_workflow(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...

    async def execute(self, kind: str, params: Mapping[str, Any]) -> ActionResult: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class _Target:
    kind: str
    namespace: str
    name: str

    @property
    def what(self) -> str:
        noun = "cronworkflow" if self.kind in CRON_KINDS else "workflow"
        return f"{noun} {self.namespace}/{self.name}"


def _target(kind: str, params: Mapping[str, Any]) -> _Target:
    if kind not in KINDS:
        raise PermanentError(f"unknown action {kind}")
    key = "cronworkflow" if kind in CRON_KINDS else "workflow"
    values = [params.get("namespace"), params.get(key)]
    for name, value in zip(("namespace", key), values, strict=True):
        if not isinstance(value, str) or not value:
            raise PermanentError(f"{kind}: parameter {name} is required")
    return _Target(kind, str(values[0]), str(values[1]))


def workflow_phase(wf: Mapping[str, Any]) -> str:
    """The workflow's phase; one the controller has not picked up yet counts as Pending."""
    status = wf.get("status")
    phase = status.get("phase") if isinstance(status, Mapping) else None
    return str(phase) if phase else "Pending"


def _gate(t: _Target, wf: Mapping[str, Any] | None) -> tuple[str, ActionResult | None]:
    """Read before acting: the phase says whether the action has anything to do."""
    if wf is None:
        raise PermanentError(f"{t.what} not found")
    phase = workflow_phase(wf)
    wanted = RETRYABLE_PHASES if t.kind in ("argo.retry", "argo.resubmit") else None
    if (wanted is not None and phase not in wanted) or (
            wanted is None and phase in COMPLETED_PHASES):
        return phase, ActionResult("nothing_to_do", f"workflow is {phase}: nothing to do", phase)
    return phase, None


def _success(t: _Target, phase: str | None, response: Any) -> ActionResult:
    detail = f"{_DONE[t.kind]} {t.what}"
    if t.kind == "argo.resubmit" and isinstance(response, Mapping):
        new = (response.get("metadata") or {}).get("name")
        detail += f" as {new}" if new else ""
    if phase is not None:
        detail += f" (phase was {phase})"
    return ActionResult("success", detail, phase,
                        response if isinstance(response, Mapping) else None)


def _ssl_option(settings: ArgoSettings) -> ssl.SSLContext | bool:
    if settings.insecure_skip_verify:
        return False
    if settings.ca_file is not None:
        return ssl.create_default_context(cafile=str(settings.ca_file))
    return True


def _message(body: Any) -> str:
    """The error text of an Argo (grpc-gateway) or Kubernetes (Status) error body."""
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except ValueError:
            return body[:200] if isinstance(body, str) else ""
    if isinstance(body, Mapping):
        return str(body.get("message") or body.get("error") or "")[:500]
    return ""


class ArgoServerBackend:
    """The Argo Server REST API (``/api/v1/...``) over an aiohttp session the caller owns."""

    name = "argo-server"

    def __init__(self, settings: ArgoSettings, session: aiohttp.ClientSession) -> None:
        if not settings.server:
            raise ValueError("ArgoServerBackend needs argo.server")
        self._base = settings.server.rstrip("/")
        self._session = session
        self._timeout = settings.timeout
        self._ssl = _ssl_option(settings)
        self._headers = {"Accept": "application/json"}
        # What the server echoes (a 403 quoting the token) never leaves this class.
        self._redactor = Redactor([settings.token])
        if settings.token:
            token = settings.token.strip()
            # `argo auth token` prints "Bearer ..."; accept the token with or without it.
            bearer = token if token.lower().startswith("bearer ") else f"Bearer {token}"
            self._headers["Authorization"] = bearer

    async def _request(self, method: str, path: str,
                       body: Mapping[str, Any] | None = None) -> tuple[int, Any, str | None]:
        try:
            async with self._session.request(
                    method, self._base + path, json=body, headers=self._headers, ssl=self._ssl,
                    timeout=aiohttp.ClientTimeout(total=self._timeout)) as resp:
                raw = await resp.read()
                try:
                    data = json.loads(raw) if raw else None
                except ValueError:
                    data = raw.decode("utf-8", "replace")
                return resp.status, data, resp.headers.get("Retry-After")
        except TimeoutError:
            raise TemporaryError(
                f"argo-server {method} {path}: timed out after {self._timeout:g}s") from None
        except aiohttp.ClientError as exc:
            raise TemporaryError(self._redactor.scrub(
                f"argo-server {method} {path}: {type(exc).__name__}: {exc}")) from None

    def _error(self, method: str, path: str, status: int, data: Any,
               retry_after: str | None) -> PermanentError | TemporaryError:
        message = self._redactor.scrub(_message(data))
        text = f"argo-server {method} {path}: HTTP {status}" + (f": {message}" if message else "")
        err = classify_http_status(status, retry_after)
        if isinstance(err, TemporaryError):
            return TemporaryError(text, err.delay)
        return PermanentError(text)

    async def get_workflow(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        path = f"/api/v1/workflows/{quote(namespace, safe='')}/{quote(name, safe='')}"
        status, data, retry_after = await self._request("GET", path)
        if status == 404:
            return None
        if not 200 <= status < 300 or not isinstance(data, Mapping):
            raise self._error("GET", path, status, data, retry_after)
        return data

    async def execute(self, kind: str, params: Mapping[str, Any]) -> ActionResult:
        t = _target(kind, params)
        phase: str | None = None
        if kind in WORKFLOW_KINDS:
            phase, nothing = _gate(t, await self.get_workflow(t.namespace, t.name))
            if nothing is not None:
                return nothing
        ns, name = quote(t.namespace, safe=""), quote(t.name, safe="")
        body: dict[str, Any] = {"name": t.name, "namespace": t.namespace}
        if kind in CRON_KINDS:
            path = f"/api/v1/cron-workflows/{ns}/{name}/{kind[5:-5]}"
        else:
            path = f"/api/v1/workflows/{ns}/{name}/{kind[5:]}"
        if kind == "argo.retry":
            body["restartSuccessful"] = bool(params.get("restart_successful", False))
            body["nodeFieldSelector"] = str(params.get("node_field_selector") or "")
        elif kind == "argo.resubmit":
            body["memoized"] = bool(params.get("memoized", False))
        elif kind == "argo.stop" and params.get("message"):
            body["message"] = str(params["message"])
        status, data, retry_after = await self._request("PUT", path, body)
        if 200 <= status < 300:
            return _success(t, phase, data)
        if status == 404:
            raise PermanentError(f"{t.what} not found")
        message = _message(data)
        # Someone acted between our read and our PUT: the server refuses, the goal is met.
        if (status == 400 and "Cannot retry a workflow in phase" in message) or (
                status == 500 and "cannot shutdown a completed workflow" in message):
            return ActionResult("nothing_to_do", f"{t.what}: {message}: nothing to do", phase)
        raise self._error("PUT", path, status, data, retry_after)

    async def close(self) -> None:
        """The session belongs to the caller; nothing else is held."""


class KubeConfigUnavailable(Exception):
    """No way to reach the Kubernetes API was found; the message says why."""


def load_kube_client(settings: KubeSettings | None, environ: Mapping[str, str] | None = None,
                     *, service_account: Path = SERVICE_ACCOUNT_DIR) -> tuple[Any, str]:
    """A Kubernetes ``ApiClient`` and where its config came from.

    An explicit ``kubernetes.kubeconfig`` wins; without one, the in-cluster service account,
    then ``$KUBECONFIG``. Never ``~/.kube/config`` by surprise: SPEC §3 says none means
    none. Raises ``KubeConfigUnavailable``.
    """
    env = os.environ if environ is None else environ
    kubeconfig = settings.kubeconfig if settings else None
    context = settings.context if settings else None
    cfg = k8s_client.Configuration()
    cfg.retries = 0     # the action scheduler retries, with backoff; urllib3 must not
    try:
        if kubeconfig is not None:
            source = f"kubeconfig {kubeconfig}"
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(kubeconfig.expanduser()), context=context,
                client_configuration=cfg, persist_config=False)
        elif env.get("KUBERNETES_SERVICE_HOST"):
            source = "in-cluster service account"
            loader = InClusterConfigLoader(  # type: ignore[no-untyped-call]
                token_filename=str(service_account / "token"),
                cert_filename=str(service_account / "ca.crt"), environ=env)
            loader.load_and_set(cfg)  # type: ignore[no-untyped-call]
        elif env.get("KUBECONFIG"):
            source = f"KUBECONFIG {env['KUBECONFIG']}"
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=env["KUBECONFIG"], context=context,
                client_configuration=cfg, persist_config=False)
        else:
            raise KubeConfigUnavailable(
                "no kubernetes.kubeconfig, not in a cluster, KUBECONFIG not set")
    except KubeConfigUnavailable:
        raise
    except Exception as exc:  # the loaders raise ConfigException, OSError, YAML errors...
        raise KubeConfigUnavailable(f"{source}: {type(exc).__name__}: {exc}") from exc
    cfg.proxy = env_proxy(cfg.host, env)
    return k8s_client.ApiClient(configuration=cfg), source


def env_proxy(url: str, environ: Mapping[str, str]) -> str | None:
    """The proxy ``HTTPS_PROXY``/``HTTP_PROXY`` name for ``url`` unless ``NO_PROXY`` covers
    its host: what aiohttp's ``trust_env`` does, for the Kubernetes client (urllib3)."""
    def get(name: str) -> str:
        return environ.get(name.lower()) or environ.get(name.upper()) or ""

    parts = urllib.parse.urlsplit(url)
    proxy = get("https_proxy") if parts.scheme == "https" else get("http_proxy")
    if not proxy or not parts.hostname:
        return None
    host = parts.hostname.lower()
    for entry in get("no_proxy").split(","):
        entry = entry.strip().lower().rsplit(":", 1)[0] if "]" not in entry else entry.strip()
        if entry == "*" or (entry and (host == entry.lstrip(".")
                                       or host.endswith("." + entry.lstrip(".")))):
            return None
    return proxy


def classify_api_exception(exc: BaseException) -> PermanentError | TemporaryError:
    """The HTTP retry policy of ``responder.errors`` applied to the Kubernetes client."""
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        message = _message(exc.body) or str(exc.reason or "")
        text = f"kubernetes API: HTTP {status}" + (f": {message}" if message else "")
        headers = exc.headers or {}
        err = classify_http_status(status, headers.get("Retry-After")) if status else None
        if status == 0 or isinstance(err, TemporaryError):
            return TemporaryError(text, err.delay if isinstance(err, TemporaryError) else None)
        return PermanentError(text)
    if isinstance(exc, (urllib3.exceptions.HTTPError, OSError, TimeoutError)):
        return TemporaryError(f"kubernetes API unreachable: {type(exc).__name__}: {exc}")
    return PermanentError(f"kubernetes client: {type(exc).__name__}: {exc}")


def _resubmission(wf: Mapping[str, Any], namespace: str, name: str) -> dict[str, Any]:
    """The new Workflow a resubmit creates, built the way Argo's own resubmit builds it."""
    meta = wf.get("metadata") or {}
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in _RUN_LABELS}
    labels[RESUBMITTED_FROM_LABEL] = name
    spec = dict(wf.get("spec") or {})
    spec.pop("shutdown", None)
    if spec.get("activeDeadlineSeconds") == 0:     # it was terminated: lift the deadline
        spec.pop("activeDeadlineSeconds")
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Workflow",
        "metadata": {"generateName": meta.get("generateName") or f"{name}-",
                     "namespace": namespace, "labels": labels},
        "spec": spec,
    }


class KubernetesBackend:
    """The ``argoproj.io`` custom resources through the Kubernetes API."""

    name = "kubernetes"

    def __init__(self, settings: KubeSettings | None, *, environ: Mapping[str, str] | None = None,
                 service_account: Path = SERVICE_ACCOUNT_DIR) -> None:
        self._client, self.source = load_kube_client(settings, environ,
                                                     service_account=service_account)
        self._api = k8s_client.CustomObjectsApi(self._client)
        self._timeout = settings.timeout if settings else 10.0

    async def _call(self, t: _Target | None, fn: Callable[..., Any], *args: Any,
                    **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, GROUP, VERSION, *args,
                                           _request_timeout=self._timeout, **kwargs)
        except ApiException as exc:
            if exc.status == 404 and t is not None:
                raise PermanentError(f"{t.what} not found") from exc
            raise classify_api_exception(exc) from exc
        except (urllib3.exceptions.HTTPError, OSError, TimeoutError) as exc:
            raise classify_api_exception(exc) from exc

    async def get_workflow(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        try:
            wf = await self._call(None, self._api.get_namespaced_custom_object,
                                  namespace, "workflows", name)
        except PermanentError as exc:
            if isinstance(exc.__cause__, ApiException) and exc.__cause__.status == 404:
                return None
            raise
        return wf if isinstance(wf, Mapping) else None

    async def execute(self, kind: str, params: Mapping[str, Any]) -> ActionResult:
        t = _target(kind, params)
        api = self._api
        phase: str | None = None
        wf: Mapping[str, Any] | None = None
        if kind in WORKFLOW_KINDS:
            wf = await self.get_workflow(t.namespace, t.name)
            phase, nothing = _gate(t, wf)
            if nothing is not None:
                return nothing
        if kind == "argo.retry":
            return ActionResult(
                "skipped", "argo.retry needs the Argo Server: resetting a workflow's failed "
                "nodes is not available through the Kubernetes API (configure argo.server, "
                "or use argo.resubmit)", phase)
        if kind == "argo.resubmit":
            assert wf is not None
            body = _resubmission(wf, t.namespace, t.name)
            # This client sends no Content-Type on create (the server then assumes JSON);
            # say it anyway, and note _content_type is ignored by this generated method.
            created = await self._call(t, api.create_namespaced_custom_object,
                                       t.namespace, "workflows", body,
                                       _headers={"Content-Type": "application/json"})
            return _success(t, phase, created)
        if kind in ("argo.stop", "argo.terminate"):
            patch: dict[str, Any] = {"spec": {"shutdown": kind[5:].capitalize()}}
            plural = "workflows"
        else:
            patch = {"spec": {"suspend": kind == "argo.suspend_cron"}}
            plural = "cronworkflows"
        # Said explicitly: older clients defaulted to json-patch, which this body is not.
        patched = await self._call(t, api.patch_namespaced_custom_object,
                                   t.namespace, plural, t.name, patch,
                                   _content_type="application/merge-patch+json")
        return _success(t, phase, patched)

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)


class DryRunBackend:
    """Acts on nothing and says what it would do; reads through ``reader`` when given."""

    name = "dry-run"

    def __init__(self, reader: Backend | None = None, reason: str = "dry_run is set") -> None:
        self.reader = reader        # public: callers ask whether phases can be read
        self._reader = reader
        self.reason = reason

    async def get_workflow(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return None if self._reader is None else await self._reader.get_workflow(namespace, name)

    async def execute(self, kind: str, params: Mapping[str, Any]) -> ActionResult:
        t = _target(kind, params)
        would = f"would {kind[5:].removesuffix('_cron')} {t.what}"
        phase: str | None = None
        if self._reader is not None and kind in WORKFLOW_KINDS:
            try:
                phase, nothing = _gate(t, await self._reader.get_workflow(t.namespace, t.name))
            except (PermanentError, TemporaryError) as exc:
                return ActionResult("dry_run", f"{would} (could not read it: {exc})")
            if nothing is not None:
                return nothing
        return ActionResult("dry_run", would, phase)

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.close()


def choose_backend(argo: ArgoSettings | None, kube: KubeSettings | None,
                   session: aiohttp.ClientSession, *, dry_run: bool,
                   environ: Mapping[str, str] | None = None) -> Backend:
    """Argo Server when ``argo.server`` is set, else the Kubernetes API, else dry run.

    With ``dry_run`` the real backend is still built, but only to read workflows.
    """
    real: Backend
    if argo is not None and argo.server:
        real = ArgoServerBackend(argo, session)
    else:
        try:
            real = KubernetesBackend(kube, environ=environ)
        except KubeConfigUnavailable as exc:
            log.warning("no argo.server and no Kubernetes API (%s): actions run dry", exc)
            return DryRunBackend(reason=f"no Argo Server and no Kubernetes API: {exc}")
    return DryRunBackend(real) if dry_run else real
