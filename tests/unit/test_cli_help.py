"""``responder --help`` reads as plain text, with a line for every flag; ``explain`` takes
several payloads at once (``responder explain examples/*.json``)."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from pathlib import Path

from responder.cli import build_parser
from tests.conftest import REPO
from tests.unit.test_cli import RESPONDER, run

MARKUP = re.compile(r"``|:\w+:`|\*\*|^\s*\.\. ", re.M)


def parsers() -> dict[str, argparse.ArgumentParser]:
    root = build_parser()
    found = {"responder": root}
    for action in root._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[f"responder {name}"] = sub
    return found


def test_every_flag_and_argument_of_every_command_has_a_help_line() -> None:
    missing = [(command, action.option_strings or action.dest)
               for command, parser in parsers().items() for action in parser._actions
               if not action.help or action.help == argparse.SUPPRESS]
    assert missing == []


def test_help_is_plain_text_naming_every_flag() -> None:
    for command, parser in parsers().items():
        result = subprocess.run([RESPONDER, *command.split()[1:], "--help"],
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        assert not MARKUP.search(result.stdout), (command, result.stdout)
        assert parser.description, command
        for action in parser._actions:
            for flag in action.option_strings:
                assert re.search(rf"^ +(?:\S.*[ ,])?{re.escape(flag)}(?![\w-])", result.stdout,
                                 re.M), (
                    command, flag)


def test_explain_takes_several_payloads_and_names_each(tmp_path: Path) -> None:
    payloads = sorted(str(p) for p in (REPO / "examples").glob("*.json"))
    assert len(payloads) >= 3
    result = run("explain", "-c", "responder.yaml", *payloads)
    assert result.returncode == 0, result.stderr
    for name in payloads:
        assert f"== {name}" in result.stdout
    listed = json.loads(run("explain", "--json", "-c", "responder.yaml", *payloads).stdout)
    assert [e["payload"] for e in listed] == payloads
    assert all(e["alerts"] for e in listed)


def test_explain_reports_a_bad_payload_and_still_explains_the_others(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": "4", "status": "firing"')
    good = str(REPO / "examples/workflow-failed.json")
    result = run("explain", "-c", "responder.yaml", str(bad), good, str(tmp_path / "none.json"))
    assert result.returncode == 1
    assert f"== {good}" in result.stdout
    assert f"{bad}: $: invalid JSON" in result.stderr
    assert f"{tmp_path / 'none.json'}: No such file or directory" in result.stderr
    assert "Traceback" not in result.stderr
