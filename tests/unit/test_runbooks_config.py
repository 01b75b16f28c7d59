"""Runbook files load into specs, or fail with every error named by file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from responder.config.runbooks import (
    ACTION_KINDS,
    RateLimitSpec,
    RetrySpec,
    RunbookSpec,
    load_runbooks,
)
from responder.errors import ConfigErrors

REPO = Path(__file__).resolve().parents[2]
CHANNELS = ("oncall", "pager", "console")

VALID = """\
runbooks:
  - name: retry-transient
    description: Retry transient failures.
    match:
      - alertname="WorkflowFailed"
      - namespace=~"taskmaster|ci-.*"
    when: {retryable: true, category: [Network, Timeout]}
    actions:
      - argo.retry: {namespace: "{{ labels.namespace }}", workflow: "{{ labels.workflow }}",
                     restart_successful: true}
    retry:
      limit: 4
      backoff: {duration: 10s, factor: 3, max_duration: 2m}
    rate_limit: {max_actions: 2, window: 1h}
    breaker:
      key: "{{ labels.namespace }}/{{ labels.get('workflow_template') or labels.workflow }}"
      threshold: 2
      window: 20m
      cooldown: 5m
      on_open: [{argo.suspend_cron: {namespace: a, cronworkflow: b}}]
    notify: [{channel: oncall, template: slack.json.j2, fallback: console, per_alert: true}]
    on_exhausted: {notify: [pager]}
    continue: true
  - name: page
    match: [alertname="WorkflowFailed"]
    status: any
    notify: [{channel: pager}]
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def load(directory: Path, patterns: tuple[str, ...] = ("*.yaml",),
         templates: tuple[str, ...] = ()) -> tuple[RunbookSpec, ...]:
    return load_runbooks(patterns, base_dir=directory, channels=CHANNELS, templates=templates,
                         display_base=directory)


