"""deploy/components/postgres-ha: three replicas on one database, no volume (SPEC §12)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import yaml

from responder.config.main import load_config
from tests.unit.test_deploy import CORE_KINDS, DEPLOY, K8S_VERSION, _kustomize, _one, _overlay, _pod

HA = DEPLOY / "components" / "postgres-ha"
SELECTOR = {"app.kubernetes.io/name": "alert-responder", "app.kubernetes.io/component": "server"}


def _ha(tmp_path: Path, *extra: Path) -> list[dict[str, Any]]:
    return _kustomize(_overlay(tmp_path, components=(HA, *extra)))


def test_three_replicas_roll_one_at_a_time_with_a_disruption_budget(tmp_path: Path) -> None:
    objects = _ha(tmp_path)
    deployment = _one(objects, "Deployment", "alert-responder")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}
    pdb = _one(objects, "PodDisruptionBudget", "alert-responder")
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": SELECTOR}}
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert SELECTOR.items() <= pod_labels.items()
    for obj in objects:
        if obj["kind"] in CORE_KINDS | {"PodDisruptionBudget"}:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_replicas_prefer_different_nodes_and_spread_over_zones(tmp_path: Path) -> None:
    pod = _pod(_ha(tmp_path))
    [term] = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"] == {"topologyKey": "kubernetes.io/hostname",
                                       "labelSelector": {"matchLabels": SELECTOR}}
    [spread] = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"


def test_no_volume_or_claim_remains_and_the_dsn_comes_from_a_secret(tmp_path: Path) -> None:
    objects = _ha(tmp_path)
    assert not [o for o in objects if o["kind"] == "PersistentVolumeClaim"]
    pod = _pod(objects)
    assert not [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert "fsGroup" not in pod["securityContext"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["postgres"]["secret"]["secretName"] == "alert-responder-postgres"
    assert volumes["postgres"]["secret"]["items"] == [{"key": "dsn", "path": "dsn"}]
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["/etc/responder/postgres"]["readOnly"] is True
    assert "/var/lib/responder" not in mounts
    config = next(o for o in objects if o["metadata"]["name"].startswith("alert-responder-config-"))
    state = yaml.safe_load(config["data"]["responder.yaml"])["state"]
    assert state == {"postgres": {"dsn_file": "/etc/responder/postgres/dsn"}}


def test_cloudnative_pg_component_mounts_the_clusters_app_uri(tmp_path: Path) -> None:
    objects = _ha(tmp_path, HA / "cloudnative-pg")
    cluster = _one(objects, "Cluster", "alert-responder-db")
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    assert cluster["spec"]["instances"] == 3
    assert cluster["spec"]["bootstrap"]["initdb"] == {"database": "responder", "owner": "responder"}
    volumes = {v["name"]: v for v in _pod(objects)["volumes"]}
    assert volumes["postgres"]["secret"]["secretName"] == "alert-responder-db-app"
    assert volumes["postgres"]["secret"]["items"] == [{"key": "uri", "path": "dsn"}]


def test_ha_config_loads_with_the_responders_own_loader(tmp_path: Path) -> None:
    text = (HA / "responder.yaml").read_text().replace("/etc/responder/", f"{tmp_path}/etc/")
    (tmp_path / "etc" / "secrets").mkdir(parents=True)
    (tmp_path / "etc" / "secrets" / "token").write_text("t0ken\n")
    (tmp_path / "etc" / "postgres").mkdir()
    (tmp_path / "etc" / "postgres" / "dsn").write_text(
        "postgresql://responder:pw@alert-responder-db-rw:5432/responder\n")
    (tmp_path / "responder.yaml").write_text(text)
    config = load_config(tmp_path / "responder.yaml")
    assert config.postgres is not None
    assert config.postgres.shown == "postgresql://responder@alert-responder-db-rw:5432/responder"
    plain = yaml.safe_load((DEPLOY / "config" / "responder.yaml").read_text())
    ha = yaml.safe_load((HA / "responder.yaml").read_text())
    assert ha.pop("state") != plain.pop("state")
    assert ha == plain
