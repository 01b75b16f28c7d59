"""Runbook unit tests, run by ``responder test FILE...`` (as ``promtool test rules`` is).

An operator changing a runbook or a failure pattern wants to know, before deploying,
which runbooks an alert will reach, what they will do and whom they will tell. A test
file states that for given alerts, and the runner checks it with the same analysis,
matching and planning the service uses (``responder.decide``), touching nothing (no journal, no cluster).

Format (paths are relative to the test file; every key but ``name`` and ``expect`` of a
test is optional; unknown keys are errors)::

    config: ../../../responder.yaml    # default: -c/--config, i.e. ./responder.yaml
    tests:
      - name: a transient failure is retried
        alerts:                        # the alerts of one Alertmanager group, or instead
          - labels: {alertname: WorkflowFailed, namespace: taskmaster, workflow: etl-abc}
            annotations: {description: "dial tcp 10.0.0.1:5432: connect: connection refused"}
            status: firing             # firing (default) | resolved
            startsAt: 2026-01-01T00:00:00Z
            analysis: {category: Network, retryable: true}   # skip the patterns: given
        # payload: ../../../examples/workflow-failed.json    # a whole webhook payload
        expect:
          - alert: 0                   # which alert of the group (default 0)
            analysis: {category: Network, retryable: true}   # these fields must be equal
            runbooks: [retry-transient-workflow-failure]     # exactly these, in order
            actions:                   # every rendered action of those runbooks, in order
              - argo.retry: {namespace: taskmaster, workflow: etl-abc}
            breakers: [taskmaster/etl]                       # breaker keys, in order
            on_open: [{argo.suspend_cron: {namespace: taskmaster, cronworkflow: etl}}]
            on_close: []
            notify: [oncall]                                 # channel names, in order
            on_exhausted: [pager]

Only what an expectation states is checked: leave ``actions`` out to ignore actions,
write ``actions: []`` to require none. A runbook whose templates fail to render for the
alert always fails the test. Output: per file ``SUCCESS`` or each failing test with its
``file:line``, the expectation's line, expected and got; then a summary line.

The runner takes a loader (config path -> anything with ``.analyzer`` and ``.index``), so
the CLI passes the service's own ``load_runtime`` and tests pass runbooks built in place.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from responder.analyze import Analysis
from responder.config.patterns import CATEGORIES, DEFAULT_RETRYABLE
from responder.config.reader import Section, origin_of, type_name
from responder.config.yamlmarks import MarkedList, load_file
from responder.decide import Rules, decide_alert
from responder.errors import ConfigError, ConfigErrors, Origin
from responder.model import Alert, AlertGroup, DecodeError, alert_from_dict, decode_group

DEFAULT_STARTS_AT = "2026-01-01T00:00:00Z"
LIST_FIELDS = ("runbooks", "actions", "breakers", "on_open", "on_close", "notify",
               "on_exhausted")


Subject = Rules   # what a test runs against: the service's ``Runtime`` is one
Loader = Callable[[Path], Subject]


@dataclass(frozen=True, slots=True)
class Expectation:
    alert: int
    origin: Origin
    analysis: Mapping[str, Any] | None
    lists: Mapping[str, list[Any]]   # only the fields the test states


@dataclass(frozen=True, slots=True)
class RunbookTest:
    name: str
    origin: Origin
    group: AlertGroup
    given: tuple[Analysis | None, ...]   # per alert: the analysis the test fixes, if any
    expect: tuple[Expectation, ...]


@dataclass(frozen=True, slots=True)
class RunbookTestFile:
    shown: str
    config: Path | None
    tests: tuple[RunbookTest, ...]


# -- reading test files ----------------------------------------------------------------


def _strings(sec: Section, key: str) -> dict[str, str]:
    raw = sec.raw(key, {})
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        sec.error(sec.at(key), f"{sec.name(key)}: expected a mapping, got {type_name(raw)}")
        return {}
    out: dict[str, str] = {}
    for name, value in raw.items():
        if not isinstance(value, str):
            sec.error(origin_of(raw, name) or sec.at(key),
                      f"{sec.name(key)}.{name}: expected a string, got {type_name(value)} "
                      "(quote it)")
        else:
            out[str(name)] = value
    return out


def _given_analysis(sec: Section) -> Analysis | None:
    given = sec.section("analysis")
    if given is None or not given.valid:
        return None
    category = given.str("category")
    retryable = given.bool("retryable", None)
    pattern = given.str("pattern", None)
    given.finish()
    if not isinstance(category, str):
        return None
    if category not in CATEGORIES:
        given.error(given.at("category"), f"{given.name('category')}: unknown category "
                                          f"{category!r} (one of {', '.join(CATEGORIES)})")
        return None
    if retryable is None:
        retryable = DEFAULT_RETRYABLE[category]
    return Analysis(category=category, pattern=pattern, confidence=1.0, retryable=retryable,
                    recommendations=(), matched=None, source="test")


def _alerts(raw: Any, test: Section) -> tuple[list[Alert], list[Analysis | None]]:
    alerts: list[Alert] = []
    given: list[Analysis | None] = []
    if not isinstance(raw, list) or not raw:
        test.error(test.at("alerts"), f"{test.name('alerts')}: expected a non-empty list")
        return alerts, given
    for i, item in enumerate(raw):
        origin = origin_of(raw, i) or test.at("alerts")
        a = Section(item, test.errors, where=f"{test.name('alerts')}[{i}]", origin=origin)
        if not a.valid:
            continue
        data = {
            "status": a.str("status", "firing"),
            "labels": _strings(a, "labels"),
            "annotations": _strings(a, "annotations"),
            "startsAt": a.str("startsAt", DEFAULT_STARTS_AT),
            "endsAt": a.str("endsAt", "0001-01-01T00:00:00Z"),
            "generatorURL": a.str("generatorURL", ""),
            "fingerprint": a.str("fingerprint", ""),
        }
        if not a.has("labels"):
            a.error(origin, f"{a.name('labels')}: required")
        analysis = _given_analysis(a)
        a.finish()
        try:
            alerts.append(alert_from_dict(data))
        except msgspec.ValidationError as exc:
            a.error(origin, f"{a.where}: {exc}")
            continue
        given.append(analysis)
    return alerts, given


def _group(alerts: Sequence[Alert]) -> AlertGroup:
    """The group Alertmanager would send for these alerts (grouped by alertname)."""
    common = dict(alerts[0].labels)
    annotations = dict(alerts[0].annotations)
    for alert in alerts[1:]:
        common = {k: v for k, v in common.items() if alert.labels.get(k) == v}
        annotations = {k: v for k, v in annotations.items() if alert.annotations.get(k) == v}
    group_labels = {"alertname": common["alertname"]} if "alertname" in common else {}
    key = ",".join(f'{k}="{v}"' for k, v in group_labels.items())
    return AlertGroup(
        group_key=f"{{}}:{{{key}}}", receiver="responder",
        status="firing" if any(a.status == "firing" for a in alerts) else "resolved",
        group_labels=group_labels, common_labels=common, common_annotations=annotations,
        external_url="http://alertmanager:9093", alerts=tuple(alerts))


def _payload(test: Section, base: Path) -> AlertGroup | None:
    name = test.str("payload")
    if not isinstance(name, str):
        return None
    path = base / name
    try:
        group, rejected = decode_group(path.read_bytes())
    except OSError as exc:
        test.error(test.at("payload"), f"{test.name('payload')}: cannot read {path}: "
                                       f"{exc.strerror or exc}")
        return None
    except DecodeError as exc:
        test.error(test.at("payload"), f"{test.name('payload')}: {exc.path}: {exc.message}")
        return None
    for r in rejected:
        test.error(test.at("payload"), f"{test.name('payload')}: {r.path}: {r.error}")
    if not group.alerts:
        test.error(test.at("payload"), f"{test.name('payload')}: no valid alert in {path}")
        return None
    return group


def _expectation(item: Any, where: str, origin: Origin, errors: list[ConfigError],
                 alerts: int) -> Expectation | None:
    e = Section(item, errors, where=where, origin=origin)
    if not e.valid:
        return None
    index = e.int("alert", 0, minimum=0)
    analysis = e.raw("analysis")
    if analysis is not None and not isinstance(analysis, dict):
        e.error(e.at("analysis"), f"{e.name('analysis')}: expected a mapping of analysis "
                                  f"fields, got {type_name(analysis)}")
        analysis = None
    lists: dict[str, list[Any]] = {}
    for key in LIST_FIELDS:
        value = e.raw(key)
        if value is None:
            continue
        if not isinstance(value, list):
            e.error(e.at(key), f"{e.name(key)}: expected a list, got {type_name(value)}")
        elif key in ("actions", "on_open", "on_close") and not all(
                isinstance(a, dict) and len(a) == 1 for a in value):
            e.error(e.at(key), f"{e.name(key)}: expected a list of one-key mappings like "
                               "{argo.retry: {namespace: ns, workflow: wf}}")
        elif key not in ("actions", "on_open", "on_close") and not all(
                isinstance(v, str) for v in value):
            e.error(e.at(key), f"{e.name(key)}: expected a list of names")
        else:
            lists[key] = _plain(value)
    e.finish()
    if isinstance(index, int) and alerts and index >= alerts:
        e.error(e.at("alert"), f"{e.name('alert')}: the group has {alerts} alert(s)")
        return None
    return Expectation(index if isinstance(index, int) else 0, origin,
                       _plain(analysis) if analysis else None, lists)


def _plain(value: Any) -> Any:
    """YAML's marked containers as plain ones, for comparison and printing."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _test(item: Any, index: int, origin: Origin, base: Path,
          errors: list[ConfigError]) -> RunbookTest | None:
    label = item.get("name") if isinstance(item, dict) else None
    t = Section(item, errors, where=label if isinstance(label, str) else f"tests[{index}]",
                origin=origin)
    if not t.valid:
        return None
    name = t.str("name")
    group: AlertGroup | None = None
    given: list[Analysis | None] = []
    if t.has("alerts") == t.has("payload"):
        t.error(origin, f"{t.where}: give either alerts or payload")
        t.raw("alerts")
        t.raw("payload")
    elif t.has("alerts"):
        alerts, given = _alerts(t.raw("alerts"), t)
        group = _group(alerts) if alerts else None
    else:
        group = _payload(t, base)
        given = [None] * len(group.alerts) if group else []
    raw_expect = t.raw("expect")
    t.finish()
    expect: list[Expectation] = []
    if not isinstance(raw_expect, list) or not raw_expect:
        t.error(t.at("expect"), f"{t.name('expect')}: expected a non-empty list")
    else:
        for i, entry in enumerate(raw_expect):
            e = _expectation(entry, f"{t.name('expect')}[{i}]",
                             origin_of(raw_expect, i) or origin, errors,
                             len(group.alerts) if group else 0)
            if e is not None:
                expect.append(e)
    if not isinstance(name, str) or group is None:
        return None
    return RunbookTest(name, origin, group, tuple(given), tuple(expect))


