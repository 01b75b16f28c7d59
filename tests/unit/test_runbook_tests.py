"""``responder test``: runbook unit tests pass, fail with file:line and expected vs got,
and report broken test files and configs instead of crashing."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from responder.analyze import Analysis
from responder.config.runbooks import load_runbooks_text
from responder.errors import ConfigError, ConfigErrors, Origin
from responder.match import RunbookIndex
from responder.runbook_tests import Subject, run_test_files

REPO = Path(__file__).resolve().parents[2]

RUNBOOKS = """
runbooks:
  - name: count-cron
    match: [alertname="WorkflowFailed", cronworkflow!=""]
    breaker:
      key: "cron/{{ labels.namespace }}/{{ labels.cronworkflow }}"
      on_open:
        - argo.suspend_cron:
            namespace: "{{ labels.namespace }}"
            cronworkflow: "{{ labels.cronworkflow }}"
    notify: [console]
    continue: true
  - name: retry
    match: [alertname="WorkflowFailed"]
    when: {retryable: true}
    actions:
      - argo.retry: {namespace: "{{ labels.namespace }}", workflow: "{{ labels.workflow }}"}
    notify: [oncall]
    on_exhausted: {notify: [pager]}
  - name: escalate
    match: [alertname="WorkflowFailed"]
    notify: [pager]
"""


class KeywordAnalyzer:
    """Network when the description says "refused", else Unknown."""

    def analyze_alert(self, labels: Mapping[str, str],
                      annotations: Mapping[str, str]) -> Analysis:
        if "refused" in annotations.get("description", ""):
            return Analysis("Network", "connection-refused", 0.9, True, ("retry",),
                            "refused", "annotations")
        return Analysis("Unknown", None, 0.0, False, ())


@dataclass
class FakeRuntime:
    analyzer: KeywordAnalyzer
    index: RunbookIndex


@dataclass
class Loader:
    """Builds the runtime in place and records which configs were asked for."""

    runbooks: str = RUNBOOKS
    loaded: list[Path] = field(default_factory=list)

    def __call__(self, path: Path) -> Subject:
        self.loaded.append(path)
        specs = load_runbooks_text(self.runbooks, channels=["console", "oncall", "pager"])
        return FakeRuntime(KeywordAnalyzer(), RunbookIndex(specs))


PASSING = """\
tests:
  - name: a refused connection is retried
    alerts:
      - labels: {alertname: WorkflowFailed, namespace: tm, workflow: etl-1}
        annotations: {description: "dial tcp: connect: connection refused"}
    expect:
      - alert: 0
        analysis: {category: Network, retryable: true, pattern: connection-refused}
        runbooks: [retry]
        actions: [{argo.retry: {namespace: tm, workflow: etl-1}}]
        breakers: []
        notify: [oncall]
        on_exhausted: [pager]
  - name: a cron run is counted, then escalated when the analysis says so
    alerts:
      - labels: {alertname: WorkflowFailed, namespace: tm, workflow: n-1, cronworkflow: n}
      - labels: {alertname: WorkflowFailed, namespace: tm, workflow: n-2, cronworkflow: n}
        analysis: {category: Timeout}
    expect:
      - alert: 0
        runbooks: [count-cron, escalate]
        breakers: [cron/tm/n]
        on_open: [{argo.suspend_cron: {namespace: tm, cronworkflow: n}}]
        notify: [console, pager]
      - alert: 1
        analysis: {category: Timeout, retryable: true, source: test}
        runbooks: [count-cron, retry]
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_passing_tests_report_success_per_file_and_a_summary(tmp_path: Path) -> None:
    test_file = write(tmp_path / "t.yaml", PASSING)
    ok, report = run_test_files([test_file], default_config=tmp_path / "r.yaml", load=Loader())
    assert ok, report
    assert report.splitlines() == [f"Unit Testing: {test_file}", "  SUCCESS (2 tests)",
                                   "2 tests, 0 failed"]


def test_a_failing_test_names_itself_its_lines_and_expected_versus_got(tmp_path: Path) -> None:
    test_file = write(tmp_path / "t.yaml", """\
tests:
  - name: passes
    alerts: [{labels: {alertname: WorkflowFailed, namespace: tm, workflow: w}}]
    expect: [{runbooks: [escalate]}]
  - name: expects a retry that will not happen
    alerts:
      - labels: {alertname: WorkflowFailed, namespace: tm, workflow: etl-1}
        annotations: {description: "exit status 1"}
    expect:
      - runbooks: [retry]
        actions: [{argo.retry: {namespace: tm, workflow: etl-1}}]
        notify: [pager]
""")
    ok, report = run_test_files([test_file], load=Loader())
    assert not ok
    assert report.splitlines() == [
        f"Unit Testing: {test_file}",
        "  FAILED:",
        f"    {test_file}:5: expects a retry that will not happen",
        f"      {test_file}:10: alert 0 (WorkflowFailed firing; analysis Unknown, "
        "retryable false, pattern -)",
        "        runbooks:",
        '          expected: ["retry"]',
        '          got:      ["escalate"]',
        "        actions:",
        '          expected: [{"argo.retry": {"namespace": "tm", "workflow": "etl-1"}}]',
        "          got:      []",
        "2 tests, 1 failed",
    ]


