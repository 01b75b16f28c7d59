"""Three ``responder serve`` processes on one PostgreSQL database behave as one (SPEC §12).

One cluster serves the tests of this module in order (each with alerts of its own
workflows); the kill -9 test comes last and stops a replica for good.
"""

from __future__ import annotations

import concurrent.futures
import signal
from collections.abc import Iterator

import pytest

from tests.e2e.procs import http
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
