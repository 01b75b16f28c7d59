"""Every kind of bad runbook file is one line ``file:line: message``: YAML the reader,
scanner, parser or constructor refuses, duplicate keys, and templates Jinja only refuses
when compiling them (an unknown filter)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from responder.config.runbooks import load_runbooks_text
from responder.errors import ConfigErrors

RESPONDER = str(Path(sys.executable).with_name("responder"))
REPO = Path(__file__).resolve().parents[2]
GOOD = ('runbooks:\n  - name: a\n    match: [\'alertname="X"\']\n'
        '    notify: [{channel: console}]\n')
ONE_LINE = re.compile(r"^rb\.yaml:(\d+): \S.*$")


@pytest.mark.parametrize(("text", "line", "words"), [
    (GOOD.replace("name: a", "name: a\x07"), 2, "U+0007"),
    (GOOD.replace("name: a", "name: a\x00"), 2, "U+0000"),
    (GOOD.replace("    notify", "\tnotify"), 4, "tab"),
    (GOOD + "    match: [x]\n", 5, "duplicate key 'match'"),
    (GOOD.replace("'alertname=\"X\"'", "'alertname"), 3, "quoted scalar"),
    (GOOD.replace("[{channel: console}]", "[{channel: console}"), 4, "flow sequence"),
    (GOOD + "---\nrunbooks: []\n", 5, "found another document"),
    (GOOD.replace("name: a", "name: 2001-02-30"), 2, "not a valid timestamp"),
    (GOOD.replace("name: a", "name: !!int x"), 2, "not a valid int"),
    (GOOD.replace("name: a", "name: *nowhere"), 2, "alias"),
    (GOOD.replace("name: a", "name: !!python/object:os.system x"), 2, "constructor"),
    ("runbooks:\n  - name: a\n    match: ['alertname=\"X\"']\n    actions:\n"
     "      - breaker.trip: {key: '{{ labels.x | nope }}'}\n", 5, "No filter named 'nope'"),
])
def test_each_kind_of_yaml_or_template_error_is_one_line_with_file_and_line(
        text: str, line: int, words: str) -> None:
    with pytest.raises(ConfigErrors) as caught:
        load_runbooks_text(text, channels={"console"}, path="rb.yaml")
    messages = [str(e) for e in caught.value.errors]
    assert len(messages) == 1, messages
    (message,) = messages
    match = ONE_LINE.match(message)
    assert match is not None and "\n" not in message, message
    assert int(match.group(1)) == line and words in message, message


def test_check_reports_an_unknown_jinja_filter_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "rb.yaml").write_text(
        "runbooks:\n  - name: a\n    match: ['alertname=\"X\"']\n    actions:\n"
        "      - argo.retry: {namespace: '{{ labels.namespace | nope }}', workflow: w}\n")
    (tmp_path / "responder.yaml").write_text(
        f"state: {{path: {tmp_path / 's.db'}}}\nrules: [rb.yaml]\n"
        f"patterns: [{REPO / 'rules/patterns.yaml'}]\ntemplates: {REPO / 'templates'}\n"
        "channels: {console: {type: log}}\n")
    result = subprocess.run([RESPONDER, "check", "-c", str(tmp_path / "responder.yaml")],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.splitlines()[0] == (
        "rb.yaml:5: a.actions[0].argo.retry.namespace: template: No filter named 'nope'.")