def read_test_file(path: Path, shown: str | None = None) -> RunbookTestFile:
    """Parse one test file; ConfigErrors lists every problem in it."""
    shown = shown or str(path)
    errors: list[ConfigError] = []
    try:
        data = load_file(path, shown)
    except ConfigError as exc:
        raise ConfigErrors([exc]) from None
    top = Section(data, errors, origin=Origin(shown, 1))
    config = top.str("config", None)
    raw = top.raw("tests")
    top.finish()
    tests: list[RunbookTest] = []
    if not isinstance(raw, MarkedList) or not raw:
        top.error(top.at("tests") if top.has("tests") else top.origin,
                  "tests: expected a non-empty list of tests")
    else:
        for i, item in enumerate(raw):
            test = _test(item, i, raw.origin_of(i), path.parent, errors)
            if test is not None:
                tests.append(test)
    if errors:
        raise ConfigErrors(sorted(errors, key=lambda e: e.origin.line if e.origin else 0))
    return RunbookTestFile(shown, path.parent / config if isinstance(config, str) else None,
                           tuple(tests))


# -- running ---------------------------------------------------------------------------


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _same(expected: Any, got: Any) -> bool:
    if isinstance(expected, (int, float)) and not isinstance(expected, bool) \
            and isinstance(got, float):
        return abs(expected - got) < 1e-9
    return bool(expected == got)


