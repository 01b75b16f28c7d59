"""Fillers and log prefixes for the corpus generator (``generate.py``).

Every ``${name}`` in a message is replaced by a fresh value of the named filler, so one
wording appears with different pod names, ids, paths, numbers and timestamps, the way the
same failure looks in two real logs. Seeded: the corpus is the same on every run.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable

R = random.Random(20261201)

_WORDS = ["etl", "billing", "ingest", "report", "nightly", "train", "sync", "export", "index",
          "search", "payments", "ledger", "thumbnailer", "feature", "scoring", "backfill",
          "checkout", "catalog", "notify", "webhooks", "geo", "fraud", "recs", "audit",
          "metrics", "orders", "invoices", "crawler", "transcode", "mailer"]
_SUFFIX = ["job", "worker", "api", "batch", "pipeline", "svc", "runner", "cron", "step", "task"]
_NS = ["default", "argo", "batch", "ci", "ci-main", "data", "ml", "payments", "platform",
       "staging", "prod", "taskmaster", "analytics", "workflows", "infra"]
_REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2",
            "europe-west4", "us-central1", "westeurope", "eastus2"]
_PKG_PY = ["numpy", "pandas", "requests", "urllib3", "boto3", "pydantic", "torch", "scipy",
           "grpcio", "protobuf", "sqlalchemy", "psycopg2-binary", "cryptography", "lxml"]
_PKG_JS = ["react", "lodash", "@types/node", "typescript", "webpack", "esbuild", "axios",
           "@babel/core", "eslint", "jest", "next", "vite", "@aws-sdk/client-s3", "express"]
_JAVA = ["org.springframework.boot:spring-boot-starter-web", "com.fasterxml.jackson.core:jackson-databind",
         "org.apache.kafka:kafka-clients", "io.netty:netty-handler", "com.google.guava:guava",
         "org.postgresql:postgresql", "org.slf4j:slf4j-api", "junit:junit"]
_GO = ["github.com/aws/aws-sdk-go-v2", "golang.org/x/net", "google.golang.org/grpc",
       "github.com/prometheus/client_golang", "k8s.io/client-go", "github.com/spf13/cobra",
       "go.uber.org/zap", "github.com/stretchr/testify"]
_RUST = ["serde", "tokio", "hyper", "reqwest", "clap", "rand", "syn", "openssl-sys", "ring"]
_IMAGES = ["python:3.11-slim", "node:20-alpine", "golang:1.22", "nginx:1.25", "redis:7",
           "postgres:16", "ghcr.io/acme/etl:2024.05.1", "quay.io/argoproj/argoexec:v3.5.5",
           "registry.acme.io/ml/trainer:9f3c2e1", "gcr.io/acme-prod/api:v1.42.0",
           "123456789012.dkr.ecr.us-east-1.amazonaws.com/scoring:4.2.0",
           "acmecr.azurecr.io/platform/sync:latest", "docker.io/bitnami/kafka:3.6"]
_USERS = ["app", "etl", "reporting", "svc_billing", "airflow", "analytics_rw", "postgres"]
_TABLES = ["orders", "events", "users", "invoices", "line_items", "sessions", "jobs",
           "public.accounts", "audit_log", "feature_values"]
_TOPICS = ["orders.v1", "clickstream", "payments-events", "audit", "cdc.public.users",
           "metrics-raw", "notifications"]
_FILES = ["src/main.rs", "pkg/api/server.go", "app/models.py", "src/index.ts", "lib/util.js",
          "internal/sync/worker.go", "src/handlers/orders.py", "cmd/main.go", "src/lib.rs"]
_BRANCHES = ["main", "master", "develop", "release/2024.05", "feature/retry-logic", "gh-pages"]
_HOSTS = ["api.partner-feeds.io", "payments.internal", "auth.acme.io", "hooks.acme.io",
          "s3.amazonaws.com", "storage.googleapis.com", "vault.vault.svc", "ldap.corp.acme.io",
          "registry.npmjs.org", "pypi.org", "repo.maven.apache.org", "proxy.golang.org",
          "index.crates.io", "api.github.com", "slack.com", "orders-db.prod.svc.cluster.local"]


def _alnum(n: int) -> str:
    return "".join(R.choice(string.ascii_lowercase + string.digits) for _ in range(n))


def _hex(n: int) -> str:
    return "".join(R.choice("0123456789abcdef") for _ in range(n))


def _name() -> str:
    return f"{R.choice(_WORDS)}-{R.choice(_SUFFIX)}"


def _ts() -> str:
    return (f"2024-{R.randint(1, 12):02d}-{R.randint(1, 28):02d}T{R.randint(0, 23):02d}:"
            f"{R.randint(0, 59):02d}:{R.randint(0, 59):02d}.{R.randint(0, 999999):06d}Z")


def _ip() -> str:
    return f"10.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(1, 254)}"


FILLERS: dict[str, Callable[[], str]] = {
    "name": _name,
    "wf": lambda: f"{_name()}-{_alnum(5)}",
    "pod": lambda: f"{_name()}-{_hex(R.choice([9, 10]))}-{_alnum(5)}",
    "argopod": lambda: f"{_name()}-{_alnum(5)}-{R.randint(100000000, 4294967295)}",
    "node": lambda: R.choice([f"ip-10-{R.randint(0, 255)}-{R.randint(0, 255)}-{R.randint(1, 254)}.ec2.internal",
                              f"gke-prod-pool-{R.randint(1, 3)}-{_hex(8)}-{_alnum(4)}",
                              f"aks-nodepool1-{R.randint(10000000, 99999999)}-vmss00000{R.randint(0, 9)}",
                              f"worker-{R.randint(1, 40)}"]),
    "ns": lambda: R.choice(_NS),
    "ip": _ip,
    "port": lambda: str(R.choice([80, 443, 5432, 3306, 6379, 9092, 2379, 8080, 8443, 9000, 2746, 6443])),
    "hex": lambda: _hex(R.choice([7, 8, 12])),
    "sha": lambda: _hex(64),
    "uuid": lambda: f"{_hex(8)}-{_hex(4)}-{_hex(4)}-{_hex(4)}-{_hex(12)}",
    "ts": _ts,
    "time": lambda: f"{R.randint(0, 23):02d}:{R.randint(0, 59):02d}:{R.randint(0, 59):02d}",
    "n": lambda: str(R.randint(2, 48)),
    "big": lambda: str(R.randint(1000, 999999)),
    "pct": lambda: str(R.randint(81, 100)),
    "secs": lambda: str(R.choice([30, 60, 90, 120, 300, 600, 900, 1800, 3600])),
    "mins": lambda: str(R.choice([10, 15, 30, 45, 60, 90, 120, 180, 360])),
    "mem": lambda: R.choice(["512Mi", "1Gi", "2Gi", "4Gi", "8Gi", "256Mi", "16Gi"]),
    "region": lambda: R.choice(_REGIONS),
    "bucket": lambda: R.choice(["lake-raw", "acme-artifacts", "ml-models-prod", "backups-eu", "ci-cache"]),
    "host": lambda: R.choice(_HOSTS),
    "pypkg": lambda: R.choice(_PKG_PY),
    "jspkg": lambda: R.choice(_PKG_JS),
    "java": lambda: R.choice(_JAVA),
    "gomod": lambda: R.choice(_GO),
    "crate": lambda: R.choice(_RUST),
    "ver": lambda: f"{R.randint(0, 9)}.{R.randint(0, 30)}.{R.randint(0, 20)}",
    "image": lambda: R.choice(_IMAGES),
    "user": lambda: R.choice(_USERS),
    "table": lambda: R.choice(_TABLES),
    "topic": lambda: R.choice(_TOPICS),
    "file": lambda: R.choice(_FILES),
    "line": lambda: str(R.randint(3, 880)),
    "branch": lambda: R.choice(_BRANCHES),
    "repo": lambda: R.choice(["acme/infra", "acme/etl", "acme/web", "platform/charts", "ml/trainer", "acme/api"]),
    "step": lambda: R.choice(["build", "test", "lint", "deploy", "package", "migrate", "publish",
                              "unit-tests", "integration", "e2e", "train-model", "extract"]),
    "db": lambda: R.choice(["orders", "app", "analytics", "billing", "warehouse", "airflow"]),
    "pid": lambda: str(R.randint(100, 65000)),
    "acct": lambda: str(R.randint(100000000000, 999999999999)),
    "job": lambda: str(R.randint(1000000, 9999999999)),
}

_FIELD = re.compile(r"\$\{([a-z]+)\}")  # ${UPPER} is left alone: shell and Spring text


def fill(template: str) -> str:
    """``template`` with every ``${name}`` replaced by a fresh value of that filler."""
    return _FIELD.sub(lambda m: FILLERS[m.group(1)](), template)


def choice(items: list[str]) -> str:
    return R.choice(items)
