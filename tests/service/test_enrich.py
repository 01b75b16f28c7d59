"""failure_messages reads the workflow's own failure text, and never fails the analysis."""

from __future__ import annotations

import base64
import gzip
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from responder.act.argo import ArgoServerBackend, ArgoSettings, DryRunBackend, KubernetesBackend
from responder.act.argo import KubeSettings as Kube
from responder.act.enrich import failure_messages
from tests.fakes import Reply
from tests.fakes.argo_server import FakeArgoServer
from tests.fakes.kube_api import FakeKubeAPI

WF = "/api/v1/workflows/taskmaster/etl-x"


@pytest.fixture
async def argo() -> AsyncIterator[FakeArgoServer]:
    async with FakeArgoServer(token=None) as server:
        yield server


@pytest.fixture
async def backend(argo: FakeArgoServer) -> AsyncIterator[ArgoServerBackend]:
    async with aiohttp.ClientSession() as session:
        yield ArgoServerBackend(ArgoSettings(server=argo.url, token=None, ca_file=None,
                                             insecure_skip_verify=False, timeout=5,
                                             ui_url=None), session)


async def test_messages_are_the_workflow_message_then_failed_nodes_with_exit_codes(
        argo: FakeArgoServer, backend: ArgoServerBackend) -> None:
    argo.add_workflow("taskmaster", "etl-x", phase="Failed", message="child 'etl-x-1' failed",
                      nodes=[
                          {"name": "extract", "phase": "Succeeded", "message": "fine"},
                          {"name": "load", "phase": "Failed", "message": "OOMKilled",
                           "exit_code": 137},
                          {"name": "notify", "phase": "Error",
                           "message": "pod deleted during operation"},
                          {"name": "report", "phase": "Failed", "exit_code": 2},
                          {"name": "retry-1", "phase": "Failed", "message": "OOMKilled",
                           "exit_code": 137},
                      ])
    messages = await failure_messages(backend, "taskmaster", "etl-x")
    assert messages == ["child 'etl-x-1' failed", "OOMKilled (exit code 137)",
                        "pod deleted during operation", "exit code 2"]


async def test_an_exit_code_already_in_the_message_is_not_repeated(
        argo: FakeArgoServer, backend: ArgoServerBackend) -> None:
    argo.add_workflow("taskmaster", "etl-x", nodes=[
        {"name": "load", "phase": "Failed", "message": "Error (exit code 1)", "exit_code": 1}])
    assert await failure_messages(backend, "taskmaster", "etl-x") == ["Error (exit code 1)"]


async def test_messages_are_bounded_in_count_and_size(
        argo: FakeArgoServer, backend: ArgoServerBackend) -> None:
    argo.add_workflow("taskmaster", "etl-x", message="x" * 5000, nodes=[
        {"name": f"step-{i}", "phase": "Failed", "message": f"failure {i}"} for i in range(50)])
    messages = await failure_messages(backend, "taskmaster", "etl-x", max_messages=5,
                                      max_chars=100)
    assert len(messages) == 5
    assert len(messages[0]) == 100 and messages[0].endswith("…")


async def test_a_slow_server_gives_no_messages_within_the_timeout(
        argo: FakeArgoServer, backend: ArgoServerBackend) -> None:
    argo.add_workflow("taskmaster", "etl-x", message="too late")
    argo.script("GET", WF, [Reply(delay=1.0)])
    started = time.monotonic()
    assert await failure_messages(backend, "taskmaster", "etl-x", timeout=0.1) == []
    assert time.monotonic() - started < 0.9


@pytest.mark.parametrize("reply", [Reply(500), Reply(404), Reply(401),
                                   Reply(200, body=["not", "a", "workflow"])])
async def test_any_error_gives_no_messages(argo: FakeArgoServer, backend: ArgoServerBackend,
                                           reply: Reply) -> None:
    argo.add_workflow("taskmaster", "etl-x", message="unreachable")
    argo.script("GET", WF, [reply])
    assert await failure_messages(backend, "taskmaster", "etl-x") == []
    assert len(argo.calls("GET", WF)) == 1


async def test_dry_run_without_a_cluster_gives_no_messages() -> None:
    assert await failure_messages(DryRunBackend(), "taskmaster", "etl-x") == []


async def test_compressed_nodes_read_through_the_kubernetes_api_are_unpacked(
        tmp_path: Path) -> None:
    async with FakeKubeAPI() as kube:
        wf = kube.add_workflow("taskmaster", "etl-x", message="step failed", nodes=[
            {"name": "load", "phase": "Failed", "message": "ErrImagePull"}])
        nodes = wf["status"].pop("nodes")
        wf["status"]["compressedNodes"] = base64.b64encode(
            gzip.compress(json.dumps(nodes).encode())).decode()
        backend = KubernetesBackend(Kube(kube.write_kubeconfig(tmp_path / "kc"), None),
                                    environ={})
        try:
            messages = await failure_messages(backend, "taskmaster", "etl-x")
        finally:
            await backend.close()
    assert messages == ["step failed", "ErrImagePull"]
