"""``channels:`` parsing: typed settings, defaults, errors at file:line, secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from responder.config.channels import (
    PAGERDUTY_EVENTS_URL,
    ChannelSpec,
    EmailSettings,
    LogSettings,
    PagerDutySettings,
    SlackSettings,
    WebhookSettings,
    parse_channels,
)
from responder.config.reader import Section
from responder.config.yamlmarks import load_text
from responder.errors import ConfigError

SLACK_URL = "https://hooks.slack.com/services/T024BE7LD/B01ABCDEF/xoxSeCrEtPaTh"
PD_KEY = "a" * 16 + "b" * 16


def parse(text: str, base_dir: Path) -> tuple[dict[str, ChannelSpec], list[str]]:
    errors: list[ConfigError] = []
    root = Section(load_text(text, "responder.yaml"), errors, base_dir=base_dir)
    specs = parse_channels(root.section("channels"))
    root.finish()
    return specs, [str(e) for e in errors]


def test_the_spec_example_parses_into_typed_settings(tmp_path: Path) -> None:
    (tmp_path / "slack-url").write_text(SLACK_URL + "\n")
    (tmp_path / "smtp-pw").write_text("hunter2\n")
    (tmp_path / "pd-key").write_text(PD_KEY)
    specs, errors = parse("""\
