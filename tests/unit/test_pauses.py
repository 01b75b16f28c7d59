"""Pauses like silences (pure): ``until`` and which pause holds an alert; the runbook's
``approval`` key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from responder.act.pauses import covering, parse_matchers, parse_until
from responder.journal import Pause
from tests.unit.test_runbooks_config import errors_of, load, write

NOW = 1_764_612_000.0   # 2025-12-01T18:00:00Z


def pause(pid: int, *matchers: str, until: float | None = None,
          lifted: float | None = None) -> Pause:
    return Pause(pid, matchers, None, "alice", NOW - 60, until, lifted, None)


def test_until_is_a_duration_from_now_or_a_time_with_a_zone() -> None:
    assert parse_until("2h", NOW) == NOW + 7200
    assert parse_until("2025-12-01T19:30:00Z", NOW) == NOW + 5400
    assert parse_until("2025-12-01T20:30:00+01:00", NOW) == NOW + 5400
    assert parse_until(None, NOW) is None and parse_until(" ", NOW) is None


@pytest.mark.parametrize(("text", "message"), [
    ("tomorrow", r"expected a duration \(2h\) or an RFC 3339 time"),
    ("2025-12-01T19:30:00", "has no time zone"),
    ("2025-12-01T17:00:00Z", "is in the past"),
])
def test_a_bad_until_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_until(text, NOW)


def test_a_pause_holds_alerts_its_matchers_select_until_it_ends() -> None:
    everything, scoped = pause(1), pause(2, 'namespace="ci"', 'workflow=~"etl-.*"')
    ci = {"namespace": "ci", "workflow": "etl-7"}
    assert covering([scoped], ci, NOW) == scoped
    assert covering([scoped], {**ci, "workflow": "train-1"}, NOW) is None
    assert covering([scoped, everything], {"namespace": "prod"}, NOW) == everything
    assert covering([pause(3, until=NOW - 1)], ci, NOW) is None
    assert covering([pause(4, lifted=NOW - 1)], ci, NOW) is None


def test_matchers_use_alertmanager_syntax() -> None:
    assert [str(m) for m in parse_matchers(["namespace=ci", 'job!~"a|b"'])] == [
        'namespace="ci"', 'job!~"a|b"']
    with pytest.raises(ValueError, match="bad matcher"):
        parse_matchers(["namespace"])


RUNBOOK = """runbooks:
  - name: ask-first
    match: ['alertname="WorkflowFailed"']
    actions:
      - argo.retry: {namespace: ns, workflow: wf}
    approval: %s
"""


def test_approval_is_read_with_its_defaults(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", RUNBOOK % "{timeout: 5m, on_timeout: proceed, notify: [oncall]}")
    (rb,) = load(tmp_path)
    assert rb.approval is not None
    assert (rb.approval.timeout, rb.approval.on_timeout) == (300.0, "proceed")
    assert [n.channel for n in rb.approval.notify] == ["oncall"]
    write(tmp_path, "a.yaml", RUNBOOK % "{}")
    (rb,) = load(tmp_path)
    assert rb.approval is not None and (rb.approval.timeout, rb.approval.on_timeout) == (
        900.0, "escalate")


def test_a_bad_approval_is_reported_at_its_line(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", RUNBOOK % "{on_timeout: wait, notify: [nowhere], ask: x}")
    messages = errors_of(tmp_path)
    assert any("a.yaml:6: ask-first.approval.on_timeout: 'wait' is not one of escalate, "
               "proceed" in m for m in messages), messages
    assert any("unknown channel 'nowhere'" in m for m in messages), messages
    assert any("ask-first.approval.ask: unknown key" in m for m in messages), messages


def test_explain_says_a_runbook_asks_a_person_first(
        tmp_path: Path, write_config: Callable[..., Path]) -> None:
    import json

    from responder.explain import explain
    from responder.load import load_runtime
    from responder.model import decode_group
    from tests.conftest import REPO

    write(tmp_path, "rb.yaml", RUNBOOK % "{timeout: 10m, on_timeout: proceed, notify: [oncall]}")
    runtime = load_runtime(write_config({"rules": [str(tmp_path / "rb.yaml")]}))
    group, _ = decode_group((REPO / "examples/workflow-failed.json").read_bytes())
    (rb,) = explain(runtime, group)["alerts"][0]["runbooks"]
    assert json.loads(json.dumps(rb["approval"])) == {
        "timeout_seconds": 600.0, "on_timeout": "proceed", "notify": ["oncall"]}
