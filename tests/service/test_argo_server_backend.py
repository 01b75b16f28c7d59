"""ArgoServerBackend against the fake Argo Server, over real HTTP."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from responder.act.argo import ActionResult, ArgoServerBackend, ArgoSettings
from responder.errors import PermanentError, TemporaryError
from tests.fakes import Reply
from tests.fakes.argo_server import FakeArgoServer

WF = "/api/v1/workflows/taskmaster/etl-x"


@pytest.fixture
async def argo() -> AsyncIterator[FakeArgoServer]:
    async with FakeArgoServer(token="argo-token") as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def backend(argo: FakeArgoServer, session: aiohttp.ClientSession, *,
            token: str | None = "argo-token", timeout: float = 5.0) -> ArgoServerBackend:
    return ArgoServerBackend(ArgoSettings(server=argo.url + "/", token=token, ca_file=None,
                                          insecure_skip_verify=False, timeout=timeout,
                                          ui_url=None), session)


async def test_retry_of_a_failed_workflow_puts_one_retry_with_the_swagger_body(
        argo: FakeArgoServer, session: aiohttp.ClientSession) -> None:
    argo.add_workflow("taskmaster", "etl-x", phase="Failed")
    result = await backend(argo, session).execute(
        "argo.retry", {"namespace": "taskmaster", "workflow": "etl-x"})
    assert result.outcome == "success"
    assert result.detail == "retried workflow taskmaster/etl-x (phase was Failed)"
    assert result.phase == "Failed"
    assert result.response is not None and result.response["status"]["phase"] == "Running"
    [put] = argo.calls("PUT")
    assert put.path == f"{WF}/retry"
    assert put.content_type == "application/json"
    assert put.headers["authorization"] == "Bearer argo-token"
    assert put.json == {"name": "etl-x", "namespace": "taskmaster",
                        "restartSuccessful": False, "nodeFieldSelector": ""}
    assert [c.method for c in argo.requests] == ["GET", "PUT"]
    assert argo.store.phase("taskmaster", "etl-x") == "Running"


async def test_retry_passes_restart_successful_and_node_field_selector(
        argo: FakeArgoServer, session: aiohttp.ClientSession) -> None:
    argo.add_workflow("taskmaster", "etl-x", phase="Error")
    await backend(argo, session).execute("argo.retry", {
        "namespace": "taskmaster", "workflow": "etl-x", "restart_successful": True,
        "node_field_selector": "templateName=load"})
    [put] = argo.calls("PUT")
    assert put.json == {"name": "etl-x", "namespace": "taskmaster",
                        "restartSuccessful": True, "nodeFieldSelector": "templateName=load"}


@pytest.mark.parametrize("phase", ["Running", "Pending", "Succeeded"])
async def test_retry_of_a_workflow_not_failed_is_nothing_to_do_and_puts_nothing(
        argo: FakeArgoServer, session: aiohttp.ClientSession, phase: str) -> None:
    argo.add_workflow("taskmaster", "etl-x", phase=phase)
    result = await backend(argo, session).execute(
        "argo.retry", {"namespace": "taskmaster", "workflow": "etl-x"})
    assert result == ActionResult("nothing_to_do", f"workflow is {phase}: nothing to do", phase)
    assert argo.calls("PUT") == []


async def test_retry_refused_because_someone_retried_first_is_nothing_to_do(
        argo: FakeArgoServer, session: aiohttp.ClientSession) -> None:
    argo.add_workflow("taskmaster", "etl-x", phase="Failed")
    argo.script("PUT", f"{WF}/retry", [Reply(400, {
        "code": 3, "message": "Cannot retry a workflow in phase Running"})])
    result = await backend(argo, session).execute(
        "argo.retry", {"namespace": "taskmaster", "workflow": "etl-x"})
    assert result.outcome == "nothing_to_do"
    assert "Cannot retry a workflow in phase Running" in result.detail


async def test_retry_of_an_unknown_workflow_is_a_permanent_error(
        argo: FakeArgoServer, session: aiohttp.ClientSession) -> None:
    with pytest.raises(PermanentError, match=r"^workflow taskmaster/etl-x not found$"):
        await backend(argo, session).execute(
            "argo.retry", {"namespace": "taskmaster", "workflow": "etl-x"})
    assert argo.calls("PUT") == []


async def test_a_503_on_retry_is_a_temporary_error(
        argo: FakeArgoServer, session: aiohttp.ClientSession) -> None:
    argo.add_workflow("taskmaster", "etl-x", phase="Failed")
    argo.script("PUT", f"{WF}/retry", [503, 200])
    b = backend(argo, session)
    with pytest.raises(TemporaryError) as caught:
        await b.execute("argo.retry", {"namespace": "taskmaster", "workflow": "etl-x"})
    assert caught.value.delay is None
    assert "HTTP 503" in str(caught.value)
    result = await b.execute("argo.retry", {"namespace": "taskmaster", "workflow": "etl-x"})
    assert result.outcome == "success"
    assert len(argo.calls("PUT", f"{WF}/retry")) == 2


async def test_a_429_with_retry_after_is_a_temporary_error_with_that_delay(
        argo: FakeArgoServer, session: aiohttp.ClientSession) -> None:
    argo.add_workflow("taskmaster", "etl-x", phase="Failed")
    argo.script("PUT", f"{WF}/retry", [Reply(429, headers={"Retry-After": "7"})])
    with pytest.raises(TemporaryError) as caught:
        await backend(argo, session).execute(
            "argo.retry", {"namespace": "taskmaster", "workflow": "etl-x"})
    assert caught.value.delay == 7


async def test_a_403_is_permanent_and_carries_the_server_message_but_not_the_token(
        argo: FakeArgoServer, session: aiohttp.ClientSession) -> None:
    argo.add_workflow("taskmaster", "etl-x", phase="Failed")
    argo.script("PUT", f"{WF}/retry", [Reply(403, {"code": 7, "message": "forbidden: no"})])
    with pytest.raises(PermanentError) as caught:
        await backend(argo, session).execute(
            "argo.retry", {"namespace": "taskmaster", "workflow": "etl-x"})
    assert "HTTP 403: forbidden: no" in str(caught.value)
    assert "argo-token" not in str(caught.value)


async def test_a_wrong_token_is_a_permanent_error(
        argo: FakeArgoServer, session: aiohttp.ClientSession) -> None:
    argo.add_workflow("taskmaster", "etl-x", phase="Failed")
    with pytest.raises(PermanentError, match=r"HTTP 401: token not valid"):
        await backend(argo, session, token="wrong").get_workflow("taskmaster", "etl-x")


async def test_a_token_given_with_its_bearer_prefix_is_sent_once(
        argo: FakeArgoServer, session: aiohttp.ClientSession) -> None:
    argo.add_workflow("taskmaster", "etl-x", phase="Running")
    wf = await backend(argo, session, token="Bearer argo-token").get_workflow(
        "taskmaster", "etl-x")
    assert wf is not None
    assert argo.requests[0].headers["authorization"] == "Bearer argo-token"


async def test_a_slow_server_is_a_temporary_timeout(
        argo: FakeArgoServer, session: aiohttp.ClientSession) -> None:
    argo.script("GET", WF, [Reply(delay=0.5)])
    with pytest.raises(TemporaryError, match=r"timed out"):
        await backend(argo, session, timeout=0.1).get_workflow("taskmaster", "etl-x")


async def test_an_unreachable_server_is_a_temporary_error(
        session: aiohttp.ClientSession) -> None:
    async with FakeArgoServer() as gone:
        url = gone.url
    b = ArgoServerBackend(ArgoSettings(server=url, token=None, ca_file=None,
                                       insecure_skip_verify=False, timeout=2, ui_url=None),
                          session)
    with pytest.raises(TemporaryError, match=r"ClientConnectorError"):
        await b.get_workflow("taskmaster", "etl-x")


async def test_get_workflow_of_an_unknown_workflow_is_none(
        argo: FakeArgoServer, session: aiohttp.ClientSession) -> None:
    assert await backend(argo, session).get_workflow("taskmaster", "nope") is None
    assert argo.requests[0].method == "GET"
    assert argo.requests[0].path == "/api/v1/workflows/taskmaster/nope"


async def test_resubmit_puts_the_resubmit_request_and_names_the_new_workflow(
        argo: FakeArgoServer, session: aiohttp.ClientSession) -> None:
    argo.add_workflow("taskmaster", "etl-x", phase="Failed", labels={"team": "data"})
    result = await backend(argo, session).execute(
        "argo.resubmit", {"namespace": "taskmaster", "workflow": "etl-x", "memoized": True})
    [put] = argo.calls("PUT")
    assert put.path == f"{WF}/resubmit"
    assert put.json == {"name": "etl-x", "namespace": "taskmaster", "memoized": True}
    assert result.response is not None
    new = result.response["metadata"]["name"]
    assert new.startswith("etl-x-") and new != "etl-x"
    assert result.detail == f"resubmitted workflow taskmaster/etl-x as {new} (phase was Failed)"
    assert argo.store.workflows[("taskmaster", new)]["metadata"]["labels"][
        "workflows.argoproj.io/resubmitted-from-workflow"] == "etl-x"


@pytest.mark.parametrize(("kind", "shutdown"), [("argo.stop", "Stop"),
                                                ("argo.terminate", "Terminate")])
async def test_stop_and_terminate_put_their_requests_on_a_running_workflow(
        argo: FakeArgoServer, session: aiohttp.ClientSession, kind: str, shutdown: str) -> None:
    argo.add_workflow("taskmaster", "etl-x", phase="Running")
    result = await backend(argo, session).execute(
        kind, {"namespace": "taskmaster", "workflow": "etl-x"})
    [put] = argo.calls("PUT")
    assert put.path == f"{WF}/{kind[5:]}"
    assert put.json == {"name": "etl-x", "namespace": "taskmaster"}
    assert result.outcome == "success"
    assert argo.store.workflows[("taskmaster", "etl-x")]["spec"]["shutdown"] == shutdown


async def test_stop_sends_its_message(argo: FakeArgoServer,
                                      session: aiohttp.ClientSession) -> None:
    argo.add_workflow("taskmaster", "etl-x", phase="Running")
    await backend(argo, session).execute(
        "argo.stop", {"namespace": "taskmaster", "workflow": "etl-x", "message": "breaker open"})
    assert argo.calls("PUT")[0].json == {"name": "etl-x", "namespace": "taskmaster",
                                         "message": "breaker open"}


async def test_stopping_a_finished_workflow_is_nothing_to_do(
        argo: FakeArgoServer, session: aiohttp.ClientSession) -> None:
    argo.add_workflow("taskmaster", "etl-x", phase="Succeeded")
    result = await backend(argo, session).execute(
        "argo.terminate", {"namespace": "taskmaster", "workflow": "etl-x"})
    assert result.outcome == "nothing_to_do"
    assert argo.calls("PUT") == []


@pytest.mark.parametrize(("kind", "verb", "done", "suspended"), [
    ("argo.suspend_cron", "suspend", "suspended", True),
    ("argo.resume_cron", "resume", "resumed", False)])
async def test_cron_suspend_and_resume_put_to_cron_workflows(
        argo: FakeArgoServer, session: aiohttp.ClientSession, kind: str, verb: str, done: str,
        suspended: bool) -> None:
    argo.add_cron_workflow("taskmaster", "nightly", suspend=not suspended)
    result = await backend(argo, session).execute(
        kind, {"namespace": "taskmaster", "cronworkflow": "nightly"})
    assert [(c.method, c.path) for c in argo.requests] == [
        ("PUT", f"/api/v1/cron-workflows/taskmaster/nightly/{verb}")]
    assert argo.requests[0].json == {"name": "nightly", "namespace": "taskmaster"}
    assert result.detail == f"{done} cronworkflow taskmaster/nightly"
    assert argo.store.cron_workflows[("taskmaster", "nightly")]["spec"]["suspend"] is suspended


async def test_suspending_an_unknown_cron_workflow_is_permanent(
        argo: FakeArgoServer, session: aiohttp.ClientSession) -> None:
    with pytest.raises(PermanentError, match=r"^cronworkflow taskmaster/nightly not found$"):
        await backend(argo, session).execute(
            "argo.suspend_cron", {"namespace": "taskmaster", "cronworkflow": "nightly"})


async def test_an_action_without_its_target_is_permanent_and_sends_nothing(
        argo: FakeArgoServer, session: aiohttp.ClientSession) -> None:
    with pytest.raises(PermanentError, match=r"parameter workflow is required"):
        await backend(argo, session).execute("argo.retry", {"namespace": "taskmaster"})
    with pytest.raises(PermanentError, match=r"unknown action argo.delete"):
        await backend(argo, session).execute("argo.delete", {})
    assert argo.requests == []


@pytest.fixture
async def tls_argo(tmp_path: Path) -> AsyncIterator[tuple[FakeArgoServer, Path]]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    async with FakeArgoServer(token=None, ssl_context=server_ctx) as server:
        server.add_workflow("taskmaster", "etl-x", phase="Running")
        yield server, ca_file


def tls_backend(url: str, session: aiohttp.ClientSession, *, ca_file: Path | None = None,
                insecure: bool = False) -> ArgoServerBackend:
    return ArgoServerBackend(ArgoSettings(server=url, token=None, ca_file=ca_file,
                                          insecure_skip_verify=insecure, timeout=5,
                                          ui_url=None), session)


async def test_tls_is_verified_against_the_configured_ca_file(
        tls_argo: tuple[FakeArgoServer, Path], session: aiohttp.ClientSession) -> None:
    argo, ca_file = tls_argo
    assert argo.url.startswith("https://")
    wf = await tls_backend(argo.url, session, ca_file=ca_file).get_workflow(
        "taskmaster", "etl-x")
    assert wf is not None and wf["status"]["phase"] == "Running"


async def test_tls_with_an_unknown_ca_fails_unless_verification_is_skipped(
        tls_argo: tuple[FakeArgoServer, Path], session: aiohttp.ClientSession) -> None:
    argo, _ = tls_argo
    with pytest.raises(TemporaryError, match=r"Certificate"):
        await tls_backend(argo.url, session).get_workflow("taskmaster", "etl-x")
    wf = await tls_backend(argo.url, session, insecure=True).get_workflow("taskmaster", "etl-x")
    assert wf is not None
