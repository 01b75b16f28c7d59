"""Three ``responder serve`` processes on one PostgreSQL database behave as one (SPEC §12).

One cluster serves the tests of this module in order (each with alerts of its own
workflows); the kill -9 test comes last and stops a replica for good.
"""

from __future__ import annotations

import concurrent.futures
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from responder.service import Service
from tests.conftest import require_binary
from tests.e2e.procs import (
    free_port,
    http,
    running,
    start_alertmanager,
    start_prometheus,
    wait_for,
    write_yaml,
)
from tests.e2e.test_shipped_loop import Background
from tests.pg import PostgresServer
from tests.replicas.cluster import NS, TOKEN, Cluster, alert, cluster_of, outcomes, payload

pytestmark = pytest.mark.e2e
TRANSIENT = "dial tcp 10.96.0.10:5432: connect: connection refused"
OOM = "OOMKilled: container main exceeded its memory limit (exit code 137)"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory,
            pg_server: PostgresServer) -> Iterator[Cluster]:
    background = Background()
    try:
        yield from cluster_of(tmp_path_factory.mktemp("replicas"), pg_server.create_database(),
                              background)
    finally:
        background.close()


def retry_path(workflow: str) -> str:
    return f"/api/v1/workflows/{NS}/{workflow}/retry"


def test_the_same_alert_posted_to_all_three_at_once_is_accepted_once_and_retried_once(
        cluster: Cluster) -> None:
    workflow = "etl-same-alert"
    cluster.add_workflow(workflow, message=TRANSIENT)
    body = payload(alert(workflow, TRANSIENT))
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(
            lambda r: http("POST", r.url + "/webhook", body, token=TOKEN), cluster.replicas))
    assert [status for status, _ in answers] == [200, 200, 200], answers
    assert sorted(b["accepted"] for _, b in answers) == [0, 0, 1], answers
    assert sum(b["duplicates"] for _, b in answers) == 2

    cluster.wait(lambda: "success" in outcomes(cluster.receipt(workflow), "argo.retry"),
                 "the retry recorded as a success")
    assert cluster.argo_calls(retry_path(workflow)) == 1
    receipt = cluster.receipt(workflow)
    assert receipt is not None and receipt["deliveries"] == 3
    assert outcomes(receipt, "argo.retry").count("success") == 1
    # every replica answers from the one journal
    for replica in cluster.replicas:
        seen = [a for a in replica.get("/api/v1/events?limit=200")["alerts"]
                if a["alert"]["labels"]["workflow"] == workflow]
        assert [a["id"] for a in seen] == [receipt["id"]]
    cluster.no_secret_in_logs()


def test_failures_at_different_replicas_open_one_breaker_and_suspend_the_cron_once(
        cluster: Cluster) -> None:
    cron = "nightly-breaker"
    key = f"cronworkflow:{NS}/{cron}"
    cluster.add_cron(cron)
    runs = [f"{cron}-r{i}" for i in range(3)]
    for run in runs:
        cluster.add_workflow(run, message=OOM, cron=cron)
    for replica, run in zip(cluster.replicas, runs, strict=True):
        status, body = replica.post("/webhook", payload(alert(run, OOM, cron=cron),
                                                        group_key=run))
        assert (status, body["accepted"]) == (200, 1), body

    def opened() -> bool:
        found = [b for b in cluster.replicas[2].get("/api/v1/breakers")["breakers"]
                 if b["key"] == key]
        return bool(found) and found[0]["state"] == "open"

    cluster.wait(opened, f"breaker {key} open")
    suspend = f"/api/v1/cron-workflows/{NS}/{cron}/suspend"
    cluster.wait(lambda: cluster.argo_calls(suspend) == 1, "the CronWorkflow suspended")
    assert cluster.background.call(
        lambda: cluster.store.cron_workflows[(NS, cron)]["spec"]["suspend"]) is True
    for replica in cluster.replicas:
        states = {b["key"]: b["state"] for b in replica.get("/api/v1/breakers")["breakers"]}
        assert states[key] == "open", replica.name
    opened_events = [e for e in cluster.replicas[0].get("/api/v1/events?limit=200")["alerts"]
                     for e in e["events"] if e.get("action") == "argo.suspend_cron"]
    assert cluster.argo_calls(suspend) == 1, opened_events


def test_pausing_through_one_replica_pauses_all(cluster: Cluster) -> None:
    workflow = "etl-paused"
    cluster.add_workflow(workflow, message=TRANSIENT)
    status, _ = cluster.replicas[0].post("/api/v1/pause", {"reason": "maintenance"})
    assert status == 200
    try:
        for replica in cluster.replicas:
            assert replica.get("/api/v1/status")["paused"] is True, replica.name
        status, body = cluster.replicas[2].post("/webhook", payload(alert(workflow, TRANSIENT)))
        assert (status, body["accepted"]) == (200, 1)
        cluster.wait(lambda: "paused" in outcomes(cluster.receipt(workflow), "argo.retry"),
                     "the retry held as paused")
        assert cluster.argo_calls(retry_path(workflow)) == 0
    finally:
        status, _ = cluster.replicas[1].post("/api/v1/resume")
        assert status == 200
    for replica in cluster.replicas:
        assert replica.get("/api/v1/status")["paused"] is False, replica.name