def outcome(subject: Subject, group: AlertGroup, index: int,
            given: Analysis | None) -> tuple[Analysis, dict[str, list[Any]], list[str]]:
    """What the service would decide for alert ``index``: analysis, lists, plan errors."""
    d = decide_alert(subject, group, index, given)
    plans = [r.plan for r in d.runbooks]
    got: dict[str, list[Any]] = {
        "runbooks": list(d.matched),
        "actions": [{a.kind: a.params} for p in plans for a in p.actions],
        "breakers": [p.breaker_key for p in plans if p.breaker_key is not None],
        "on_open": [{a.kind: a.params} for p in plans for a in p.on_open],
        "on_close": [{a.kind: a.params} for p in plans for a in p.on_close],
        "notify": [n.channel for p in plans for n in p.notify],
        "on_exhausted": [n.channel for p in plans for n in p.on_exhausted],
    }
    return d.analysis, got, [e.error for e in d.errors]


def run_test(test: RunbookTest, subject: Subject) -> list[str]:
    """The failure report of one test (empty when it passes)."""
    out: list[str] = []
    results: dict[int, tuple[Analysis, dict[str, list[Any]], list[str]]] = {}
    for e in test.expect:
        if e.alert not in results:
            results[e.alert] = outcome(subject, test.group, e.alert, test.given[e.alert])
        analysis, got, errors = results[e.alert]
        problems: list[str] = [f"plan failed: {err}" for err in errors]
        if e.analysis is not None:
            actual = analysis.to_dict()
            want = {k: v for k, v in e.analysis.items()}
            have = {k: actual.get(k, "<no such field>") for k in want}
            if not all(_same(want[k], have[k]) for k in want):
                problems.append(f"analysis:\n  expected: {_show(want)}\n  got:      "
                                f"{_show(have)}")
        for key, want_list in e.lists.items():
            if not all(_same(a, b) for a, b in zip(want_list, got[key], strict=False)) \
                    or len(want_list) != len(got[key]):
                problems.append(f"{key}:\n  expected: {_show(want_list)}\n  got:      "
                                f"{_show(got[key])}")
        if problems:
            alert = test.group.alerts[e.alert]
            out.append(f"{e.origin}: alert {e.alert} ({alert.alertname} {alert.status}; "
                       f"analysis {analysis.category}, retryable "
                       f"{str(analysis.retryable).lower()}, pattern {analysis.pattern or '-'})")
            out.extend("  " + line for p in problems for line in p.splitlines())
    return out


