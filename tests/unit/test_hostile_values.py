"""Alert values are hostile input: every shipped template escapes them for its format, cuts
them to the sink's limits and links only http(s) URLs."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from responder.model import Alert, AlertGroup
from responder.notify import escape
from responder.notify.render import Templates, build_context, sample_channel

REPO = Path(__file__).resolve().parents[2]
MENTIONS = "<!channel> <!here> <@U0EVIL> <#C0EVIL> <https://evil.example|click>"


@pytest.fixture(scope="module")
def shipped() -> Templates:
    return Templates.load(REPO / "templates")


def group(labels: dict[str, str] | None = None, **annotations: str) -> AlertGroup:
    alert = Alert(status="firing", starts_at=datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
                  labels={"alertname": "WorkflowFailed", "namespace": "ci",
                          "workflow": "build-1", "severity": "critical", **(labels or {})},
                  annotations=annotations, generator_url="http://prometheus:9090/graph")
    return AlertGroup(group_key="{}:{}", status="firing", alerts=(alert,),
                      external_url="http://alertmanager:9093")


def render(shipped: Templates, kind: str, g: AlertGroup, event: str = "firing") -> dict[str, Any]:
    context = build_context(g, runbook={"name": "rb"}, event=event)
    return shipped.render(sample_channel(kind), context).body


def slack_mrkdwn_strings(body: dict[str, Any]) -> list[str]:
    """Every string Slack parses for mentions: the top-level text, the attachments'
    fallbacks and mrkdwn text objects."""
    found = [body["text"], *(a["fallback"] for a in body.get("attachments", []))]

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("type") == "mrkdwn" and isinstance(value.get("text"), str):
                found.append(value["text"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(body.get("blocks", []))
    walk(body.get("attachments", []))
    return found


def slack_urls(body: dict[str, Any]) -> list[str]:
    return re.findall(r"'url': '([^']*)'", str(body))


@pytest.mark.parametrize("event", ["firing", "escalation", "resolved"])
def test_slack_mentions_in_labels_and_annotations_are_escaped_everywhere_slack_parses_mrkdwn(
        shipped: Templates, event: str) -> None:
    g = group({"namespace": MENTIONS, "workflow": MENTIONS, "instance": MENTIONS},
              summary=MENTIONS, description=MENTIONS)
    body = render(shipped, "slack", g, event)
    texts = slack_mrkdwn_strings(body)
    assert any("&lt;!channel&gt;" in t for t in texts)
    for text in texts:
        assert "<!" not in text and "<@" not in text and "<#" not in text and "<http" not in text


def test_a_100000_character_summary_is_cut_to_each_sinks_limit_and_still_rendered(
        shipped: Templates) -> None:
    g = group(summary="x" * 100_000, description="y" * 100_000)
    slack = render(shipped, "slack", g)
    assert len(slack["text"]) == escape.SLACK_TEXT_MAX and slack["text"].endswith("…")
    for block in slack["attachments"][0]["blocks"]:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= escape.SLACK_SECTION_TEXT_MAX
    pagerduty = render(shipped, "pagerduty", g)
    assert len(pagerduty["payload"]["summary"]) == escape.PAGERDUTY_SUMMARY_MAX
    email = render(shipped, "email", g)
    assert len(email["subject"]) == escape.EMAIL_SUBJECT_MAX


def test_an_overlong_slack_text_from_a_custom_template_is_cut_not_refused(
        tmp_path: Path) -> None:
    (tmp_path / "slack.json.j2").write_text(
        '{"text": {{ annotations.summary | mrkdwn | tojson }}, "blocks": [{"type": "section", '
        '"text": {"type": "mrkdwn", "text": {{ annotations.summary | tojson }}}}, '
        '{"type": "header", "text": {"type": "plain_text", "text": {{ annotations.summary | '
        'tojson }}}}]}')
    templates = Templates.load(tmp_path)
    body = templates.render(sample_channel("slack"), build_context(group(summary="z" * 50_000)))
    assert len(body.body["text"]) == 40_000
    assert len(body.body["blocks"][0]["text"]["text"]) == 3_000
    assert len(body.body["blocks"][1]["text"]["text"]) == 150


@pytest.mark.parametrize("url", ["javascript:alert(4)", "JavaScript:alert(4)",
                                 " javascript:alert(4)", "data:text/html,<script>x</script>",
                                 "vbscript:msgbox", "file:///etc/passwd", "//evil.example/x",
                                 "http:///nohost", "https://ok.example/\r\nX: y"])
def test_only_http_and_https_urls_become_links(shipped: Templates, url: str) -> None:
    g = group(summary="s", runbook_url=url)
    html = render(shipped, "email", g)["html"]
    assert "href=\"http://alertmanager:9093\"" in html
    for href in re.findall(r'href="([^"]*)"', html):
        assert href.startswith(("http://", "https://")), href
    slack = render(shipped, "slack", g)
    assert slack_urls(slack) and all(u.startswith(("http://", "https://"))
                                     for u in slack_urls(slack))
    assert "Runbook" not in str([b for a in slack["attachments"] for b in a["blocks"]
                                 if b["type"] == "actions"])
    pagerduty = render(shipped, "pagerduty", g)
    assert all(link["href"].startswith(("http://", "https://")) for link in pagerduty["links"])
    assert escape.safe_url(url) is None


def test_an_https_runbook_url_is_a_link(shipped: Templates) -> None:
    g = group(summary="s", runbook_url="https://runbooks.example/wf")
    assert 'href="https://runbooks.example/wf"' in render(shipped, "email", g)["html"]
    assert "https://runbooks.example/wf" in slack_urls(render(shipped, "slack", g))


def test_cr_and_lf_in_a_value_never_reach_an_email_header(shipped: Templates) -> None:
    g = group({"workflow": "a\r\nBcc: victim@example.com"},
              summary="s\r\nX-Injected: 1\x00\x1b[31m")
    subject = render(shipped, "email", g)["subject"]
    assert not re.search(r"[\x00-\x1f\x7f]", subject)
    assert escape.header("a\r\nBcc: b\u2028c") == "a Bcc: b c"