def test_a_correction_made_through_one_replica_is_used_by_the_others(cluster: Cluster) -> None:
    odd = "reconciler gave up: the flux capacitor in rack 12 made a noise"
    status, _ = cluster.replicas[0].post("/webhook", payload(alert("etl-odd-first", odd)))
    assert status == 200
    first = cluster.wait(lambda: (r := cluster.receipt("etl-odd-first")) and r["analysis"] and r,
                         "the first odd alert analysed")
    fixed = "Conflict" if first["analysis"]["category"] == "Infrastructure" else "Infrastructure"
    status, body = cluster.replicas[0].post(f"/api/v1/alerts/{first['id']}/category",
                                            {"category": fixed, "by": "alice"})
    assert status == 200, body
    time.sleep(Service.CORRECTIONS_FRESH + 0.5)   # the others re-read corrections this often
    for i, replica in enumerate(cluster.replicas[1:], 1):
        workflow = f"etl-odd-again-{i}"
        status, _ = replica.post("/webhook", payload(alert(workflow, odd)))
        assert status == 200
        again = cluster.wait(lambda w=workflow: (r := cluster.receipt(w)) and r["analysis"],
                             f"{workflow} analysed")
        assert (again["category"], again["source"]) == (fixed, "feedback"), replica.name


def test_two_alertmanagers_in_a_gossip_cluster_sending_to_different_replicas_retry_once(
        cluster: Cluster, tmp_path: Path) -> None:
    prometheus = require_binary("prometheus")
    binary = require_binary("prometheus-alertmanager")
    workflow = "etl-gossip"
    cluster.add_workflow(workflow, message=TRANSIENT)
    (tmp_path / "am-token").write_text(TOKEN)
    gossip = [free_port(), free_port()]
    peers = []
    for i, replica in enumerate(cluster.replicas[1:]):
        home = tmp_path / f"am{i}"
        home.mkdir()
        peers.append(start_alertmanager(binary, home, {
            "route": {"receiver": "responder", "group_by": ["alertname", "namespace", "workflow"],
                      "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{"name": "responder", "webhook_configs": [{
                "url": replica.url + "/webhook", "send_resolved": True,
                "http_config": {"authorization": {"credentials_file": str(tmp_path / "am-token")}},
            }]}],
        }, cluster=[f"--cluster.listen-address=127.0.0.1:{gossip[i]}",
                    f"--cluster.advertise-address=127.0.0.1:{gossip[i]}",
                    f"--cluster.peer=127.0.0.1:{gossip[1 - i]}", "--cluster.peer-timeout=1s",
                    "--cluster.settle-timeout=2s", "--cluster.pushpull-interval=2s"]))
    procs = (*cluster.procs(), *(p for p, _ in peers))
    rules = write_yaml(tmp_path / "rules.yml", {"groups": [{"name": "t", "interval": "1s",
        "rules": [{"alert": "WorkflowFailed",
                   "expr": f'label_replace(vector(1), "workflow", "{workflow}", "", "")',
                   "labels": {"namespace": NS, "workflow_template": workflow,
                              "severity": "warning", "responder": "act"},
                   "annotations": {"description": TRANSIENT}}]}]})
    with running(*(p for p, _ in peers)):
        for _, port in peers:
            wait_for(lambda port=port: len(http("GET", f"http://127.0.0.1:{port}/api/v2/status")[1]
                                           ["cluster"]["peers"]) == 2, 30, "gossip joined", procs)
        prom, _ = start_prometheus(prometheus, tmp_path, {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "alerting": {"alertmanagers": [{"static_configs": [
                {"targets": [f"127.0.0.1:{port}" for _, port in peers]}]}]},
        })
        with running(prom):
            cluster.wait(lambda: "success" in outcomes(cluster.receipt(workflow), "argo.retry"),
                         "the retry through either Alertmanager", timeout=60)
            # Both peers have the alert; whichever of them delivered, and however often,
            # the one journal holds one receipt and the Argo Server saw one retry.
            for _, port in peers:
                wait_for(lambda port=port: http("GET", f"http://127.0.0.1:{port}/api/v2/alerts")[1],
                         30, "the alert in both peers", procs)
    assert cluster.argo_calls(retry_path(workflow)) == 1
    receipt = cluster.receipt(workflow)
    assert receipt is not None and outcomes(receipt, "argo.retry").count("success") == 1


def test_a_replica_killed_right_after_acknowledging_is_finished_by_another_once(
        cluster: Cluster) -> None:
    workflow = "etl-killed-replica"
    cluster.add_workflow(workflow, message=TRANSIENT)
    victim = cluster.replicas[0]
    status, body = victim.post("/webhook", payload(alert(workflow, TRANSIENT)))
    victim.kill(signal.SIGKILL)
    assert (status, body["accepted"]) == (200, 1)
    assert victim.proc is not None and not victim.proc.alive()

    cluster.wait(lambda: "success" in outcomes(cluster.receipt(workflow), "argo.retry"),
                 "another replica's retry recorded as a success")
    assert cluster.argo_calls(retry_path(workflow)) == 1
    receipt = cluster.receipt(workflow)
    assert receipt is not None and receipt["state"] == "done"
    assert outcomes(receipt, "argo.retry").count("success") == 1
