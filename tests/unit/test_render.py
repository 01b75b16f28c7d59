"""Rendering: the shipped templates against samples, upstream limits, escaping, and errors
reported at the template's file and line."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from responder.config.channels import ChannelSpec
from responder.errors import ConfigErrors
from responder.model import Alert, AlertGroup, sample_group
from responder.notify.render import (
    NotificationContext,
    RenderError,
    Templates,
    build_context,
    sample_channel,
    sample_contexts,
)

REPO = Path(__file__).resolve().parents[2]
TYPES = ("slack", "email", "pagerduty", "webhook", "log")


@pytest.fixture(scope="module")
def shipped() -> Templates:
    return Templates.load(REPO / "templates")


def group_of(n: int, **labels: str) -> AlertGroup:
    start = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    alerts = tuple(
        Alert(status="firing", starts_at=start,
              labels={"alertname": "WorkflowFailed", "namespace": "ci", "severity": "critical",
                      "workflow": f"build-{i:03d}", **labels},
              annotations={"summary": f"Workflow ci/build-{i:03d} failed"})
        for i in range(n))
    return AlertGroup(group_key='{}:{alertname="WorkflowFailed"}', status="firing",
                      common_labels={"alertname": "WorkflowFailed"}, alerts=alerts,
                      external_url="http://alertmanager:9093")


def count_blocks(body: dict[str, Any]) -> int:
    return len(body.get("blocks", [])) + sum(len(a.get("blocks", []))
                                             for a in body.get("attachments", []))


def test_every_shipped_template_renders_for_every_sample(shipped: Templates) -> None:
    assert shipped.names() == frozenset(TYPES) | {"webhook-opsgenie", "webhook-teams"}
    assert shipped.check({t: sample_channel(t) for t in TYPES}) == []


@pytest.mark.parametrize("kind", TYPES)
@pytest.mark.parametrize("label", ["firing", "resolved", "escalation"])
def test_each_channel_type_renders_each_event(shipped: Templates, kind: str,
                                              label: str) -> None:
    context = dict(sample_contexts())[label]
    message = shipped.render(sample_channel(kind), context)
    assert message.type == kind and message.channel == f"sample-{kind}"
    json.dumps(message.body)    # the outbox stores it as JSON
    if kind == "email":
        assert message.body["subject"].startswith(
            {"firing": "[FIRING", "resolved": "[RESOLVED", "escalation": "[ESCALATED"}[label])
        assert "taskmaster/nightly-etl-x7k2p" in message.body["text"]
        assert message.body["to"] == ["oncall@example.com"]


def test_slack_stays_within_fifty_blocks_with_a_text_fallback_for_200_alerts(
        shipped: Templates) -> None:
    context = build_context(group_of(200), runbook={"name": "rb"}, event="firing")
    assert len(context.alerts) == 20 and context.group["more"] == 180
    body = shipped.render(sample_channel("slack"), context).body
    assert count_blocks(body) <= 50
    assert body["text"].startswith("🔥 WorkflowFailed firing: 200 alerts")
    listing = json.dumps(body, ensure_ascii=False)
    assert "build-019" in listing and "build-020" not in listing
    assert "… and 180 more" in listing


def test_slack_colours_follow_status_and_severity(shipped: Templates) -> None:
    def colour(group: AlertGroup, event: str = "firing") -> str:
        body = shipped.render(sample_channel("slack"), build_context(group, event=event)).body
        return str(body["attachments"][0]["color"])

    assert colour(group_of(1)) == "#D0021B"                         # critical: red
    assert colour(sample_group("firing")) == "#F2A33A"               # warning: orange
    assert colour(sample_group("resolved"), "resolved") == "#2EB67D"  # resolved: green


def test_label_values_are_escaped_in_html_and_slack_but_not_in_text(
        shipped: Templates) -> None:
    context = build_context(group_of(1, workflow="<script>alert(1)</script>"))
    email = shipped.render(sample_channel("email"), context).body
    assert "<script>" not in email["html"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in email["html"]
    assert "<script>alert(1)</script>" in email["text"]
    sections = [b for b in shipped.render(sample_channel("slack"), context).body[
        "attachments"][0]["blocks"] if b["type"] == "section" and "fields" in b]
    workflow_field = sections[0]["fields"][0]["text"]
    assert workflow_field == "*Workflow*\n&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.mark.parametrize(("severity", "expected"), [
    ("critical", "critical"), ("error", "error"), ("warning", "warning"), ("info", "info"),
    ("page", "critical"), ("Warning", "warning"), ("none", "info"), ("bogus", "error"),
    (None, "error"),
])
def test_pagerduty_severity_is_mapped_from_the_severity_label(
        shipped: Templates, severity: str | None, expected: str) -> None:
    labels = {"alertname": "X", "namespace": "ns", "workflow": "wf"}
    if severity is not None:
        labels["severity"] = severity
    group = AlertGroup(alerts=(Alert(status="firing", labels=labels,
                                     starts_at=datetime(2026, 1, 1, tzinfo=UTC)),))
    body = shipped.render(sample_channel("pagerduty"), build_context(group)).body
    assert body["payload"]["severity"] == expected


def test_pagerduty_summary_is_cut_to_1024_characters_and_has_no_routing_key(
        shipped: Templates) -> None:
    group = group_of(1)
    alert = group.alerts[0]
    big = Alert(status="firing", labels=alert.labels, annotations={"summary": "x" * 5000},
                starts_at=alert.starts_at)
    body = shipped.render(sample_channel("pagerduty"),
                          build_context(group.with_alerts((big,)))).body
    assert len(body["payload"]["summary"]) == 1024
    assert "routing_key" not in body


def test_trigger_and_resolve_share_a_dedup_key_per_group_and_runbook() -> None:
    firing = build_context(sample_group("firing"), runbook={"name": "a"})
    resolved = build_context(sample_group("resolved"), runbook={"name": "a"}, event="resolved")
    other = build_context(sample_group("firing"), runbook={"name": "b"})
    assert firing.dedup_key == resolved.dedup_key != other.dedup_key


def test_a_context_survives_the_outbox_round_trip() -> None:
    context = dict(sample_contexts())["escalation"]
    stored = json.loads(json.dumps(dataclasses.asdict(context)))
    assert NotificationContext(**stored) == context


def test_actions_always_carry_every_key_templates_read() -> None:
    context = build_context(sample_group(), actions=[{"kind": "escalation",
                                                      "outcome": "escalated"}])
    assert set(context.actions[0]) == {"kind", "target", "params", "outcome", "detail",
                                       "attempt", "limit", "breaker_state"}


# -- operators' templates -------------------------------------------------------------------
def write(directory: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def test_a_syntax_error_is_reported_with_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, {"slack.json.j2": '{\n  "text": "x",\n  {% if %}\n}\n'})
    with pytest.raises(ConfigErrors) as caught:
        Templates.load(tmp_path)
    (error,) = caught.value.errors
    assert str(error).startswith(f"{tmp_path / 'slack.json.j2'}:3: template syntax:")


def test_an_undefined_variable_is_reported_by_check_with_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, {"slack.json.j2": '{\n  "text": {{ labels.alertname | tojson }},\n'
                                      '  "blocks": [],\n  "x": {{ no_such_thing | tojson }}\n}\n'})
    templates = Templates.load(tmp_path)
    errors = [str(e) for e in templates.check({})]
    assert errors and all(e.startswith(f"{tmp_path / 'slack.json.j2'}:4: ") for e in errors)
    assert "'no_such_thing' is undefined" in errors[0]


def test_an_error_inside_a_partial_names_the_partial(tmp_path: Path) -> None:
    write(tmp_path, {"_parts.j2": "{% macro t() %}\n{{ nope.x }}\n{% endmacro %}\n",
                     "log.json.j2": '{% import "_parts.j2" as p with context %}'
                                    '{"a": {{ p.t() | tojson }}}'})
    with pytest.raises(RenderError) as caught:
        Templates.load(tmp_path).render(sample_channel("log"), build_context(sample_group()))
    assert (Path(caught.value.template).name, caught.value.line) == ("_parts.j2", 2)


def test_a_template_rendering_invalid_json_says_to_use_tojson(tmp_path: Path) -> None:
    write(tmp_path, {"webhook.json.j2": '{"summary": "{{ annotations.summary }}" x}'})
    with pytest.raises(RenderError, match="tojson"):
        Templates.load(tmp_path).render(sample_channel("webhook"), build_context(sample_group()))


def test_slack_without_text_or_over_fifty_blocks_is_a_render_error(tmp_path: Path) -> None:
    write(tmp_path, {"slack.json.j2": '{"blocks": []}',
                     "slack-many.json.j2": '{"text": "t", "blocks": '
                                           '[{% for i in range(51) %}{"type": "divider"}'
                                           '{{ "," if not loop.last }}{% endfor %}]}'})
    templates = Templates.load(tmp_path)
    with pytest.raises(RenderError, match="text fallback"):
        templates.render(sample_channel("slack"), build_context(sample_group()))
    with pytest.raises(RenderError, match="51 blocks"):
        templates.render(sample_channel("slack"), build_context(sample_group()), "slack-many")


def test_pagerduty_required_fields_are_checked(tmp_path: Path) -> None:
    write(tmp_path, {"pagerduty.json.j2": '{"event_action": "trigger", "dedup_key": "k", '
                                          '"payload": {"summary": "s", "severity": "info"}}',
                     "pagerduty-resolve.json.j2": '{"event_action": "resolve"}'})
    templates = Templates.load(tmp_path)
    with pytest.raises(RenderError, match=r"payload\.source is required"):
        templates.render(sample_channel("pagerduty"), build_context(sample_group()))
    with pytest.raises(RenderError, match="resolve needs the trigger's dedup_key"):
        templates.render(sample_channel("pagerduty"), build_context(sample_group()),
                         "pagerduty-resolve")


def test_a_runbook_override_is_used_and_must_fit_the_channel_type(
        tmp_path: Path, shipped: Templates) -> None:
    write(tmp_path, {"slack-terse.json.j2": '{"text": {{ labels.alertname | tojson }}}',
                     "email.subject.j2": "s", "email.txt.j2": "t"})
    templates = Templates.load(tmp_path)
    assert templates.names() == {"slack-terse", "email"}
    message = templates.render(sample_channel("slack"), build_context(sample_group()),
                               "slack-terse")
    assert message.body == {"text": "WorkflowFailed"}
    with pytest.raises(RenderError, match="is for slack channels"):
        templates.render(sample_channel("email"), build_context(sample_group()), "slack-terse")
    email = templates.render(sample_channel("email"), build_context(sample_group()))
    assert "html" not in email.body      # the HTML part is optional


def test_check_reports_a_channel_whose_template_is_missing(tmp_path: Path) -> None:
    write(tmp_path, {"log.json.j2": "{}"})
    oncall: ChannelSpec = dataclasses.replace(sample_channel("slack"), name="oncall")
    errors = [str(e) for e in Templates.load(tmp_path).check({"oncall": oncall})]
    assert any("channel oncall: no template 'slack'" in e for e in errors)


@pytest.mark.parametrize(("files", "expected"), [
    ({"sms.json.j2": "{}"}, "template file names are TYPE[-NAME].PART.j2"),
    ({"slack.txt.j2": "x"}, "a slack template has parts json, not txt"),
    ({"email-short.subject.j2": "x"}, "template 'email-short' has no email-short.txt.j2"),
])
def test_misnamed_or_incomplete_template_sets_are_config_errors(
        tmp_path: Path, files: dict[str, str], expected: str) -> None:
    write(tmp_path, files)
    with pytest.raises(ConfigErrors, match=re.escape(expected)):
        Templates.load(tmp_path)


# -- the rendered examples in docs/notifications.md ------------------------------------------
def slack_as_text(body: dict[str, Any]) -> str:
    """Roughly what Slack shows: the header, then the attachment behind its colour bar."""
    def unescape(text: str) -> str:
        return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")

    lines = [unescape(b["text"]["text"]) for b in body.get("blocks", [])]
    for attachment in body.get("attachments", []):
        bar = f"▌ ({attachment['color']})"
        out = [bar]
        for block in attachment["blocks"]:
            if block["type"] == "section" and "text" in block:
                out.extend(unescape(block["text"]["text"]).splitlines())
            elif block["type"] == "section":   # fields: two columns
                cells = [unescape(f["text"]).replace("\n", " ") for f in block["fields"]]
                out.extend(f"{left:<40}{right}".rstrip() for left, right in
                           zip(cells[::2], [*cells[1::2], ""], strict=False))
            elif block["type"] == "actions":
                out.append("  ".join(f"[{e['text']['text']}]" for e in block["elements"]))
            elif block["type"] == "context":
                out.extend(unescape(e["text"]) for e in block["elements"])
            out.append("")
        lines.extend("▌ " + line if line else "▌" for line in out[1:-1])
        lines.insert(1, bar)
    return "\n".join(lines)


def render_examples(templates: Templates) -> dict[str, str]:
    """The fenced blocks of docs/notifications.md, rendered from the shipped templates."""
    context = dict(sample_contexts())["firing"]
    slack = templates.render(sample_channel("slack"), context).body
    email = templates.render(sample_channel("email"), context).body
    return {
        "slack.json": json.dumps(slack, indent=2, ensure_ascii=False),
        "slack.txt": slack_as_text(slack),
        "email.subject": email["subject"],
        "email.txt": email["text"].rstrip("\n"),
    }


def test_the_docs_show_what_the_shipped_templates_render(shipped: Templates) -> None:
    docs = (REPO / "docs/notifications.md").read_text(encoding="utf-8")
    for name, block in render_examples(shipped).items():
        assert f"\n{block}\n```" in docs, (
            f"docs/notifications.md: the {name} example is stale; print the current ones with "
            f"`python -m tests.unit.test_render`")


if __name__ == "__main__":
    for name, block in render_examples(Templates.load(REPO / "templates")).items():
        print(f"<!-- {name} -->\n```\n{block}\n```\n")
