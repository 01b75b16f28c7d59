"""The fakes refuse what the real Argo Server and Kubernetes API refuse, in their formats.

A fake that accepts anything would let an adapter bug pass every test; these tests pin
the refusals the adapters rely on (and the few things the real servers do accept).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.fakes.argo_server import FakeArgoServer
from tests.fakes.kube_api import FakeKubeAPI

ARGO_AUTH = {"Authorization": "Bearer argo-token"}
KUBE_AUTH = {"Authorization": "Bearer kube-token"}
WFS = "/apis/argoproj.io/v1alpha1/namespaces/taskmaster/workflows"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def argo() -> AsyncIterator[FakeArgoServer]:
    async with FakeArgoServer(token="argo-token") as server:
        server.add_workflow("taskmaster", "running", phase="Running")
        server.add_workflow("taskmaster", "done", phase="Succeeded")
        yield server


@pytest.fixture
async def kube() -> AsyncIterator[FakeKubeAPI]:
    async with FakeKubeAPI(token="kube-token") as server:
        server.add_workflow("taskmaster", "etl-x", phase="Failed")
        yield server


async def call(session: aiohttp.ClientSession, method: str, url: str,
               **kwargs: Any) -> tuple[int, Any]:
    async with session.request(method, url, **kwargs) as resp:
        return resp.status, await resp.json(content_type=None)


# --- Argo Server ---------------------------------------------------------------------

async def test_argo_refuses_a_request_without_the_bearer_token(
        argo: FakeArgoServer, session: aiohttp.ClientSession) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "argo-token"}):
        status, body = await call(session, "GET", f"{argo.url}/api/v1/workflows/taskmaster/"
                                  "running", headers=headers)
        assert status == 401
        assert body["code"] == 16 and body["message"].startswith("token not valid")


async def test_argo_answers_a_wrong_verb_as_grpc_gateway_does(
        argo: FakeArgoServer, session: aiohttp.ClientSession) -> None:
    for method, path in (("POST", "/api/v1/workflows/taskmaster/running/retry"),
                         ("GET", "/api/v1/workflows/taskmaster/running/retry"),
                         ("PUT", "/api/v1/workflows/taskmaster/running")):
        status, body = await call(session, method, argo.url + path, headers=ARGO_AUTH)
        assert (status, body) == (501, {"code": 12, "message": "Method Not Allowed"})


async def test_argo_answers_an_unknown_api_path_not_implemented(
        argo: FakeArgoServer, session: aiohttp.ClientSession) -> None:
    status, body = await call(session, "PUT", f"{argo.url}/api/v1/workflows/taskmaster/"
                              "running/restart", headers=ARGO_AUTH, json={})
    assert (status, body) == (501, {"code": 12, "message": "Not Implemented"})
    async with session.get(f"{argo.url}/v1/workflows/taskmaster/running") as resp:
        assert resp.status == 404


async def test_argo_refuses_a_body_that_is_not_json_or_of_the_wrong_types(
        argo: FakeArgoServer, session: aiohttp.ClientSession) -> None:
    url = f"{argo.url}/api/v1/workflows/taskmaster/running/stop"
    status, body = await call(session, "PUT", url, headers=ARGO_AUTH, data=b"name=running")
    assert status == 400 and body["code"] == 3
    status, body = await call(session, "PUT", url, headers=ARGO_AUTH, json=["running"])
    assert status == 400 and body["code"] == 3
    status, body = await call(session, "PUT", url.replace("stop", "retry"), headers=ARGO_AUTH,
                              json={"restartSuccessful": "yes"})
    assert status == 400 and "of type bool" in body["message"]
    assert argo.store.workflows[("taskmaster", "running")]["spec"].get("shutdown") is None


async def test_argo_decodes_json_whatever_the_content_type_like_the_real_gateway(
        argo: FakeArgoServer, session: aiohttp.ClientSession) -> None:
    status, _ = await call(session, "PUT", f"{argo.url}/api/v1/workflows/taskmaster/running/"
                           "stop", headers={**ARGO_AUTH, "Content-Type": "text/plain"},
                           data=b'{"name": "running", "namespace": "taskmaster"}')
    assert status == 200


async def test_argo_answers_an_unknown_workflow_not_found(
        argo: FakeArgoServer, session: aiohttp.ClientSession) -> None:
    status, body = await call(session, "PUT", f"{argo.url}/api/v1/workflows/taskmaster/nope/"
                              "retry", headers=ARGO_AUTH, json={})
    assert (status, body) == (404, {"code": 5,
                                    "message": 'workflows.argoproj.io "nope" not found'})


async def test_argo_refuses_to_retry_a_workflow_that_has_not_failed(
        argo: FakeArgoServer, session: aiohttp.ClientSession) -> None:
    base = f"{argo.url}/api/v1/workflows/taskmaster"
    status, body = await call(session, "PUT", f"{base}/running/retry", headers=ARGO_AUTH,
                              json={"name": "running", "namespace": "taskmaster"})
    assert (status, body) == (400, {"code": 3,
                                    "message": "Cannot retry a workflow in phase Running"})
    status, body = await call(session, "PUT", f"{base}/done/retry", headers=ARGO_AUTH, json={})
    assert status == 400 and "restartSuccessful and nodeFieldSelector" in body["message"]
    assert argo.store.phase("taskmaster", "running") == "Running"


async def test_argo_refuses_to_stop_a_completed_workflow_with_a_500(
        argo: FakeArgoServer, session: aiohttp.ClientSession) -> None:
    status, body = await call(session, "PUT", f"{argo.url}/api/v1/workflows/taskmaster/done/"
                              "terminate", headers=ARGO_AUTH, json={})
    assert status == 500 and body["code"] == 13
    assert body["message"].startswith("cannot shutdown a completed workflow")


# --- Kubernetes API ------------------------------------------------------------------

def assert_status(body: Any, code: int, reason: str) -> None:
    assert body["kind"] == "Status" and body["apiVersion"] == "v1"
    assert body["status"] == "Failure"
    assert (body["code"], body["reason"]) == (code, reason)


async def test_kube_refuses_any_path_without_the_bearer_token(
        kube: FakeKubeAPI, session: aiohttp.ClientSession) -> None:
    for path in (f"{WFS}/etl-x", "/apis/nothing/here"):
        status, body = await call(session, "GET", kube.url + path)
        assert status == 401
        assert_status(body, 401, "Unauthorized")


async def test_kube_answers_an_unknown_path_not_found(
        kube: FakeKubeAPI, session: aiohttp.ClientSession) -> None:
    status, body = await call(session, "GET", kube.url + WFS.replace("workflows", "pipelines"),
                              headers=KUBE_AUTH)
    assert status == 404
    assert_status(body, 404, "NotFound")
    assert body["message"] == "the server could not find the requested resource"


async def test_kube_answers_an_unknown_object_with_a_not_found_status(
        kube: FakeKubeAPI, session: aiohttp.ClientSession) -> None:
    status, body = await call(session, "GET", f"{kube.url}{WFS}/nope", headers=KUBE_AUTH)
    assert status == 404
    assert_status(body, 404, "NotFound")
    assert body["message"] == 'workflows.argoproj.io "nope" not found'
    assert body["details"] == {"name": "nope", "group": "argoproj.io", "kind": "workflows"}


async def test_kube_refuses_a_wrong_verb(kube: FakeKubeAPI,
                                         session: aiohttp.ClientSession) -> None:
    for method, path in (("POST", f"{WFS}/etl-x"), ("PATCH", WFS)):
        status, body = await call(session, method, kube.url + path, headers=KUBE_AUTH,
                                  json={})
        assert status == 405
        assert_status(body, 405, "MethodNotAllowed")


@pytest.mark.parametrize("content_type", ["application/json",
                                          "application/strategic-merge-patch+json",
                                          "text/plain"])
async def test_kube_refuses_a_patch_that_is_not_a_merge_patch(
        kube: FakeKubeAPI, session: aiohttp.ClientSession, content_type: str) -> None:
    status, body = await call(session, "PATCH", f"{kube.url}{WFS}/etl-x",
                              headers={**KUBE_AUTH, "Content-Type": content_type},
                              data=b'{"spec": {"shutdown": "Stop"}}')
    assert status == 415
    assert_status(body, 415, "UnsupportedMediaType")
    assert "application/merge-patch+json" in body["message"]
    assert "shutdown" not in kube.store.workflows[("taskmaster", "etl-x")]["spec"]


async def test_kube_merge_patch_follows_rfc_7386(kube: FakeKubeAPI,
                                                 session: aiohttp.ClientSession) -> None:
    url = f"{kube.url}{WFS}/etl-x"
    status, body = await call(session, "PATCH", url, headers={**KUBE_AUTH, **MERGE},
                              data=b"{not json")
    assert status == 400
    status, body = await call(session, "PATCH", url, headers={**KUBE_AUTH, **MERGE},
                              data=b'{"spec": {"shutdown": "Stop", "entrypoint": null}}')
    assert status == 200
    assert body["spec"]["shutdown"] == "Stop" and "entrypoint" not in body["spec"]
    assert body["spec"]["templates"]


async def test_kube_refuses_a_create_it_cannot_accept(
        kube: FakeKubeAPI, session: aiohttp.ClientSession) -> None:
    url = kube.url + WFS
    wf = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "spec": {}}
    cases = [
        ({"Content-Type": "text/plain"}, b"{}", 415, "UnsupportedMediaType"),
        (JSON, b'{"metadata": {"name": "a"}}', 400, "BadRequest"),
        (JSON, b"{not json", 400, "BadRequest"),
    ]
    for headers, data, code, reason in cases:
        status, body = await call(session, "POST", url, headers={**KUBE_AUTH, **headers},
                                  data=data)
        assert status == code, data
        assert_status(body, code, reason)
    for metadata, code, reason in (({}, 422, "Invalid"),
                                   ({"name": "etl-x"}, 409, "AlreadyExists"),
                                   ({"name": "b", "namespace": "other"}, 400, "BadRequest")):
        status, body = await call(session, "POST", url, headers=KUBE_AUTH,
                                  json={**wf, "metadata": metadata})
        assert status == code, metadata
        assert_status(body, code, reason)
    assert set(kube.store.workflows) == {("taskmaster", "etl-x")}


async def test_kube_create_honours_generate_name(kube: FakeKubeAPI,
                                                 session: aiohttp.ClientSession) -> None:
    wf = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
          "metadata": {"generateName": "etl-"}, "spec": {"entrypoint": "main"}}
    names = set()
    for _ in range(2):
        status, body = await call(session, "POST", kube.url + WFS, headers=KUBE_AUTH, json=wf)
        assert status == 201
        names.add(body["metadata"]["name"])
    assert len(names) == 2 and all(n.startswith("etl-") and len(n) == 9 for n in names)
