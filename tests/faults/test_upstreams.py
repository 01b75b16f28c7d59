"""Upstreams that fail: an Argo Server that hangs, answers 500 or refuses connections; a
Slack that answers 429 in a storm; an SMTP server that is down. Webhooks keep being
answered fast, every workflow is retried exactly once and every message delivered once."""

from __future__ import annotations

import collections
import time
from pathlib import Path

from tests.e2e.procs import wait_for, write_yaml
from tests.fakes import Reply
from tests.fakes.argo_server import FakeArgoServer
from tests.fakes.slack import FakeSlack
from tests.fakes.smtp import SmtpServer
from tests.faults.conftest import Fakes, Load, Responder, fingerprint

NS = "ns"


def retries(argo: FakeArgoServer) -> collections.Counter[str]:
    return collections.Counter(c.path.split("/")[5] for c in list(argo.requests)
                               if c.method == "PUT" and c.path.endswith("/retry"))


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(len(ordered) * 0.99)] if ordered else 0.0


def test_an_argo_server_that_hangs_errs_and_refuses_gets_exactly_one_retry_per_workflow(
        tmp_path: Path, fakes: Fakes, responder: list[Responder]) -> None:
    argo = fakes.start(FakeArgoServer(token="argo-token"))
    (tmp_path / "argo-token").write_text("argo-token")
    write_yaml(tmp_path / "runbooks.yaml", {"runbooks": [{
        "name": "retry", "match": ['alertname="WorkflowFailed"'],
        "actions": [{"argo.retry": {"namespace": "{{ labels.namespace }}",
                                    "workflow": "{{ labels.workflow }}"}}],
        "retry": {"limit": 2, "backoff": {"duration": "50ms"}},
        "rate_limit": {"max_actions": 100000, "window": "1m"},
        "notify": [{"channel": "console"}]}]})
    r = Responder(tmp_path, rules=[str(tmp_path / "runbooks.yaml")],
                  argo={"server": argo.url, "token_file": "argo-token", "timeout": "500ms"})
    responder.append(r.start())

    def failed(names: list[str]) -> None:
        for name in names:
            argo.add_workflow(NS, name, phase="Failed")

    hanging, erring = ["hang-1", "hang-2"], ["err-1", "err-2"]
    failed(hanging + erring)
    for name in hanging:           # hangs past the client's timeout, twice
        argo.script("GET", f"/api/v1/workflows/{NS}/{name}", [Reply(delay=2.0)] * 2)
    for name in erring:            # the server errs, reading and acting
        argo.script("GET", f"/api/v1/workflows/{NS}/{name}", [500, 503])
        argo.script("PUT", f"/api/v1/workflows/{NS}/{name}/retry", [500])
    with Load(r.url, per_post=3, before_post=failed, interval=0.05) as load:
        special = Load(r.url).payload()[0]
        for alert, name in zip(special["alerts"], hanging + erring, strict=False):
            alert["labels"]["workflow"] = name
            alert["fingerprint"] = fingerprint(name)
        special["alerts"] = special["alerts"][:4]
        assert r.post(special)[0] == 200
        wait_for(lambda: set(retries(argo)) >= set(hanging + erring), 20,
                 "the hanging and erring workflows retried")
        fakes.stop(argo)           # refused: nothing listens on its port
        time.sleep(1.5)
        fakes.run(argo.start())
        time.sleep(0.5)
    workflows = set(load.acked) | set(hanging) | set(erring)
    assert len(workflows) > 30, load.statuses
    assert set(load.statuses) == {200}, load.statuses
    assert p99(load.latencies) < 0.5, p99(load.latencies)

    def running() -> set[str]:
        return {w for w in workflows
                if argo.store.workflows[(NS, w)]["status"]["phase"] == "Running"}

    try:
        wait_for(lambda: running() == workflows, 40, "every workflow retried")
    except AssertionError:
        missing = sorted(workflows - running())
        raise AssertionError(f"{len(missing)} not retried: {missing[:10]}") from None
    assert set(retries(argo)) == workflows
    assert all(retries(argo)[w] == 2 for w in erring)   # the 500, then the retry
    assert all(retries(argo)[w] == 1 for w in workflows - set(erring))
    assert "Traceback" not in r.log()


def test_a_slack_429_storm_and_a_down_smtp_server_delay_messages_but_deliver_each_once(
        tmp_path: Path, fakes: Fakes, responder: list[Responder]) -> None:
    slack = fakes.start(FakeSlack())
    smtp = fakes.start(SmtpServer(mode=None))
    fakes.stop(smtp)                                    # down, at a known port
    slack.script("POST", slack.path, [Reply(429, headers={"Retry-After": "1"})] * 6)
    (tmp_path / "slack-url").write_text(slack.webhook_url)
    write_yaml(tmp_path / "runbooks.yaml", {"runbooks": [{
        "name": "tell", "match": ['alertname="WorkflowFailed"'],
        "notify": [{"channel": "oncall"}, {"channel": "admins"}]}]})
    r = Responder(tmp_path, rules=[str(tmp_path / "runbooks.yaml")], channels={
        "console": {"type": "log"},
        "oncall": {"type": "slack", "url_file": "slack-url", "rate_limit": {"rate": 50,
                                                                          "burst": 50}},
        "admins": {"type": "email", "host": "127.0.0.1", "port": smtp.port,
                   "from": "responder@example.com", "to": ["oncall@example.com"],
                   "timeout": "1s", "retry": {"max_tries": 30, "backoff": "200ms"},
                   "rate_limit": {"rate": 50, "burst": 50}}})
    responder.append(r.start())
    with Load(r.url, per_post=1, interval=0.1) as load:
        time.sleep(2.0)
    groups = len(load.acked)
    assert groups > 5 and set(load.statuses) == {200}, load.statuses
    assert p99(load.latencies) < 0.5, p99(load.latencies)
    fakes.run(smtp.start())
    wait_for(lambda: len(slack.messages) >= groups and len(smtp.messages) >= groups, 40,
             "every message delivered", (r.proc,) if r.proc else ())
    assert len(slack.messages) == groups and len(smtp.messages) == groups
    posts = [c for c in list(slack.requests) if c.method == "POST"]
    assert len(posts) == groups + 6                    # each 429 retried once, no more
    assert "Traceback" not in r.log()