channels:
  oncall:   {type: slack, url_file: slack-url}
  admins:   {type: email, host: smtp.example.com, port: 587, starttls: true,
             username: responder, password_file: smtp-pw,
             from: responder@example.com, to: [oncall@example.com]}
  pager:    {type: pagerduty, routing_key_file: pd-key,
             url: https://events.pagerduty.com/v2/enqueue}
  audit:    {type: webhook, url: https://hooks.example.com/x}
  console:  {type: log}
""", tmp_path)
    assert errors == []
    assert {n: s.type for n, s in specs.items()} == {
        "oncall": "slack", "admins": "email", "pager": "pagerduty", "audit": "webhook",
        "console": "log"}
    slack = specs["oncall"].settings
    assert isinstance(slack, SlackSettings) and slack.url.reveal() == SLACK_URL
    email = specs["admins"].settings
    assert isinstance(email, EmailSettings)
    assert (email.host, email.port, email.starttls, email.tls) == ("smtp.example.com", 587,
                                                                   True, False)
    assert email.password is not None and email.password.reveal() == "hunter2"
    assert email.sender == "responder@example.com" and email.to == ("oncall@example.com",)
    pager = specs["pager"].settings
    assert isinstance(pager, PagerDutySettings) and pager.routing_key.reveal() == PD_KEY
    assert isinstance(specs["console"].settings, LogSettings)
    assert specs["oncall"].origin.line == 2
    assert (specs["oncall"].rate, specs["oncall"].burst) == (1.0, 5)


def test_no_channels_means_the_embedded_console_log_channel(tmp_path: Path) -> None:
    for text in ("{}\n", "channels: {}\n", "channels:\n"):
        specs, errors = parse(text, tmp_path)
        assert errors == []
        assert list(specs) == ["console"] and specs["console"].type == "log"


def test_rate_limit_and_timeout_are_read_and_defaults_apply(tmp_path: Path) -> None:
    specs, errors = parse("""\
channels:
  pager: {type: pagerduty, routing_key: k, timeout: 3s, rate_limit: {rate: 0.5, burst: 2}}
  hook: {type: webhook, url: https://h.example.com/}
""", tmp_path)
    assert errors == []
    pager = specs["pager"]
    assert (pager.rate, pager.burst) == (0.5, 2)
    assert isinstance(pager.settings, PagerDutySettings)
    assert pager.settings.timeout == 3.0 and pager.settings.url == PAGERDUTY_EVENTS_URL
    hook = specs["hook"]
    assert isinstance(hook.settings, WebhookSettings) and hook.settings.timeout == 10.0
    assert (hook.max_tries, hook.backoff) == (10, 1.0)


def test_delivery_retries_are_bounded_per_channel(tmp_path: Path) -> None:
    specs, errors = parse("channels:\n  a: {type: log, retry: {max_tries: 3, backoff: 5s}}\n",
                          tmp_path)
    assert errors == []
    assert (specs["a"].max_tries, specs["a"].backoff) == (3, 5.0)


@pytest.mark.parametrize(("text", "expected"), [
    ("channels:\n  a: {type: slack, url: https://x/, colour: red}\n",
     "responder.yaml:2: channels.a.colour: unknown key"),
    ("channels:\n  a:\n    type: pigeon\n",
     "responder.yaml:3: channels.a.type: unknown channel type 'pigeon'"),
    ("channels:\n  a: {type: slack}\n",
     "responder.yaml:2: channels.a.url: required (url or url_file)"),
    ("channels:\n  a: {url: https://x/}\n", "responder.yaml:2: channels.a.type: required"),
    ("channels:\n  a:\n    type: slack\n    url_file: nope\n",
     "responder.yaml:4: channels.a.url_file: cannot read"),
    ("channels:\n  a:\n    type: pagerduty\n    routing_key: ''\n",
     "responder.yaml:4: channels.a.routing_key: the routing key is empty"),
    ("channels:\n  a: {type: pagerduty, routing_key: k, rate_limit: {rate: 0}}\n",
     "responder.yaml:2: channels.a.rate_limit.rate: must be at least"),
    ("channels:\n  a: {type: email, host: h, from: a@b.c, to: [x@y.z], starttls: true,\n"
     "      tls: true}\n", "responder.yaml:3: channels.a.tls: give starttls or tls"),
    ("channels:\n  a: {type: email, host: h, from: a@b.c, to: [x@y.z],\n"
     "      username: u, password: p}\n",
     "responder.yaml:3: channels.a.username: the password would cross the network in clear"),
    ("channels:\n  a: {type: email, host: h, from: nobody, to: []}\n",
     "channels.a.to: at least one recipient"),
    ("channels:\n  a: {type: email, host: h, from: nobody, to: [x@y.z]}\n",
     "channels.a.from: 'nobody' is not an email address"),
    ("channels:\n  a: {type: webhook, url: https://x/, bearer_token: t,\n"
     "      basic_auth: {username: u, password: p}}\n",
     "responder.yaml:3: channels.a: give bearer_token or basic_auth, not both"),
    ("channels:\n  a: {type: webhook, url: https://x/, basic_auth: {username: u}}\n",
     "channels.a.basic_auth.password: required"),
    ("channels:\n  'bad name': {type: log}\n", "channels.bad name: channel names are"),
    ("channels: [oncall]\n", "channels: expected a mapping"),
    ("channels:\n  a:\n    type: log\n    retry: {max_tries: 0}\n",
     "responder.yaml:4: channels.a.retry.max_tries: must be at least 1"),
])
def test_mistakes_are_reported_at_their_line(tmp_path: Path, text: str, expected: str) -> None:
    _, errors = parse(text, tmp_path)
    assert any(expected in e for e in errors), errors


def test_an_invalid_url_is_reported_without_echoing_it(tmp_path: Path) -> None:
    _, errors = parse("channels:\n  a: {type: slack, url: 'hooks.slack.com/T/B/s3cr3t'}\n",
                      tmp_path)
    assert errors == ["responder.yaml:2: channels.a.url: expected an http:// or https:// URL"]


def test_no_secret_shows_in_the_repr_or_str_of_a_spec(tmp_path: Path) -> None:
    specs, errors = parse(f"""\
channels:
  oncall: {{type: slack, url: '{SLACK_URL}'}}
  pager: {{type: pagerduty, routing_key: {PD_KEY}}}
  admins: {{type: email, host: h, starttls: true, username: u, password: pw-Secret-1,
            from: a@example.com, to: [b@example.com]}}
  audit: {{type: webhook, url: 'https://h.example.com/?token=tok-Secret-2',
           bearer_token: tok-Secret-3, hmac_secret: hm-Secret-4}}
  audit2: {{type: webhook, url: 'https://h.example.com/',
            basic_auth: {{username: u, password: pw-Secret-5}}}}
""", tmp_path)
    assert errors == []
    shown = repr(specs) + str(specs) + "".join(f"{s}{s.settings!r}" for s in specs.values())
    for secret in ("xoxSeCrEtPaTh", PD_KEY, "pw-Secret-1", "tok-Secret-2", "tok-Secret-3",
                   "hm-Secret-4", "pw-Secret-5"):
        assert secret not in shown
    assert "Secret('********')" in shown
