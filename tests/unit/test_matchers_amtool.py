"""``responder check`` and Alertmanager's own ``amtool`` agree on every matcher, and on
which label values each one matches.

Each matcher goes into a route of its own generated ``alertmanager.yml`` (``amtool
check-config`` parses route matchers offline, as Alertmanager does at start) and into a
runbook of one generated runbook file for ``responder check``; both verdicts, accept or
refuse, must be the same for every one. The list holds what RE2 refuses and a backtracking
engine takes (lookaround, backreferences, possessive quantifiers), what C++ RE2 takes and
Go's regexp refuses, and ordinary valid matchers. ``amtool config routes test`` then routes
label values through one route per matcher, and the responder must match the same ones
(``a)|(b`` included: Alertmanager compiles ``^(?:a)|(b)$``, which "abc" matches).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, require_binary

MATCHERS = [
    # valid, as runbooks write them
    'alertname="WorkflowFailed"',
    'namespace=~"taskmaster|ci-.*"',
    'severity!~"info|none"',
    'workflow!=""',
    "alertname=WorkflowFailed",
    'namespace=~"(?i)TaskMaster"',
    'job=~"\\\\d+"',
    'job=~"[[:alpha:]]+"',
    'job=~"\\\\pL+"',
    'job=~"a{2,5}"',
    'job=~"a{1000}"',
    'job=~"(?P<name>a)b"',
    'job=~"\\\\Qa.b\\\\E"',
    'job=~"(?s:.)"',
    'job=~"(?U)a*"',
    'job=~"\\\\bword\\\\b"',
    'job=~"(?m)^a$"',
    'job=~"\\\\x{10FFFF}"',
    'job=~""',
    'job=~".*"',
    'job=~"a)|(b"',      # Alertmanager wraps the value in ^(?:...)$: this is valid there
    # refused by RE2 (and so by Alertmanager)
    'job=~"(?!Foo).*"',
    'job=~"(?=a)a"',
    'job=~"(?<=a)b"',
    'job=~"(?<!a)b"',
    'job=~"(a)\\\\1"',
    'job=~"a++"',
    'job=~"a*+"',
    'job=~"a{1001}"',
    'job=~"\\\\Z"',
    'job=~"\\\\8"',
    'job=~"(?>a)"',
    'job=~"(?#comment)a"',
    'job=~"[a"',
    'job=~"(?i"',
    'job=~"[z-a]"',
    'job=~"\\\\G"',
    'job=~"\\\\p{Foo}"',
    'job=~"x{2}{3}"',
    # taken by C++ RE2, refused by Go's regexp
    'job=~"\\\\C"',
    'job=~"(?<name>a)b"',
    # escaped, so literal: valid
    'job=~"\\\\\\\\C"',
    'job=~"\\\\(?<a>"',
    # not a matcher at all
    '0job="x"',
    'job="x',
    'job=~"a"b"',
]


def amtool_verdicts(tmp_path: Path, matchers: list[str]) -> list[bool]:
    amtool = require_binary("amtool")
    files = []
    for i, matcher in enumerate(matchers):
        path = tmp_path / f"am-{i}.yml"
        path.write_text(yaml.safe_dump({
            "route": {"receiver": "responder",
                      "routes": [{"receiver": "responder", "matchers": [matcher]}]},
            "receivers": [{"name": "responder"}]}))
        files.append(path)
    result = subprocess.run([amtool, "check-config", *map(str, files)], capture_output=True,
                            text=True, timeout=60, check=False)
    verdict = dict(re.findall(r"Checking '([^']+)'\s+(SUCCESS|FAILED)", result.stdout))
    assert len(verdict) == len(files), result.stdout + result.stderr
    return [verdict[str(path)] == "SUCCESS" for path in files]


def responder_verdicts(tmp_path: Path, matchers: list[str]) -> list[bool]:
    # One runbook per matcher, each on a known line, so errors map back to matchers.
    lines = ["runbooks:"]
    where = {}
    for i, matcher in enumerate(matchers):
        lines += [f"  - name: m{i}", "    match:"]
        where[len(lines) + 1] = i
        lines += [f"      - {yaml.safe_dump(matcher, default_style=chr(39)).strip()}",
                  "    notify: [{channel: console}]"]
    (tmp_path / "runbooks.yaml").write_text("\n".join(lines) + "\n")
    (tmp_path / "responder.yaml").write_text(yaml.safe_dump({
        "rules": [str(tmp_path / "runbooks.yaml")],
        "patterns": [str(REPO / "rules/patterns.yaml")],
        "templates": str(REPO / "templates"),
        "channels": {"console": {"type": "log"}}}))
    result = subprocess.run(
        [sys.executable, "-m", "responder", "check", "-c", str(tmp_path / "responder.yaml")],
        capture_output=True, text=True, timeout=60, check=False)
    refused = set()
    for line in result.stderr.splitlines():
        found = re.match(r".*runbooks\.yaml:(\d+): ", line)
        if found:
            assert int(found[1]) in where, f"error on an unexpected line: {line}"
            refused.add(where[int(found[1])])
    assert result.returncode == (1 if refused else 0), result.stderr
    return [i not in refused for i in range(len(matchers))]


def test_responder_check_accepts_and_refuses_exactly_the_matchers_amtool_does(
        tmp_path: Path) -> None:
    theirs = amtool_verdicts(tmp_path, MATCHERS)
    ours = responder_verdicts(tmp_path, MATCHERS)
    differ = [(m, "amtool " + ("accepts" if t else "refuses"))
              for m, t, o in zip(MATCHERS, theirs, ours, strict=True) if t != o]
    assert differ == []
    # The list is worth running: it holds both verdicts.
    assert any(theirs) and not all(theirs)


@pytest.mark.parametrize("matcher", ['job=~"(?!Foo).*"', 'job=~"(a)\\\\1"',
                                     'job=~"(?<=a)b"'])
def test_a_refused_regex_is_reported_at_its_file_and_line(tmp_path: Path, matcher: str) -> None:
    assert responder_verdicts(tmp_path, [matcher]) == [False]


# Matching, not only parsing: Alertmanager routes each label value through every matcher.
MATCHING = [
    'job=~"(?i)ab|c"', 'job=~"a.*"', 'job!~"x+"', 'job=~"\\\\d+"', 'job=~"[[:alpha:]]+"',
    'job=~"\\\\pL+"', 'job=~"é+"', 'job=~"a)|(b"', 'job=~""', 'job!=""', 'job=~"(?s:.)"',
    'job=~"\\\\bx\\\\b"', 'job=~"(?U)a+?"', 'job="AB"', 'job!="c"', 'job=~"\\\\Qa.b\\\\E"',
]
VALUES = ["AB", "abc", "c", "a", "123", "é", "éé", "x", "xx", "b", "a.b", "axb", None]


def test_responder_matches_each_label_value_as_alertmanager_routes_it(tmp_path: Path) -> None:
    from responder.config.runbooks import parse_matcher

    amtool = require_binary("amtool")
    config = tmp_path / "routes.yml"
    config.write_text(yaml.safe_dump({
        "route": {"receiver": "none", "routes": [
            {"receiver": f"m{i}", "matchers": [m], "continue": True}
            for i, m in enumerate(MATCHING)]},
        "receivers": [{"name": "none"}] + [{"name": f"m{i}"} for i in range(len(MATCHING))]}))
    differ = []
    for value in VALUES:
        labels = ["other=1"] if value is None else [f"job={value}"]
        result = subprocess.run([amtool, "config", "routes", "test",
                                 f"--config.file={config}", *labels],
                                capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 0, result.stderr
        theirs = set(result.stdout.strip().split(",")) - {"none"}
        ours = {f"m{i}" for i, m in enumerate(MATCHING)
                if parse_matcher(m).matches({} if value is None else {"job": value})}
        if theirs != ours:
            differ.append((value, sorted(theirs ^ ours)))
    assert differ == []
