"""The shipped loop, end to end: what users install is what this test runs.

Real Prometheus scrapes the responder and a kube-state-metrics stand-in, evaluates the
shipped ``rules/prometheus/*.yaml`` unchanged, and sends to a real Alertmanager configured
from the shipped ``deploy/alertmanager/alertmanager.yml``; Alertmanager posts to a real
``responder serve`` running the shipped runbooks (durations shortened), which retries the
workflow on a fake Argo Server. Every query of every shipped dashboard must then parse and
return data from that Prometheus, and the responder's own ``CircuitBreakerOpen`` must fire
once a breaker opens.

Only the cluster is fake: the Argo Server and kube-state-metrics (its custom-resource-state
output for Argo Workflows, rendered from the same workflow store, with the metric names and
labels ``deploy/kube-state-metrics/argo-workflows.yaml`` configures). They run on an event
loop in a background thread, so the test itself can block on the real processes. A small
"controller" in that loop ends retried runs: the scheduled ETL recovers, the report run fails
again, so the retry budget of the shipped retry runbook gets spent.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import math
import threading
import time
import urllib.parse
from collections.abc import Callable, Coroutine, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from aiohttp import web

from responder.config.durations import parse_duration
from tests.conftest import require_binary
from tests.e2e.procs import (
    REPO,
    Proc,
    free_port,
    http,
    responder_config,
    running,
    start_alertmanager,
    start_prometheus,
    start_responder,
    wait_for,
    write_yaml,
)
from tests.fakes import FakeServer, WorkflowStore, now_stamp
from tests.fakes.argo_server import FakeArgoServer
from tests.fakes.slack import FakeSlack
from tests.fakes.webhook_sink import FakeWebhookSink
from tests.shipped import dashboard_files, dashboard_queries, variable_queries

pytestmark = pytest.mark.e2e
T = TypeVar("T")

TOKEN = "am-to-responder-shipped-loop"      # Alertmanager -> responder
ARGO_TOKEN = "responder-to-argo-shipped-loop"  # responder -> Argo Server
NS = "taskmaster"
CRON = "nightly-etl"
ETL = "nightly-etl-x1"                       # the failed run the loop must retry once
REPORT = "report-gen-a1"                     # a run whose retries keep failing
OOM_RUNS = ("nightly-etl-x2", "nightly-etl-x3", "nightly-etl-x4")
CRON_BREAKER = f"cronworkflow:{NS}/{CRON}"
SHIPPED_RUNBOOKS = REPO / "rules/runbooks/workflows.yaml"
SHIPPED_ALERTMANAGER = REPO / "deploy/alertmanager/alertmanager.yml"

# Durations of the shipped runbooks shortened for the test; everything else is kept.
# The retry backoff becomes 1s, 2s, 4s (capped at 4s). The retry breaker's window becomes
# shorter than two backoffs, which is what a real window of 15m is to a workflow whose
# retried runs take several minutes each: failures of successive attempts do not pile up
# in one window, so the budget can be spent (with a window longer than the three backoffs,
# the third confirmation opens the breaker first). The CronWorkflow breaker keeps its 1h
# cooldown: it must stay open for CircuitBreakerOpen's `for: 1m`.
FAST_DURATIONS = {
    ("retry-transient-workflow-failure", "retry", "backoff", "duration"): "1s",
    ("retry-transient-workflow-failure", "retry", "backoff", "max_duration"): "4s",
    ("retry-transient-workflow-failure", "breaker", "window"): "5s",
}


# --- the fake cluster ---------------------------------------------------------------------

class Background:
    """An event loop in a thread for the in-process fakes; the test thread may block."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                       name="fakes")
        self.thread.start()
        self.fakes: list[FakeServer] = []
        self.tasks: list[concurrent.futures.Future[None]] = []

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self.tasks.append(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in the loop's thread, where the fakes' state is changed."""
        async def inner() -> T:
            return fn()
        return self.run(inner())

    def start(self, fake: FakeServer) -> None:
        self.run(fake.start())
        self.fakes.append(fake)

    def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for fake in self.fakes:
            self.run(fake.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def _unix(stamp: str | None) -> float | None:
    if not stamp:
        return None
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def _series(name: str, labels: Mapping[str, str], value: float) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    inner = ",".join(f'{k}="{esc(v)}"' for k, v in labels.items() if v)
    return f"{name}{{{inner}}} {value!r}"   # every digit: unix times need them all


class FakeKubeStateMetrics(FakeServer):
    """kube-state-metrics' ``/metrics`` for the custom-resource state of a WorkflowStore."""

    PHASES = ("Pending", "Running", "Succeeded", "Failed", "Error")
    PREFIX = "kube_customresource_argo_"

    def __init__(self, store: WorkflowStore) -> None:
        super().__init__()
        self.store = store
        self.route("/metrics", get=self._metrics)

    def render(self) -> str:
        p = self.PREFIX
        lines = [f"# TYPE {p}{m} gauge" for m in (
            "workflow_status_phase", "workflow_started_time", "workflow_finished_time",
            "workflow_status_message", "cronworkflow_suspended")]
        for (ns, name), wf in sorted(self.store.workflows.items()):
            meta_labels = wf["metadata"].get("labels", {})
            status = wf.get("status", {})
            base = {"customresource_group": "argoproj.io", "customresource_kind": "Workflow",
                    "customresource_version": "v1alpha1", "namespace": ns, "workflow": name,
                    "workflow_template": meta_labels.get("workflows.argoproj.io/workflow-template", ""),
                    "cronworkflow": meta_labels.get("workflows.argoproj.io/cron-workflow", ""),
                    "resubmitted_from": meta_labels.get(
                        "workflows.argoproj.io/resubmitted-from-workflow", "")}
            phase = status.get("phase")
            if phase:
                lines += [_series(p + "workflow_status_phase", {**base, "phase": ph},
                                  1 if ph == phase else 0) for ph in self.PHASES]
            for metric, key in (("workflow_started_time", "startedAt"),
                                ("workflow_finished_time", "finishedAt")):
                if (at := _unix(status.get(key))) is not None:
                    lines.append(_series(p + metric, base, at))
            if status.get("message"):
                lines.append(_series(p + "workflow_status_message",
                                     {**base, "message": status["message"]}, 1))
        for (ns, name), cwf in sorted(self.store.cron_workflows.items()):
            lines.append(_series(p + "cronworkflow_suspended", {
                "customresource_group": "argoproj.io", "customresource_kind": "CronWorkflow",
                "customresource_version": "v1alpha1", "namespace": ns, "cronworkflow": name},
                1 if cwf["spec"].get("suspend") else 0))
        return "\n".join(lines) + "\n"

    async def _metrics(self, request: web.Request, params: dict[str, str]) -> web.Response:
        return web.Response(text=self.render(), content_type="text/plain")


def end_run(store: WorkflowStore, name: str, phase: str, message: str | None) -> None:
    wf = store.workflows[(NS, name)]
    wf["status"].update(phase=phase, finishedAt=now_stamp())
    if message:
        wf["status"]["message"] = message
    wf["metadata"]["labels"].update({"workflows.argoproj.io/phase": phase,
                                     "workflows.argoproj.io/completed": "true"})
    store.touch(wf)


async def controller(store: WorkflowStore, outcomes: Mapping[str, tuple[str, str | None]],
                     after: float) -> None:
    """Ends each retried (Running again) run of ``outcomes`` ``after`` seconds later."""
    running_since: dict[str, float] = {}
    while True:
        for name, (phase, message) in outcomes.items():
            if store.phase(NS, name) != "Running":
                running_since.pop(name, None)
                continue
            since = running_since.setdefault(name, time.monotonic())
            if time.monotonic() - since >= after:
                end_run(store, name, phase, message)
        await asyncio.sleep(0.1)


def workflow_labels(template: str, cron: str | None = None) -> dict[str, str]:
    labels = {"workflows.argoproj.io/workflow-template": template}
    if cron:
        labels["workflows.argoproj.io/cron-workflow"] = cron
    return labels


# --- the shipped files, adapted only where the test must --------------------------------

def fast_runbooks(tmp: Path) -> Path:
    """The shipped runbooks with only FAST_DURATIONS changed."""
    data = yaml.safe_load(SHIPPED_RUNBOOKS.read_text())
    books = {rb["name"]: rb for rb in data["runbooks"]}
    for (name, *path, key), value in FAST_DURATIONS.items():
        node = books[name]
        for part in path:
            node = node[part]
        parse_duration(str(node[key]))      # only durations are rewritten
        node[key] = value
    return write_yaml(tmp / "runbooks.yaml", data)


def shipped_alertmanager(tmp: Path, responder_port: int, slack_url: str) -> dict[str, Any]:
    """deploy/alertmanager/alertmanager.yml pointed at this test's responder and Slack.

    Rewritten: the webhook URL, the credentials_file and the Slack URL file (paths in a
    cluster), and group_wait/group_interval (1s, so the test does not wait 10s+).
    """
    config: dict[str, Any] = yaml.safe_load(SHIPPED_ALERTMANAGER.read_text())
    (tmp / "am-token").write_text(TOKEN + "\n")
    (tmp / "oncall-slack-url").write_text(slack_url + "\n")

    def fast(route: dict[str, Any]) -> None:
        for key in ("group_wait", "group_interval"):
            if key in route:
                route[key] = "1s"
        for child in route.get("routes", []):
            fast(child)

    fast(config["route"])
    receivers = {r["name"]: r for r in config["receivers"]}
    (hook,) = receivers["alert-responder"]["webhook_configs"]
    hook["url"] = f"http://127.0.0.1:{responder_port}/webhook"
    hook["http_config"]["authorization"]["credentials_file"] = str(tmp / "am-token")
    (slack,) = receivers["oncall"]["slack_configs"]
    slack["api_url_file"] = str(tmp / "oncall-slack-url")
    return config


# --- Prometheus and the responder, through their HTTP APIs -----------------------------

def prom_query(port: int, expr: str) -> tuple[int, Any]:
    query = urllib.parse.urlencode({"query": expr})
    return http("GET", f"http://127.0.0.1:{port}/api/v1/query?{query}")


def firing(port: int, alertname: str) -> list[dict[str, Any]]:
    status, body = http("GET", f"http://127.0.0.1:{port}/api/v1/alerts")
    assert status == 200, body
    return [a for a in body["data"]["alerts"]
            if a["labels"]["alertname"] == alertname and a["state"] == "firing"]


def receipts(port: int, workflow: str) -> list[dict[str, Any]]:
    status, body = http("GET", f"http://127.0.0.1:{port}/api/v1/events?limit=100", token=TOKEN)
    assert status == 200, body
    return [a for a in body["alerts"] if a["alert"]["labels"].get("workflow") == workflow]


def action_outcomes(receipt: Mapping[str, Any], action: str) -> list[str]:
    return [e["outcome"] for e in receipt["events"] if e.get("action") == action]


def breaker(port: int, key: str) -> dict[str, Any] | None:
    status, body = http("GET", f"http://127.0.0.1:{port}/api/v1/breakers", token=TOKEN)
    assert status == 200, body
    return next((b for b in body["breakers"] if b["key"] == key), None)


@pytest.fixture
def background() -> Iterator[Background]:
    bg = Background()
    try:
        yield bg
    finally:
        bg.close()


def test_shipped_rules_alertmanager_config_runbooks_and_dashboards_close_the_loop(
        tmp_path: Path, background: Background) -> None:
    prometheus_bin = require_binary("prometheus")
    alertmanager_bin = require_binary("prometheus-alertmanager")
    started = time.monotonic()

    # The cluster: a failed scheduled run, a failed report run, one healthy run in progress.
    store = WorkflowStore()
    argo = FakeArgoServer(token=ARGO_TOKEN, store=store)
    ksm = FakeKubeStateMetrics(store)
    slack = FakeSlack()          # the people's receiver in the shipped Alertmanager config
    sink = FakeWebhookSink()     # the responder's `oncall` channel
    for fake in (argo, ksm, slack, sink):
        background.start(fake)

    def populate() -> None:
        store.add_cron_workflow(NS, CRON)
        store.add_workflow(NS, ETL, "Failed", labels=workflow_labels(CRON, CRON),
                           message="dial tcp 10.96.0.10:5432: i/o timeout")
        store.add_workflow(NS, REPORT, "Failed", labels=workflow_labels("report-gen"),
                           message="upstream returned 503 Service Unavailable")
        store.add_workflow(NS, "hourly-sync-r2", "Running",
                           labels=workflow_labels("hourly-sync"))

    background.call(populate)
    background.spawn(controller(store, {
        ETL: ("Succeeded", None),
        REPORT: ("Failed", "upstream returned 503 Service Unavailable"),
    }, after=0.5))

    (tmp_path / "argo-token").write_text(ARGO_TOKEN + "\n")
    port = free_port()
    config = responder_config(
        tmp_path, port, TOKEN,
        rules=[str(fast_runbooks(tmp_path))],
        alert_rules=[str(REPO / "rules/prometheus/*.yaml")],
        argo={"server": argo.url, "token_file": "argo-token"},
        channels={"console": {"type": "log"},
                  "oncall": {"type": "webhook", "url": sink.hook_url},
                  # a pager URL that no longer exists: every page fails permanently (404)
                  "pager": {"type": "webhook", "url": sink.url + "/hooks/retired-pager"}})
    responder = start_responder(tmp_path, config, port)
    am, am_port = start_alertmanager(alertmanager_bin, tmp_path,
                                     shipped_alertmanager(tmp_path, port, slack.webhook_url))
    prom, prom_port = start_prometheus(prometheus_bin, tmp_path, {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in sorted((REPO / "rules/prometheus").glob("*.yaml"))],
        "alerting": {"alertmanagers": [{"static_configs": [
            {"targets": [f"127.0.0.1:{am_port}"]}]}]},
        "scrape_configs": [
            # the job name the shipped ServiceMonitor gives it, as the rules expect
            {"job_name": "alert-responder", "static_configs": [{
                "targets": [f"127.0.0.1:{port}"], "labels": {"namespace": "monitoring"}}]},
            {"job_name": "kube-state-metrics", "honor_labels": True, "static_configs": [{
                "targets": [ksm.url.removeprefix("http://")]}]},
        ],
    })
    procs: tuple[Proc, ...] = (responder, am, prom)
    with running(prom, am, responder):
        # 1. The shipped WorkflowFailed fires, Alertmanager delivers, the responder retries once.
        retry_path = f"/api/v1/workflows/{NS}/{ETL}/retry"

        def etl_retried() -> Any:
            found = receipts(port, ETL)
            return found and "success" in action_outcomes(found[0], "argo.retry") and found[0]

        got = wait_for(etl_retried, 60, f"argo.retry of {ETL} recorded as success", procs)
        calls = argo.calls("PUT", retry_path)
        assert len(calls) == 1, [c.path for c in argo.calls("PUT")]
        assert calls[0].headers["authorization"] == f"Bearer {ARGO_TOKEN}"
        expected = {"alertname": "WorkflowFailed", "namespace": NS, "workflow": ETL,
                    "workflow_template": CRON, "cronworkflow": CRON, "responder": "act"}
        labels = got["alert"]["labels"]
        assert {k: labels.get(k) for k in expected} == expected, labels
        assert got["alert"]["generatorURL"].startswith("http://")
        assert "i/o timeout" in got["alert"]["annotations"]["message"]
        assert got["analysis"]["category"] == "Network"
        assert got["analysis"]["retryable"] is True
        assert set(got["runbooks"]) == {"cronworkflow-failure-breaker",
                                        "retry-transient-workflow-failure"}

        # The report run fails after every retry: three attempts, then the budget is spent.
        def report_exhausted() -> Any:
            found = receipts(port, REPORT)
            return found and any(e["outcome"] == "exhausted" for e in found[0]["events"])

        wait_for(report_exhausted, 60, f"the retry budget of {REPORT} spent", procs)
        assert len(argo.calls("PUT", f"/api/v1/workflows/{NS}/{REPORT}/retry")) == 3

        # 2. Three more runs of the CronWorkflow fail (out of memory, not retryable): the
        # CronWorkflow's breaker opens and suspends the schedule, exactly once.
        def add_oom_runs() -> None:
            for name in OOM_RUNS:
                store.add_workflow(NS, name, "Failed", labels=workflow_labels(CRON, CRON),
                                   message="OOMKilled: container main exceeded its memory "
                                           "limit (exit code 137)")

        background.call(add_oom_runs)
        suspend_path = f"/api/v1/cron-workflows/{NS}/{CRON}/suspend"
        wait_for(lambda: (b := breaker(port, CRON_BREAKER)) and b["state"] == "open",
                 60, f"breaker {CRON_BREAKER} open", procs)
        wait_for(lambda: argo.calls("PUT", suspend_path), 30, "the CronWorkflow suspended",
                 procs)
        assert store.cron_workflows[(NS, CRON)]["spec"]["suspend"] is True
        wait_for(lambda: firing(prom_port, "CronWorkflowFailing"), 30,
                 "the shipped CronWorkflowFailing firing", procs)

        # 3. Every query of every shipped dashboard parses and has data in this Prometheus.
        queries = {(path.name, q) for path in dashboard_files() for q in dashboard_queries(path)}
        assert len(queries) > 20
        pending = set(queries)

        def every_query_has_data() -> bool:
            for item in sorted(pending):
                status, body = prom_query(prom_port, item[1])
                assert status == 200 and body["status"] == "success", (item, body)
                # data: at least one series, and not only NaN (Grafana shows "No data")
                if any(not math.isnan(float(r["value"][1])) for r in body["data"]["result"]):
                    pending.discard(item)
            return not pending

        try:
            wait_for(every_query_has_data, 45, "data for every dashboard query", procs)
        except AssertionError as exc:
            raise AssertionError(f"no data for {sorted(pending)}") from exc
        # Every dashboard variable (a label_values() dropdown) has values to offer.
        for path in dashboard_files():
            for name, selector, label in variable_queries(path):
                query = urllib.parse.urlencode({"match[]": selector} if selector else {})
                status, body = http(
                    "GET", f"http://127.0.0.1:{prom_port}/api/v1/label/{label}/values?{query}")
                assert status == 200 and body["status"] == "success", (path.name, name, body)
                assert body["data"], f"{path.name}: variable ${name} has no values"
        # Pages to the retired pager URL failed: the shipped alert says so.
        wait_for(lambda: [a for a in firing(prom_port, "NotificationDeliveryFailure")
                          if a["labels"]["channel"] == "pager"],
                 15, "NotificationDeliveryFailure for channel pager", procs)

        # 4. The responder's own CircuitBreakerOpen fires (after its `for: 1m`) and goes to
        # people, never back to the responder.
        def breaker_alert() -> Any:
            return [a for a in firing(prom_port, "CircuitBreakerOpen")
                    if a["labels"].get("key") == CRON_BREAKER]

        (alert,) = wait_for(breaker_alert, 100, "CircuitBreakerOpen firing", procs)
        assert alert["labels"]["responder"] == "self"
        assert alert["labels"]["job"] == "alert-responder"
        # accepted by Slack, not only sent (the fake refuses what Slack refuses)
        wait_for(lambda: any("CircuitBreakerOpen" in json.dumps(m) for m in slack.messages),
                 30, "CircuitBreakerOpen delivered to the oncall Slack receiver", procs)

        # Nothing ran twice, and the responder never saw alerts about itself.
        assert len(argo.calls("PUT", retry_path)) == 1
        assert len(argo.calls("PUT", suspend_path)) == 1
        status, body = http("GET", f"http://127.0.0.1:{port}/api/v1/events?limit=200",
                            token=TOKEN)
        assert status == 200, body
        names = {a["alert"]["labels"]["alertname"] for a in body["alerts"]}
        assert names <= {"WorkflowFailed", "CronWorkflowFailing"}, names
        for proc in procs:
            assert ARGO_TOKEN not in proc.output() and TOKEN not in proc.output()

    print(f"shipped loop proven in {time.monotonic() - started:.1f}s")
