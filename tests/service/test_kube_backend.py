"""KubernetesBackend (the official client, in a thread) against the fake Kubernetes API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from responder.act.argo import (
    ArgoServerBackend,
    ArgoSettings,
    DryRunBackend,
    KubeConfigUnavailable,
    KubernetesBackend,
    KubeSettings,
    choose_backend,
    load_kube_client,
)
from responder.errors import PermanentError, TemporaryError
from tests.fakes import Reply
from tests.fakes.kube_api import FakeKubeAPI

WFS = "/apis/argoproj.io/v1alpha1/namespaces/taskmaster/workflows"
CRONS = "/apis/argoproj.io/v1alpha1/namespaces/taskmaster/cronworkflows"


@pytest.fixture
async def kube() -> AsyncIterator[FakeKubeAPI]:
    async with FakeKubeAPI(token="kube-token") as server:
        yield server


@pytest.fixture
async def backend(kube: FakeKubeAPI, tmp_path: Path) -> AsyncIterator[KubernetesBackend]:
    config = kube.write_kubeconfig(tmp_path / "kubeconfig")
    b = KubernetesBackend(KubeSettings(kubeconfig=config, context=None, timeout=5), environ={})
    yield b
    await b.close()


async def test_get_workflow_reads_the_custom_object_with_the_bearer_token(
        kube: FakeKubeAPI, backend: KubernetesBackend) -> None:
    kube.add_workflow("taskmaster", "etl-x", phase="Failed", message="child failed")
    wf = await backend.get_workflow("taskmaster", "etl-x")
    assert wf is not None and wf["status"]["message"] == "child failed"
    [get] = kube.requests
    assert (get.method, get.path) == ("GET", f"{WFS}/etl-x")
    assert get.headers["authorization"] == "Bearer kube-token"


async def test_get_workflow_of_an_unknown_workflow_is_none(
        kube: FakeKubeAPI, backend: KubernetesBackend) -> None:
    assert await backend.get_workflow("taskmaster", "nope") is None


async def test_retry_is_skipped_with_the_reason_after_reading_the_phase(
        kube: FakeKubeAPI, backend: KubernetesBackend) -> None:
    kube.add_workflow("taskmaster", "etl-x", phase="Failed")
    result = await backend.execute("argo.retry", {"namespace": "taskmaster",
                                                  "workflow": "etl-x"})
    assert result.outcome == "skipped"
    assert result.detail.startswith("argo.retry needs the Argo Server")
    assert "not available through the Kubernetes API" in result.detail
    assert result.phase == "Failed"
    assert [c.method for c in kube.requests] == ["GET"]


async def test_retry_of_a_running_workflow_is_nothing_to_do(
        kube: FakeKubeAPI, backend: KubernetesBackend) -> None:
    kube.add_workflow("taskmaster", "etl-x", phase="Running")
    result = await backend.execute("argo.retry", {"namespace": "taskmaster",
                                                  "workflow": "etl-x"})
    assert result.outcome == "nothing_to_do"


async def test_resubmit_creates_a_workflow_from_the_old_spec_with_generate_name(
        kube: FakeKubeAPI, backend: KubernetesBackend) -> None:
    old = kube.add_workflow("taskmaster", "etl-x", phase="Failed", labels={"team": "data"},
                            spec={"entrypoint": "main", "shutdown": "Terminate",
                                  "activeDeadlineSeconds": 0,
                                  "workflowTemplateRef": {"name": "etl"}})
    result = await backend.execute("argo.resubmit", {"namespace": "taskmaster",
                                                     "workflow": "etl-x"})
    [post] = kube.calls("POST")
    assert post.path == WFS
    assert post.content_type == "application/json"
    assert post.json == {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"generateName": "etl-x-", "namespace": "taskmaster", "labels": {
            "team": "data", "workflows.argoproj.io/resubmitted-from-workflow": "etl-x"}},
        "spec": {"entrypoint": "main", "workflowTemplateRef": {"name": "etl"}},
    }
    assert result.outcome == "success" and result.response is not None
    new = result.response["metadata"]["name"]
    assert new.startswith("etl-x-") and len(new) == len("etl-x-") + 5
    assert result.detail == f"resubmitted workflow taskmaster/etl-x as {new} (phase was Failed)"
    assert ("taskmaster", new) in kube.store.workflows
    assert old["metadata"]["name"] == "etl-x"


async def test_resubmit_keeps_the_generate_name_of_a_generated_workflow(
        kube: FakeKubeAPI, backend: KubernetesBackend) -> None:
    kube.add_workflow("taskmaster", "etl-abcde", phase="Error", generate_name="etl-")
    await backend.execute("argo.resubmit", {"namespace": "taskmaster", "workflow": "etl-abcde"})
    assert kube.calls("POST")[0].json["metadata"]["generateName"] == "etl-"


@pytest.mark.parametrize(("kind", "shutdown"), [("argo.stop", "Stop"),
                                                ("argo.terminate", "Terminate")])
async def test_stop_and_terminate_merge_patch_spec_shutdown(
        kube: FakeKubeAPI, backend: KubernetesBackend, kind: str, shutdown: str) -> None:
    kube.add_workflow("taskmaster", "etl-x", phase="Running")
    result = await backend.execute(kind, {"namespace": "taskmaster", "workflow": "etl-x"})
    [patch] = kube.calls("PATCH")
    assert patch.path == f"{WFS}/etl-x"
    assert patch.content_type == "application/merge-patch+json"
    assert patch.json == {"spec": {"shutdown": shutdown}}
    assert result.outcome == "success" and result.phase == "Running"
    assert kube.store.workflows[("taskmaster", "etl-x")]["spec"]["shutdown"] == shutdown


async def test_stopping_a_finished_workflow_patches_nothing(
        kube: FakeKubeAPI, backend: KubernetesBackend) -> None:
    kube.add_workflow("taskmaster", "etl-x", phase="Failed")
    result = await backend.execute("argo.stop", {"namespace": "taskmaster", "workflow": "etl-x"})
    assert result.outcome == "nothing_to_do"
    assert kube.calls("PATCH") == []


@pytest.mark.parametrize(("kind", "suspend"), [("argo.suspend_cron", True),
                                               ("argo.resume_cron", False)])
async def test_cron_suspend_and_resume_merge_patch_spec_suspend(
        kube: FakeKubeAPI, backend: KubernetesBackend, kind: str, suspend: bool) -> None:
    kube.add_cron_workflow("taskmaster", "nightly", suspend=not suspend)
    result = await backend.execute(kind, {"namespace": "taskmaster", "cronworkflow": "nightly"})
    [patch] = kube.requests
    assert (patch.method, patch.path) == ("PATCH", f"{CRONS}/nightly")
    assert patch.content_type == "application/merge-patch+json"
    assert patch.json == {"spec": {"suspend": suspend}}
    assert result.outcome == "success"
    assert kube.store.cron_workflows[("taskmaster", "nightly")]["spec"]["suspend"] is suspend


async def test_patching_an_unknown_cron_workflow_is_permanent(
        kube: FakeKubeAPI, backend: KubernetesBackend) -> None:
    with pytest.raises(PermanentError, match=r"^cronworkflow taskmaster/nightly not found$"):
        await backend.execute("argo.suspend_cron",
                              {"namespace": "taskmaster", "cronworkflow": "nightly"})


async def test_retry_of_an_unknown_workflow_is_permanent(backend: KubernetesBackend) -> None:
    with pytest.raises(PermanentError, match=r"^workflow taskmaster/etl-x not found$"):
        await backend.execute("argo.retry", {"namespace": "taskmaster", "workflow": "etl-x"})


async def test_a_503_is_temporary_and_a_429_carries_retry_after(
        kube: FakeKubeAPI, backend: KubernetesBackend) -> None:
    kube.add_cron_workflow("taskmaster", "nightly")
    kube.script("PATCH", f"{CRONS}/nightly", [503, Reply(429, headers={"Retry-After": "7"})])
    params = {"namespace": "taskmaster", "cronworkflow": "nightly"}
    with pytest.raises(TemporaryError, match=r"HTTP 503") as first:
        await backend.execute("argo.suspend_cron", params)
    assert first.value.delay is None
    with pytest.raises(TemporaryError) as second:
        await backend.execute("argo.suspend_cron", params)
    assert second.value.delay == 7


async def test_a_forbidden_answer_is_permanent_with_the_status_message(
        kube: FakeKubeAPI, backend: KubernetesBackend) -> None:
    kube.script("GET", f"{WFS}/etl-x", [Reply(403, {
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden",
        "code": 403, "message": 'workflows.argoproj.io "etl-x" is forbidden'})])
    with pytest.raises(PermanentError, match=r"HTTP 403: .*is forbidden"):
        await backend.get_workflow("taskmaster", "etl-x")


async def test_a_wrong_token_is_permanent(kube: FakeKubeAPI, tmp_path: Path) -> None:
    config = kube.write_kubeconfig(tmp_path / "kubeconfig", token="wrong")
    b = KubernetesBackend(KubeSettings(kubeconfig=config, context=None), environ={})
    try:
        with pytest.raises(PermanentError, match=r"HTTP 401: Unauthorized"):
            await b.get_workflow("taskmaster", "etl-x")
    finally:
        await b.close()


async def test_an_unreachable_api_server_is_temporary(tmp_path: Path) -> None:
    async with FakeKubeAPI() as gone:
        config = gone.write_kubeconfig(tmp_path / "kubeconfig")
    b = KubernetesBackend(KubeSettings(kubeconfig=config, context=None, timeout=2), environ={})
    try:
        with pytest.raises(TemporaryError, match=r"unreachable"):
            await b.get_workflow("taskmaster", "etl-x")
    finally:
        await b.close()


async def test_kubeconfig_comes_from_the_environment_when_not_configured(
        kube: FakeKubeAPI, tmp_path: Path) -> None:
    config = kube.write_kubeconfig(tmp_path / "kubeconfig")
    kube.add_workflow("taskmaster", "etl-x", phase="Running")
    b = KubernetesBackend(None, environ={"KUBECONFIG": str(config)})
    try:
        assert b.source == f"KUBECONFIG {config}"
        assert await b.get_workflow("taskmaster", "etl-x") is not None
    finally:
        await b.close()


def test_in_cluster_config_is_used_when_running_in_a_pod(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    client, source = load_kube_client(
        None, {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443",
               "KUBECONFIG": "/nonexistent"}, service_account=tmp_path)
    assert source == "in-cluster service account"
    assert client.configuration.host == "https://10.0.0.1:443"
    client.close()


def test_no_kubernetes_config_anywhere_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(KubeConfigUnavailable, match=r"not in a cluster"):
        load_kube_client(None, {}, service_account=tmp_path)
    with pytest.raises(KubeConfigUnavailable, match=r"kubeconfig .*missing"):
        load_kube_client(KubeSettings(tmp_path / "missing", None), {})


async def test_choose_backend_prefers_the_argo_server(kube: FakeKubeAPI, tmp_path: Path) -> None:
    config = kube.write_kubeconfig(tmp_path / "kubeconfig")
    argo = ArgoSettings(server="http://127.0.0.1:1", token=None, ca_file=None,
                        insecure_skip_verify=False, timeout=1, ui_url=None)
    async with aiohttp.ClientSession() as session:
        chosen = choose_backend(argo, KubeSettings(config, None), session, dry_run=False,
                                environ={})
        assert isinstance(chosen, ArgoServerBackend) and chosen.name == "argo-server"


async def test_choose_backend_falls_back_to_kubernetes_then_to_dry_run(
        kube: FakeKubeAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = kube.write_kubeconfig(tmp_path / "kubeconfig")
    no_server = ArgoSettings(server=None, token=None, ca_file=None, insecure_skip_verify=False,
                             timeout=1, ui_url="https://argo.example.com")
    async with aiohttp.ClientSession() as session:
        chosen = choose_backend(no_server, KubeSettings(config, None), session, dry_run=False,
                                environ={})
        assert chosen.name == "kubernetes"
        await chosen.close()
        chosen = choose_backend(None, None, session, dry_run=False, environ={})
        assert chosen.name == "dry-run"
        assert "actions run dry" in caplog.text
        result = await chosen.execute("argo.retry", {"namespace": "taskmaster",
                                                     "workflow": "etl-x"})
        assert (result.outcome, result.detail) == ("dry_run",
                                                   "would retry workflow taskmaster/etl-x")


async def test_dry_run_reads_through_the_real_backend_but_never_writes(
        kube: FakeKubeAPI, tmp_path: Path) -> None:
    config = kube.write_kubeconfig(tmp_path / "kubeconfig")
    kube.add_workflow("taskmaster", "etl-x", phase="Failed")
    kube.add_workflow("taskmaster", "etl-y", phase="Running")
    async with aiohttp.ClientSession() as session:
        chosen = choose_backend(None, KubeSettings(config, None), session, dry_run=True,
                                environ={})
        try:
            assert isinstance(chosen, DryRunBackend)
            x = await chosen.execute("argo.resubmit", {"namespace": "taskmaster",
                                                       "workflow": "etl-x"})
            y = await chosen.execute("argo.retry", {"namespace": "taskmaster",
                                                    "workflow": "etl-y"})
            cron = await chosen.execute("argo.suspend_cron", {"namespace": "taskmaster",
                                                              "cronworkflow": "nightly"})
        finally:
            await chosen.close()
    assert (x.outcome, x.detail, x.phase) == (
        "dry_run", "would resubmit workflow taskmaster/etl-x", "Failed")
    assert y.outcome == "nothing_to_do"
    assert cron.detail == "would suspend cronworkflow taskmaster/nightly"
    assert {c.method for c in kube.requests} == {"GET"}
