"""Several real ``responder serve`` processes on one PostgreSQL database, and a fake Argo.

Each replica has its own directory, port and log, and the same configuration: the shipped
runbooks with short durations (tests/e2e/test_shipped_loop.py), the database's DSN (with
its password) in a ``dsn_file``, short leases so a killed replica's work comes back in
seconds, and the fake Argo Server running in a background loop.
"""

from __future__ import annotations

import hashlib
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.e2e.procs import Proc, free_port, http, responder_config, start_responder, wait_for
from tests.e2e.test_shipped_loop import Background, fast_runbooks
from tests.fakes.argo_server import FakeArgoServer
from tests.pg import PASSWORD

TOKEN = "replicas-am-token"
ARGO_TOKEN = "replicas-argo-token"
NS = "taskmaster"
LEASE = "3s"


class Replica:
    def __init__(self, index: int, root: Path, dsn: str, argo_url: str,
                 lease: str | None = LEASE) -> None:
        self.name = f"replica-{index}"
        self.dir = root / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        (self.dir / "argo-token").write_text(ARGO_TOKEN + "\n")
        (self.dir / "pg-dsn").write_text(dsn + "\n")
        self.config = responder_config(
            self.dir, self.port, TOKEN, rules=[str(fast_runbooks(self.dir))],
            state={"postgres": {"dsn_file": "pg-dsn",
                                **({"lease": lease} if lease else {})}},
            argo={"server": argo_url, "token_file": "argo-token"})
        self.proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Replica:
        self.proc = start_responder(self.dir, self.config, self.port)
        self.proc.name = self.name
        return self

    def kill(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None:
            self.proc.kill(sig)

    def get(self, path: str) -> Any:
        status, body = http("GET", self.url + path, token=TOKEN)
        assert status == 200, (path, status, body)
        return body

    def post(self, path: str, body: Any = None) -> tuple[int, Any]:
        return http("POST", self.url + path, body if body is not None else {}, token=TOKEN)

    def output(self) -> str:
        return self.proc.output() if self.proc is not None else ""


class Cluster:
    """``n`` replicas on ``dsn`` and the fake Argo Server they act on."""

    def __init__(self, root: Path, dsn: str, background: Background, n: int = 3,
                 lease: str | None = LEASE) -> None:
        self.background = background
        self.argo = FakeArgoServer(token=ARGO_TOKEN)
        background.start(self.argo)
        self.store = self.argo.store
        self.replicas = [Replica(i, root, dsn, self.argo.url, lease) for i in range(n)]

    def procs(self) -> tuple[Proc, ...]:
        return tuple(r.proc for r in self.replicas if r.proc is not None)

    def wait(self, check: Any, what: str, timeout: float = 30.0) -> Any:
        return wait_for(check, timeout, what, self.procs())

    def add_workflow(self, name: str, phase: str = "Failed", message: str = "",
                     cron: str | None = None) -> None:
        labels = {"workflows.argoproj.io/workflow-template": cron or name}
        if cron:
            labels["workflows.argoproj.io/cron-workflow"] = cron
        self.background.call(lambda: self.store.add_workflow(
            NS, name, phase, message=message, labels=labels))

    def add_cron(self, name: str) -> None:
        self.background.call(lambda: self.store.add_cron_workflow(NS, name))

    def argo_calls(self, path: str) -> int:
        return self.background.call(lambda: len(self.argo.calls("PUT", path)))

    def receipt(self, workflow: str) -> dict[str, Any] | None:
        """The workflow's receipt as any replica's audit API shows it (all show the same)."""
        body = self.replicas[0].get("/api/v1/events?limit=200") if self.replicas[0].proc \
            and self.replicas[0].proc.alive() else self.replicas[1].get("/api/v1/events?limit=200")
        found = [a for a in body["alerts"] if a["alert"]["labels"].get("workflow") == workflow]
        return found[0] if found else None

    def no_secret_in_logs(self) -> None:
        for replica in self.replicas:
            assert PASSWORD not in replica.output(), replica.name

    def stop(self) -> None:
        for replica in self.replicas:
            replica.kill()


def alert(workflow: str, description: str, *, cron: str | None = None,
          fingerprint: str | None = None, status: str = "firing") -> dict[str, Any]:
    labels = {"alertname": "WorkflowFailed", "namespace": NS, "workflow": workflow,
              "severity": "warning", "responder": "act"}
    if cron:
        labels |= {"cronworkflow": cron, "workflow_template": cron}
    return {"status": status, "labels": labels, "annotations": {"description": description},
            "startsAt": "2026-11-28T10:00:00Z",
            "fingerprint": fingerprint or hashlib.sha256(workflow.encode()).hexdigest()[:16]}


def payload(*alerts: dict[str, Any], group_key: str = "replicas") -> dict[str, Any]:
    return {"version": "4", "status": "firing", "groupKey": group_key, "receiver": "responder",
            "alerts": list(alerts)}


def outcomes(receipt: dict[str, Any] | None, action: str) -> list[str]:
    if receipt is None:
        return []
    return [e["outcome"] for e in receipt["events"] if e.get("action") == action]


def cluster_of(root: Path, dsn: str, background: Background, n: int = 3,
               lease: str | None = LEASE) -> Iterator[Cluster]:
    cluster = Cluster(root, dsn, background, n, lease)
    try:
        for replica in cluster.replicas:
            replica.start()
        yield cluster
    finally:
        cluster.stop()