def run_test_files(paths: Sequence[Path], *, default_config: Path = Path("responder.yaml"),
                   load: Loader | None = None) -> tuple[bool, str]:
    """Run every test in ``paths``; (all passed, the report to print)."""
    if load is None:
        # The service's loader brings templates and notifiers along; imported only here so
        # that tests of the runner can hand in runbooks built in place.
        from responder.load import load_runtime

        load = load_runtime
    subjects: dict[Path, Subject | ConfigErrors] = {}
    lines: list[str] = []
    total = failed = broken = 0
    for path in paths:
        lines.append(f"Unit Testing: {path}")
        try:
            spec = read_test_file(path)
        except ConfigErrors as exc:
            broken += 1
            lines.append("  FAILED: the test file is invalid:")
            lines.extend(f"    {e}" for e in exc.errors)
            continue
        config = (spec.config or default_config).resolve()
        if config not in subjects:
            try:
                subjects[config] = load(config)
            except ConfigErrors as exc:
                subjects[config] = exc
            except ConfigError as exc:
                subjects[config] = ConfigErrors([exc])
        subject = subjects[config]
        if isinstance(subject, ConfigErrors):
            broken += 1
            lines.append(f"  FAILED: cannot load {config}:")
            lines.extend(f"    {e}" for e in subject.errors)
            continue
        failures: list[str] = []
        for test in spec.tests:
            total += 1
            report = run_test(test, subject)
            if report:
                failed += 1
                failures.append(f"    {test.origin}: {test.name}")
                failures.extend(f"      {line}" for line in report)
        if failures:
            lines.append("  FAILED:")
            lines.extend(failures)
        else:
            lines.append(f"  SUCCESS ({len(spec.tests)} tests)")
    summary = f"{total} tests, {failed} failed"
    if broken:
        summary += f", {broken} file(s) could not run"
    lines.append(summary)
    return failed == 0 and broken == 0, "\n".join(lines)