def errors_of(directory: Path, patterns: tuple[str, ...] = ("*.yaml",),
              templates: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        load(directory, patterns, templates)
    return [str(e) for e in info.value.errors]


def test_a_valid_file_loads_into_specs_with_their_origin(tmp_path: Path) -> None:
    write(tmp_path, "rb.yaml", VALID)
    retry, page = load_runbooks(["*.yaml"], base_dir=tmp_path, channels=CHANNELS,
                                templates=["slack.json.j2"], display_base=tmp_path)
    assert retry.name == "retry-transient"
    assert [str(m) for m in retry.matchers] == [
        'alertname="WorkflowFailed"', 'namespace=~"taskmaster|ci-.*"']
    assert retry.status == "firing"
    assert retry.when_retryable is True
    assert retry.when_categories == frozenset({"Network", "Timeout"})
    assert retry.retry == RetrySpec(4, 10.0, 3.0, 120.0)
    assert retry.rate_limit == RateLimitSpec(2, 3600.0)
    assert retry.breaker is not None
    assert retry.breaker.threshold == 2
    assert retry.breaker.on_open[0].kind == "argo.suspend_cron"
    assert retry.actions[0].params["restart_successful"].source == "true"
    notify = retry.notify[0]
    assert (notify.channel, notify.template, notify.fallback, notify.per_alert) == (
        "oncall", "slack.json.j2", "console", True)
    assert [n.channel for n in retry.on_exhausted] == ["pager"]
    assert retry.continue_ is True
    assert str(retry.origin) == "rb.yaml:2"
    assert str(retry.actions[0].origin) == "rb.yaml:9"
    assert page.status == "any"


def test_omitted_settings_take_the_documented_defaults(tmp_path: Path) -> None:
    write(tmp_path, "rb.yaml", "runbooks:\n  - name: x\n    match: [a=b]\n"
                               "    notify: [{channel: oncall}]\n")
    (spec,) = load(tmp_path)
    assert spec.retry == RetrySpec(limit=3, duration=30.0, factor=2.0,
                                   max_duration=300.0)
    assert spec.rate_limit == RateLimitSpec(max_actions=5, window=600.0)
    assert spec.status == "firing"
    assert spec.breaker is None
    assert spec.when_retryable is None and spec.when_categories is None
    assert spec.continue_ is False


def test_every_action_of_the_spec_is_known_with_its_parameters() -> None:
    assert {k: (sorted(v.required), sorted(v.optional)) for k, v in ACTION_KINDS.items()} == {
        "argo.retry": (["namespace", "workflow"], ["node_field_selector", "restart_successful"]),
        "argo.resubmit": (["namespace", "workflow"], ["memoized"]),
        "argo.stop": (["namespace", "workflow"], ["message"]),
        "argo.terminate": (["namespace", "workflow"], ["message"]),
        "argo.suspend_cron": (["cronworkflow", "namespace"], []),
        "argo.resume_cron": (["cronworkflow", "namespace"], []),
        "breaker.trip": (["key"], ["for"]),
        "breaker.reset": (["key"], []),
    }


# Each case is a runbook whose one mistake sits on the line marked `# <-`.
DURATION = (": expected numbers with units y, w, d, h, m, s, ms, largest first and each "
            "once (e.g. 30s, 5m, 1h30m)")
BASE_MATCH = '    match: [alertname="A"]\n'
CASES = {
    "unknown key": (
        "  - name: r\n" + BASE_MATCH + "    notify: [console]\n    colour: blue  # <-\n",
        "r.colour: unknown key"),
    "unknown action": (
        "  - name: r\n" + BASE_MATCH + "    actions:\n"
        "      - argo.reboot: {namespace: a}  # <-\n",
        "r.actions[0]: unknown action 'argo.reboot' (known: argo.resubmit, argo.resume_cron, "
        "argo.retry, argo.stop, argo.suspend_cron, argo.terminate, breaker.reset, "
        "breaker.trip)"),
    "unknown action parameter": (
        "  - name: r\n" + BASE_MATCH + "    actions:\n"
        "      - argo.stop:\n          namespace: a\n          workflow: b\n"
        "          reason: c  # <-\n",
        "r.actions[0].argo.stop.reason: unknown parameter of argo.stop "
        "(known: message, namespace, workflow)"),
    "missing action parameter": (
        "  - name: r\n" + BASE_MATCH + "    actions:\n"
        "      - argo.retry: {namespace: a}  # <-\n",
        "r.actions[0]: argo.retry requires workflow"),
    "action not a one-key mapping": (
        "  - name: r\n" + BASE_MATCH + "    actions:\n"
        "      - {argo.stop: {namespace: a, workflow: b}, argo.terminate: {}}  # <-\n",
        "r.actions[0]: expected one mapping like {argo.retry: {namespace: ..., workflow: ...}}"),
    "bad matcher": (
        "  - name: r\n    match:\n      - alertname=\"A\"\n      - 'job=\"x'  # <-\n"
        "    notify: [console]\n",
        "r.match[1]: bad matcher 'job=\"x': missing closing double quote"),
    "bad regex": (
        "  - name: r\n    match:\n      - 'job=~\"(unclosed\"'  # <-\n"
        "    notify: [console]\n",
        "r.match[0]: bad regex '(unclosed': missing ): (unclosed"),
    "lookahead, which RE2 (Alertmanager) refuses": (
        "  - name: r\n    match:\n      - 'job=~\"(?!Foo).*\"'  # <-\n"
        "    notify: [console]\n",
        "r.match[0]: bad regex '(?!Foo).*': invalid perl operator: (?!"),
    "no matchers": (
        "  - name: r  # <-\n    notify: [console]\n",
        "r.match: required (a list of matchers)"),
    "bad duration": (
        "  - name: r\n" + BASE_MATCH + "    notify: [console]\n    retry:\n      backoff:\n"
        "        duration: 5 minutes  # <-\n",
        "r.retry.backoff.duration: invalid duration '5 minutes'" + DURATION),
    "duration units out of order": (
        "  - name: r\n" + BASE_MATCH + "    notify: [console]\n    breaker:\n"
        "      key: k\n      window: 5m1h  # <-\n",
        "r.breaker.window: invalid duration '5m1h'" + DURATION),
    "duration unit twice": (
        "  - name: r\n" + BASE_MATCH + "    notify: [console]\n    breaker:\n"
        "      key: k\n      cooldown: 30s30s  # <-\n",
        "r.breaker.cooldown: invalid duration '30s30s'" + DURATION),
    "zero breaker window": (
        "  - name: r\n" + BASE_MATCH + "    notify: [console]\n    breaker:\n"
        "      key: k\n      window: 0s  # <-\n",
        "r.breaker.window: must be longer than zero, got '0s'"),
    "zero cooldown": (
        "  - name: r\n" + BASE_MATCH + "    notify: [console]\n    breaker:\n"
        "      key: k\n      cooldown: '0'  # <-\n",
        "r.breaker.cooldown: must be longer than zero, got '0'"),
    "zero rate limit window": (
        "  - name: r\n" + BASE_MATCH + "    notify: [console]\n    rate_limit:\n"
        "      window: 0ms  # <-\n",
        "r.rate_limit.window: must be longer than zero, got '0ms'"),
    "negative breaker threshold": (
        "  - name: r\n" + BASE_MATCH + "    notify: [console]\n    breaker:\n"
        "      key: k\n      threshold: -1  # <-\n",
        "r.breaker.threshold: must be at least 1, got -1"),
    "negative backoff": (
        "  - name: r\n" + BASE_MATCH + "    notify: [console]\n    retry:\n      backoff:\n"
        "        duration: -30s  # <-\n",
        "r.retry.backoff.duration: invalid duration '-30s'" + DURATION),
    "zero rate limit actions": (
        "  - name: r\n" + BASE_MATCH + "    notify: [console]\n    rate_limit:\n"
        "      max_actions: 0  # <-\n",
        "r.rate_limit.max_actions: must be at least 1, got 0"),
    "backoff cap below its start": (
        "  - name: r\n" + BASE_MATCH + "    notify: [console]\n    retry:\n"
        "      backoff: {duration: 5m, max_duration: 1m}  # <-\n",
        "r.retry.backoff.max_duration: must be at least duration"),
    "retry limit below one": (
        "  - name: r\n" + BASE_MATCH + "    notify: [console]\n    retry:\n"
        "      limit: 0  # <-\n",
        "r.retry.limit: must be at least 1, got 0"),
    "jinja syntax error": (
        "  - name: r\n" + BASE_MATCH + "    actions:\n      - argo.retry:\n"
        "          namespace: a\n          workflow: '{{ labels.workflow '  # <-\n",
        "r.actions[0].argo.retry.workflow: template syntax: unexpected end of template, "
        "expected 'end of print statement'."),
    "unknown template variable": (
        "  - name: r\n" + BASE_MATCH + "    actions:\n      - argo.retry:\n"
        "          namespace: '{{ label.namespace }}'  # <-\n          workflow: b\n",
        "r.actions[0].argo.retry.namespace: template uses unknown variable(s) label "
        "(known: alert, analysis, annotations, group, labels)"),
    "jinja error in a breaker key": (
        "  - name: r\n" + BASE_MATCH + "    notify: [console]\n    breaker:\n"
        "      key: '{% if %}'  # <-\n",
        "r.breaker.key: template syntax: Expected an expression, got 'end of statement block'"),
    "invalid literal namespace": (
        "  - name: r\n" + BASE_MATCH + "    actions:\n"
        "      - argo.retry: {namespace: Task_Master, workflow: b}  # <-\n",
        "r.actions[0].argo.retry.namespace: 'Task_Master' is not a valid namespace name "
        "(RFC 1123 label)"),
    "literal boolean that is not one": (
        "  - name: r\n" + BASE_MATCH + "    actions:\n"
        "      - argo.resubmit: {namespace: a, workflow: b, memoized: maybe}  # <-\n",
        "r.actions[0].argo.resubmit.memoized: expected true or false, got 'maybe'"),
    "unknown channel": (
        "  - name: r\n" + BASE_MATCH + "    notify:\n      - channel: slack  # <-\n",
        "r.notify[0].channel: unknown channel 'slack' (configured: console, oncall, pager)"),
    "unknown fallback channel": (
        "  - name: r\n" + BASE_MATCH + "    notify:\n      - channel: oncall\n"
        "        fallback: email  # <-\n",
        "r.notify[0].fallback: unknown channel 'email' (configured: console, oncall, pager)"),
    "unknown on_exhausted channel": (
        "  - name: r\n" + BASE_MATCH + "    notify: [console]\n    on_exhausted:\n"
        "      notify: [{channel: pagerduty}]  # <-\n",
        "r.on_exhausted.notify[0].channel: unknown channel 'pagerduty' "
        "(configured: console, oncall, pager)"),
    "unknown on_exhausted key": (
        "  - name: r\n" + BASE_MATCH + "    notify: [console]\n    on_exhausted:\n"
        "      page: [pager]  # <-\n",
        "r.on_exhausted.page: unknown key"),
    "neither actions nor notify": (
        "  - name: r  # <-\n" + BASE_MATCH + "    description: does nothing\n",
        "r: has neither actions nor notify: it would do nothing"),
    "unknown category": (
        "  - name: r\n" + BASE_MATCH + "    notify: [console]\n"
        "    when: {category: [Network, Flaky]}  # <-\n",
        "r.when.category: unknown category 'Flaky' (known: ExternalDependency, Network, "
        "ResourceExhaustion, Infrastructure, Timeout, Configuration, CodeDefect, Conflict, "
        "Unknown)"),
    "retryable not a boolean": (
        "  - name: r\n" + BASE_MATCH + "    notify: [console]\n"
        "    when: {retryable: sometimes}  # <-\n",
        "r.when.retryable: expected true or false, got string"),
    "bad status": (
        "  - name: r\n" + BASE_MATCH + "    notify: [console]\n    status: pending  # <-\n",
        "r.status: 'pending' is not one of firing, resolved, any"),
    "bad runbook name": (
        "  - name: 'retry it'  # <-\n" + BASE_MATCH + "    notify: [console]\n",
        "retry it.name: use letters, digits, '-', '_' and '.', starting with a letter or "
        "digit"),
    "yaml syntax error": (
        "  - name: r\n" + BASE_MATCH + "    notify: [console\n    status: any  # <-\n",
        "YAML syntax: did not find expected ',' or ']'"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_kind_of_mistake_is_reported_at_its_line(tmp_path: Path, case: str) -> None:
    body, message = CASES[case]
    text = "runbooks:\n" + body
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "# <-" in t)
    write(tmp_path, "rb.yaml", text)
    assert errors_of(tmp_path) == [f"rb.yaml:{line}: {message}"]


def test_an_unknown_template_is_reported_when_templates_are_known(tmp_path: Path) -> None:
    write(tmp_path, "rb.yaml", "runbooks:\n  - name: r\n" + BASE_MATCH +
          "    notify:\n      - {channel: oncall, template: slack-custom.json.j2}\n")
    assert errors_of(tmp_path, templates=("slack.json.j2",)) == [
        "rb.yaml:5: r.notify[0].template: unknown template 'slack-custom.json.j2'"]
    assert len(load(tmp_path)) == 1  # without a template list there is nothing to check


def test_every_error_in_every_file_is_reported_at_once_in_reading_order(
        tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", """\
runbooks:
  - name: one
    match: [alertname="A"]
    status: sometimes
    notify: [{channel: nowhere}]
    colour: red
  - name: two
    match: ['x=~"["']
""")
    write(tmp_path, "b.yaml", """\
runbooks:
  - name: one
    match: [alertname="B"]
    actions:
      - argo.retry: {namespace: a}
extra: 1
""")
    assert errors_of(tmp_path) == [
        "a.yaml:4: one.status: 'sometimes' is not one of firing, resolved, any",
        "a.yaml:5: one.notify[0].channel: unknown channel 'nowhere' "
        "(configured: console, oncall, pager)",
        "a.yaml:6: one.colour: unknown key",
        "a.yaml:7: two: has neither actions nor notify: it would do nothing",
        "a.yaml:8: two.match[0]: bad regex '[': missing ]: [",
        "b.yaml:2: runbook 'one' is already defined at a.yaml:2",
        "b.yaml:5: one.actions[0]: argo.retry requires workflow",
        "b.yaml:6: extra: unknown key",
    ]


def test_runbook_names_are_unique_across_files(tmp_path: Path) -> None:
    page = "runbooks:\n  - name: page\n    match: [a=b]\n    notify: [pager]\n"
    write(tmp_path, "10-first.yaml", page)
    write(tmp_path, "20-second.yaml", page)
    assert errors_of(tmp_path) == [
        "20-second.yaml:2: runbook 'page' is already defined at 10-first.yaml:2"]


def test_a_glob_that_matches_nothing_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "rb.yaml", "runbooks: []\n")
    assert errors_of(tmp_path, patterns=("*.yaml", "more/*.yaml")) == [
        "rules: 'more/*.yaml' matches no file"]


def test_files_load_in_glob_order_each_once(tmp_path: Path) -> None:
    for name in ("b.yaml", "a.yaml", "sub/c.yaml"):
        stem = Path(name).stem
        write(tmp_path, name, f"runbooks:\n  - name: {stem}\n    match: [a=b]\n"
                              "    notify: [pager]\n")
    specs = load(tmp_path, patterns=("*.yaml", "a.yaml", str(tmp_path / "sub/*.yaml")))
    assert [s.name for s in specs] == ["a", "b", "c"]


def test_an_empty_file_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "rb.yaml", "# nothing yet\n")
    assert errors_of(tmp_path) == ["rb.yaml:1: empty file: expected `runbooks:` with a list"]


def test_the_shipped_runbooks_load_against_the_channels_they_need() -> None:
    specs = load_runbooks(["rules/runbooks/*.yaml"], base_dir=REPO, channels=CHANNELS,
                          display_base=REPO)
    assert [s.name for s in specs] == [
        "cronworkflow-failure-breaker", "retry-transient-workflow-failure",
        "escalate-non-retryable-failure", "suspend-failing-cronworkflow"]


def test_the_shipped_runbooks_name_the_channels_oncall_pager_and_console() -> None:
    with pytest.raises(ConfigErrors) as info:
        load_runbooks(["rules/runbooks/*.yaml"], base_dir=REPO, channels=["console"],
                      display_base=REPO)
    unknown = {str(e).split("unknown channel ")[1].split(" ")[0] for e in info.value.errors}
    assert unknown == {"'oncall'", "'pager'"}
