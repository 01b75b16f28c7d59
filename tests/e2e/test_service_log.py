"""``responder serve`` reports on itself: JSON log lines, a start and a stop line, build info.

A real process, as an operator runs it: ``log: {format: json}`` in its config, posted one
webhook, then stopped with SIGTERM as Kubernetes stops a pod.
"""

from __future__ import annotations

import json
import re
import signal
from datetime import datetime
from pathlib import Path

from tests.e2e.procs import REPO, free_port, http, responder_config, running, start_responder

TOKEN = "log-test-token"


def test_json_log_lines_with_zone_a_start_and_a_stop_line_and_build_info(
        tmp_path: Path) -> None:
    port = free_port()
    config = responder_config(tmp_path, port, TOKEN, log={"format": "json", "level": "info"})
    proc = start_responder(tmp_path, config, port)
    with running(proc):
        body = (REPO / "examples/workflow-failed.json").read_bytes()
        assert http("POST", f"http://127.0.0.1:{port}/webhook", body, TOKEN)[0] == 200
        status, text = http("GET", f"http://127.0.0.1:{port}/metrics")
        status_code, info = http("GET", f"http://127.0.0.1:{port}/api/v1/status", token=TOKEN)
        proc.kill(signal.SIGTERM)
        assert proc.popen is not None and proc.popen.returncode == 0

    assert status == 200 and status_code == 200
    assert re.search(r'^responder_build_info\{python="3\.\d+\.\d+",version="[^"]+"\} 1\.0$',
                     text, re.M), text
    assert "_created" not in text
    # No cluster configured: actions run dry, and the status says so.
    assert info["dry_run"] is True and info["backend"] == "dry-run"
    assert "Kubernetes" in info["dry_run_reason"]

    lines = [json.loads(line) for line in proc.output().splitlines() if line.strip()]
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys(), line
        stamp = datetime.fromisoformat(line["time"])
        assert stamp.tzinfo is not None and line["time"][-6] in "+-", line["time"]
    messages = [line["message"] for line in lines]
    start = next(line for line in lines if "listening on" in line["message"])
    assert start["listen"] == f"127.0.0.1:{port}" and start["version"]
    assert any(line.get("signal") == "SIGTERM" for line in lines), messages
    assert messages[-1] == "alert-responder stopped", messages
    webhook = next(line for line in lines if line["logger"] == "responder.receive")
    assert webhook["accepted"] == 1


def test_text_log_lines_carry_the_zone_too(tmp_path: Path) -> None:
    port = free_port()
    proc = start_responder(tmp_path, responder_config(tmp_path, port, TOKEN), port)
    with running(proc):
        pass
    lines = proc.output().splitlines()
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d info responder: "
                    r"alert-responder \S+ listening on", lines[0]), lines[0]
    assert lines[-1].endswith("info responder: alert-responder stopped"), lines
