"""``responder ctl`` against a running responder: tables, ``-o json`` and exit codes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from responder import cli
from responder.app import create_app
from responder.load import load_runtime
from tests.conftest import TOKEN, eventually
from tests.fakes.argo_server import FakeArgoServer
from tests.service.test_actions import NS, RETRY, alert, argo, payload  # noqa: F401
from tests.service.test_controls import ASK, runbook


@pytest.fixture
async def server(tmp_path: Path, write_config: Callable[..., Path], argo: FakeArgoServer,  # noqa: F811
                 aiohttp_server: Callable[..., Any]) -> TestServer:
    (tmp_path / "argo-token").write_text("argo-token")
    (tmp_path / "runbooks.yaml").write_text(yaml.safe_dump(runbook(ASK)))
    (tmp_path / "ctl-token").write_text(TOKEN + "\n")
    config = write_config({"rules": [str(tmp_path / "runbooks.yaml")],
                           "argo": {"server": argo.url, "token_file": "argo-token"}})
    app = create_app(load_runtime(config), registry=CollectorRegistry())
    return await aiohttp_server(app)  # type: ignore[no-any-return]


Ctl = Callable[..., Any]


@pytest.fixture
def ctl(server: TestServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Ctl:
    async def run(*args: str, token: str = "ctl-token") -> tuple[int, str, str]:
        argv = ["ctl", "--url", str(server.make_url("/")), "--token-file",
                str(tmp_path / token), *args]
        code = await asyncio.to_thread(cli.main, argv)
        out, err = capsys.readouterr()
        return code, out, err

    return run


async def test_pause_list_and_resume_from_the_command_line(ctl: Ctl) -> None:
    code, out, _ = await ctl("pause", "-m", f'namespace="{NS}"', "--reason", "db upgrade",
                             "--until", "2h", "--by", "alice")
    assert code == 0
    assert out.splitlines()[0].split() == ["ID", "MATCHERS", "BY", "SINCE", "UNTIL", "REASON"]
    assert f'namespace="{NS}"' in out and "db upgrade" in out and "alice" in out
    code, out, _ = await ctl("-o", "json", "pauses")
    (pause,) = json.loads(out)["pauses"]
    assert (code, pause["matchers"], pause["reason"]) == (0, [f'namespace="{NS}"'], "db upgrade")
    code, out, _ = await ctl("status")
    assert code == 0 and "paused:             False" in out and "pauses:             1" in out
    assert (await ctl("resume", str(pause["id"])))[0] == 0
    code, _, err = await ctl("resume", str(pause["id"]))
    assert code == 1 and f"no active pause {pause['id']}" in err


async def test_approve_from_the_command_line_runs_the_retry_once(
        ctl: Ctl, server: TestServer, argo: FakeArgoServer) -> None:  # noqa: F811
    argo.add_workflow(NS, "etl-20", phase="Failed")
    async with aiohttp.ClientSession() as session:
        async with session.post(server.make_url("/webhook"), data=payload(alert("etl-20")),
                                headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            assert r.status == 200

    async def listed() -> Any:
        code, out, _ = await ctl("-o", "json", "approvals")
        return json.loads(out)["approvals"] if code == 0 else None
    (asked,) = await eventually(listed)
    code, out, _ = await ctl("approvals")
    assert out.split()[:7] == ["ID", "RUNBOOK", "ACTION", "TARGET", "ASKED", "TIMEOUT", "ON"]
    assert f"workflow:{NS}/etl-20" in out
    code, out, _ = await ctl("approve", str(asked["id"]), "--comment", "transient", "--by", "bob")
    assert (code, out) == (0, f"approval {asked['id']}: approved by bob\n")
    code, _, err = await ctl("reject", str(asked["id"]))
    assert code == 5 and "already decided: approved by bob" in err
    await eventually(lambda: asyncio.sleep(0, argo.calls("PUT", RETRY.format(ns=NS, wf="etl-20"))))
    code, out, _ = await ctl("events", "--limit", "5")
    assert code == 0 and "etl-20" in out and "Network" in out


async def test_exit_codes_say_what_went_wrong(ctl: Ctl, tmp_path: Path) -> None:
    (tmp_path / "wrong").write_text("not-the-token")
    code, _, err = await ctl("status", token="wrong")
    assert code == 3 and "401" in err
    code, _, err = await ctl("cancel", "12345")
    assert code == 1 and "no attempt 12345" in err
    code, out, _ = await ctl("breakers")
    assert (code, out.split()) == (0, ["KEY", "STATE", "FAILURES", "OPENED", "NEXT", "HALF-OPEN"])
    code = await asyncio.to_thread(cli.main, ["ctl", "--url", "http://127.0.0.1:9", "status"])
    assert code == 4
    (tmp_path / "empty").write_text("\n")
    code, _, err = await ctl("status", token="empty")
    assert code == 2 and f"token file {tmp_path / 'empty'} is empty" in err


async def test_a_url_that_is_not_one_is_a_usage_error_not_a_traceback(
        capsys: pytest.CaptureFixture[str]) -> None:
    for url in ("notaurl", "http://[::1", "ftp://127.0.0.1:9095", "http://127.0.0.1:x"):
        code = await asyncio.to_thread(cli.main, ["ctl", "--url", url, "status"])
        _, err = capsys.readouterr()
        assert code == 2, (url, err)
        assert err.startswith("responder ctl: --url: ") and "Traceback" not in err, err


async def test_without_url_ctl_asks_the_address_its_configuration_listens_on(
        server: TestServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RESPONDER_URL", raising=False)
    config = tmp_path / "other.yaml"
    config.write_text(f"listen: 0.0.0.0:{server.port}\n")
    argv = ["ctl", "-c", str(config), "--token-file", str(tmp_path / "ctl-token"), "status"]
    code = await asyncio.to_thread(cli.main, argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "paused" in out
    missing = ["ctl", "-c", str(tmp_path / "nope.yaml"), "status"]
    assert await asyncio.to_thread(cli.main, missing) == 2
    assert "no configuration file" in capsys.readouterr().err