def test_a_wrong_analysis_expectation_shows_only_the_fields_it_states(tmp_path: Path) -> None:
    test_file = write(tmp_path / "t.yaml", """\
tests:
  - name: thinks it is a network failure
    alerts: [{labels: {alertname: WorkflowFailed}, annotations: {description: boom}}]
    expect: [{analysis: {category: Network, confidence: 0.9}}]
""")
    ok, report = run_test_files([test_file], load=Loader())
    assert not ok
    assert "          expected: {\"category\": \"Network\", \"confidence\": 0.9}\n" \
           "          got:      {\"category\": \"Unknown\", \"confidence\": 0.0}" in report


def test_a_runbook_that_cannot_render_fails_the_test(tmp_path: Path) -> None:
    test_file = write(tmp_path / "t.yaml", """\
tests:
  - name: the workflow label is missing
    alerts:
      - labels: {alertname: WorkflowFailed, namespace: tm}
        analysis: {category: Network}
    expect: [{runbooks: [retry]}]
""")
    ok, report = run_test_files([test_file], load=Loader())
    assert not ok
    assert ("        plan failed: runbook retry: actions[0].argo.retry.workflow: 'dict object' "
            "has no attribute 'workflow' (in '{{ labels.workflow }}')") in report.splitlines()


def test_a_payload_file_is_read_relative_to_the_test_file(tmp_path: Path) -> None:
    payload = json.loads((REPO / "examples/workflow-failed.json").read_text())
    payload["alerts"][0]["annotations"]["description"] = "connection refused"
    write(tmp_path / "payloads/p.json", json.dumps(payload))
    test_file = write(tmp_path / "tests/t.yaml", """\
tests:
  - name: from a payload
    payload: ../payloads/p.json
    expect:
      - runbooks: [count-cron, retry]
        actions: [{argo.retry: {namespace: taskmaster, workflow: nightly-etl-29k4x}}]
""")
    ok, report = run_test_files([test_file], load=Loader())
    assert ok, report


def test_the_config_is_relative_to_the_test_file_and_loaded_once(tmp_path: Path) -> None:
    first = write(tmp_path / "a/t.yaml", "config: ../conf/responder.yaml\n" + PASSING)
    second = write(tmp_path / "b/t.yaml", "config: ../conf/responder.yaml\n" + PASSING)
    third = write(tmp_path / "c/t.yaml", PASSING)
    loader = Loader()
    ok, _ = run_test_files([first, second, third], default_config=tmp_path / "default.yaml",
                           load=loader)
    assert ok
    assert loader.loaded == [(tmp_path / "conf/responder.yaml").resolve(),
                             (tmp_path / "default.yaml").resolve()]


def test_an_invalid_test_file_is_reported_with_every_error_and_fails(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.yaml", """\
tests:
  - name: two sources
    alerts: [{labels: {alertname: X}}]
    payload: p.json
    expect: [{runbooks: []}]
  - name: wrong shapes
    alerts:
      - labels: {alertname: X, code: 500}
        colour: red
    expect:
      - alert: 3
        actions: [argo.retry]
""")
    good = write(tmp_path / "good.yaml", PASSING)
    ok, report = run_test_files([bad, good], load=Loader())
    assert not ok
    assert report.splitlines() == [
        f"Unit Testing: {bad}",
        "  FAILED: the test file is invalid:",
        f"    {bad}:2: two sources: give either alerts or payload",
        f"    {bad}:8: wrong shapes.alerts[0].labels.code: expected a string, got number "
        "(quote it)",
        f"    {bad}:9: wrong shapes.alerts[0].colour: unknown key",
        f"    {bad}:11: wrong shapes.expect[0].alert: the group has 1 alert(s)",
        f"    {bad}:12: wrong shapes.expect[0].actions: expected a list of one-key mappings "
        "like {argo.retry: {namespace: ns, workflow: wf}}",
        f"Unit Testing: {good}",
        "  SUCCESS (2 tests)",
        "2 tests, 0 failed, 1 file(s) could not run",
    ]


def test_a_config_that_does_not_load_is_reported(tmp_path: Path) -> None:
    test_file = write(tmp_path / "t.yaml", PASSING)

    def broken(path: Path) -> Subject:
        raise ConfigErrors([ConfigError(Origin("responder.yaml", 3), "channels: unknown key")])

    ok, report = run_test_files([test_file], load=broken)
    assert not ok
    assert "  FAILED: cannot load " in report
    assert "    responder.yaml:3: channels: unknown key" in report.splitlines()


@pytest.mark.parametrize("text", ["", "tests: []\n", "tests: {}\n"])
def test_a_file_without_tests_is_invalid(tmp_path: Path, text: str) -> None:
    test_file = write(tmp_path / "t.yaml", text)
    ok, report = run_test_files([test_file], load=Loader())
    assert not ok
    assert "tests: expected a non-empty list of tests" in report


def test_the_shipped_runbook_tests_pass_against_the_shipped_config() -> None:
    files = sorted((REPO / "rules/runbooks/tests").glob("*.yaml"))
    assert files
    ok, report = run_test_files(files, default_config=REPO / "responder.yaml")
    assert ok, report
