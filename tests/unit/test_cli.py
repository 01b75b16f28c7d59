"""The ``responder`` command as an operator runs it: exit codes and what it prints."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.conftest import REPO

RESPONDER = str(Path(sys.executable).with_name("responder"))


def run(*args: str, stdin: str | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RESPONDER, *args], capture_output=True, text=True, input=stdin,
                          cwd=cwd, timeout=60, check=False)


def test_check_accepts_the_shipped_configuration() -> None:
    result = run("check", "-c", "responder.yaml")
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_check_reports_each_error_as_file_line_and_exits_1(
        tmp_path: Path, write_config: Callable[..., Path]) -> None:
    config = write_config({"listen": "0.0.0.0:9095", "dry_run": "yes"}, token=None)
    text = config.read_text()
    config.write_text(text + "surprise: 1\n")
    result = run("check", "-c", str(config))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert any(line.startswith(f"{config}:") and "dry_run" in line for line in lines), lines
    assert any("surprise: unknown key" in line for line in lines), lines
    assert any("not a loopback address" in line for line in lines), lines
    assert all(line.split(":")[1].isdigit() for line in lines[:-1]), lines


def test_analyze_prints_the_spec_json_keys() -> None:
    result = run("analyze", "--json", "Error: ImagePullBackOff: manifest unknown")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert list(data)[:5] == ["category", "pattern", "confidence", "retryable", "recommendations"]
    assert data["category"] == "Configuration" and data["retryable"] is False


def test_analyze_reads_stdin_and_says_unknown_when_nothing_matches() -> None:
    result = run("analyze", "--json", stdin="the quick brown fox")
    assert json.loads(result.stdout)["category"] == "Unknown"


def test_explain_shows_the_plan_without_touching_anything(tmp_path: Path) -> None:
    result = run("explain", "--json", str(REPO / "examples/workflow-failed.json"), "-c",
                 str(REPO / "responder.yaml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    (alert,) = data["alerts"]
    assert alert["analysis"]["category"] == "Network"
    runbooks = {r["runbook"]: r for r in alert["runbooks"]}
    retry = runbooks["retry-transient-workflow-failure"]["would"][0]
    assert (retry["kind"], retry["would"], retry["delays_seconds"]) == (
        "argo.retry", "schedule", [30.0, 60.0, 120.0])
    assert {n["channel"] for n in data["notifications"]} >= {"oncall"}
    assert list(tmp_path.iterdir()) == []


def test_runbook_tests_of_the_shipped_runbooks_pass() -> None:
    files = sorted(str(p) for p in (REPO / "rules/runbooks/tests").glob("*.yaml"))
    result = run("test", *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_explain_shows_one_message_per_alert_when_the_runbook_asks(
        tmp_path: Path, write_config: Callable[..., Path]) -> None:
    (tmp_path / "per-alert.yaml").write_text(
        'runbooks:\n  - name: each\n    match: [alertname="WorkflowFailed"]\n'
        '    notify: [{channel: oncall, per_alert: true}, console]\n')
    config = write_config({"rules": [str(tmp_path / "per-alert.yaml")]})
    payload = json.loads((REPO / "examples/workflow-failed.json").read_text())
    second = json.loads(json.dumps(payload["alerts"][0]))
    second["labels"]["workflow"] = "other-wf"
    second["fingerprint"] = "0000000000000002"
    payload["alerts"].append(second)
    (tmp_path / "two.json").write_text(json.dumps(payload))
    result = run("explain", "--json", str(tmp_path / "two.json"), "-c", str(config))
    assert result.returncode == 0, result.stderr
    sent = [(n["channel"], n["alerts"]) for n in json.loads(result.stdout)["notifications"]]
    assert sent == [("oncall", [0]), ("console", [0, 1]), ("oncall", [1])]


def test_serve_that_cannot_listen_or_open_its_journal_says_so_in_one_line_and_starts_nothing(
        tmp_path: Path, write_config: Callable[..., Path]) -> None:
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = taken.getsockname()[1]
        config = write_config({"listen": f"127.0.0.1:{port}"})
        result = run("serve", "-c", str(config))
        assert result.returncode == 1
        assert result.stderr.strip().splitlines()[-1] == (
            f"error: cannot listen on 127.0.0.1:{port}: Address already in use")
        assert "Traceback" not in result.stderr and "listening on" not in result.stderr
        assert not (tmp_path / "state.db").exists()     # nothing started: no journal opened
    finally:
        taken.close()
    (tmp_path / "file").write_text("")
    config = write_config({"state": {"path": str(tmp_path / "file" / "state.db")}})
    result = run("serve", "-c", str(config))
    assert result.returncode == 1
    assert f"error: cannot open the journal {tmp_path / 'file' / 'state.db'}: " in result.stderr
    assert "Traceback" not in result.stderr and "Unclosed" not in result.stderr, result.stderr


def test_a_reader_that_goes_away_is_no_traceback(tmp_path: Path) -> None:
    payload = json.loads((REPO / "examples/workflow-failed.json").read_text())
    alert = payload["alerts"][0]
    payload["alerts"] = [{**alert, "labels": {**alert["labels"], "workflow": f"wf-{i}"},
                          "fingerprint": f"{i:016x}"} for i in range(3000)]
    (tmp_path / "storm.json").write_text(json.dumps(payload))
    proc = subprocess.Popen([RESPONDER, "explain", "-c", "responder.yaml",
                             str(tmp_path / "storm.json")],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()          # as `| head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_check_names_the_config_line_of_every_file_it_cannot_find(tmp_path: Path) -> None:
    config = tmp_path / "responder.yaml"
    config.write_text("listen: 127.0.0.1:9095\n"
                      f"rules: [{tmp_path}/none/*.yaml]\n"
                      f"patterns: [{tmp_path}/none/patterns.yaml]\n"
                      f"templates: {tmp_path}/none\n"
                      "channels: {console: {type: log}}\n")
    result = run("check", "-c", str(config))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert f"{config}:2: rules: '{tmp_path}/none/*.yaml' matches no file" in lines, lines
    assert f"{config}:3: patterns: '{tmp_path}/none/patterns.yaml': no such file" in lines, lines
    assert f"{config}:4: templates: {tmp_path}/none is not a directory" in lines, lines
    assert lines[-1] == "3 error(s)"
