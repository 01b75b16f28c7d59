"""The Kubernetes manifests, Alertmanager config and image recipe under deploy/."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from responder.config.main import load_config
from tests.conftest import require_binary
from tests.shipped import REPO, rule_files

DEPLOY = REPO / "deploy"
K8S_VERSION = "1.30.0"
CORE_KINDS = {"Deployment", "Service", "ServiceAccount", "Role", "RoleBinding", "ConfigMap",
              "PersistentVolumeClaim"}
# What the Kubernetes-API action backend does, verb by resource; nothing more.
EXPECTED_RULES = {("argoproj.io", "workflows"): {"get", "create", "patch"},
                  ("argoproj.io", "cronworkflows"): {"patch"}}
RUN_AS = 10001


def _kustomize(path: Path) -> list[dict[str, Any]]:
    result = subprocess.run([require_binary("kubectl"), "kustomize", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _overlay(tmp_path: Path, *, components: tuple[Path, ...] = ()) -> Path:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    spec: dict[str, Any] = {"namespace": "monitoring",
                            "resources": [os.path.relpath(DEPLOY, overlay)]}
    if components:
        spec["components"] = [os.path.relpath(c, overlay) for c in components]
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(spec))
    return overlay


def _one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind
             and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, (kind, name, [o["metadata"]["name"] for o in found])
    return found[0]


def _rules(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    return granted


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return _kustomize(DEPLOY)


@pytest.fixture
def rendered(tmp_path: Path) -> list[dict[str, Any]]:
    return _kustomize(_overlay(tmp_path))


def _pod(objects: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = _one(objects, "Deployment", "alert-responder")["spec"]
    pod: dict[str, Any] = spec["template"]["spec"]
    return pod


def test_base_renders_every_kind_it_ships(base: list[dict[str, Any]]) -> None:
    kinds = {o["kind"] for o in base}
    assert kinds == CORE_KINDS | {"PrometheusRule", "ServiceMonitor"}
    assert all("namespace" not in o["metadata"] for o in base)   # namespace-agnostic


def test_core_objects_validate_against_the_kubernetes_schema(
        rendered: list[dict[str, Any]]) -> None:
    core = [o for o in rendered if o["kind"] in CORE_KINDS]
    assert {o["kind"] for o in core} == CORE_KINDS
    for obj in core:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_deployment_runs_one_replica_recreated_with_probes_on_health_endpoints(
        rendered: list[dict[str, Any]]) -> None:
    deployment = _one(rendered, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    container = _pod(rendered)["containers"][0]
    assert container["args"] == ["serve", "-c", "/etc/responder/responder.yaml"]
    assert container["ports"] == [{"name": "http", "containerPort": 9095, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/-/ready", "port": "http"}
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]


def test_pod_is_non_root_read_only_without_capabilities_and_seccomp_confined(
        rendered: list[dict[str, Any]]) -> None:
    pod = _pod(rendered)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == RUN_AS
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        ctx = container["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"] == {"drop": ["ALL"]}
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}


def test_volumes_resolve_to_rendered_configmaps_the_token_secret_and_the_state_claim(
        rendered: list[dict[str, Any]]) -> None:
    pod = _pod(rendered)
    configmaps = {o["metadata"]["name"] for o in rendered if o["kind"] == "ConfigMap"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for volume in volumes.values():
        if "configMap" in volume:
            assert volume["configMap"]["name"] in configmaps
    assert volumes["secrets"]["secret"]["secretName"] == "alert-responder-token"
    claim = volumes["state"]["persistentVolumeClaim"]["claimName"]
    assert _one(rendered, "PersistentVolumeClaim", claim)["spec"]["accessModes"] == [
        "ReadWriteOnce"]


def test_every_path_in_the_cluster_config_is_under_a_mount(
        rendered: list[dict[str, Any]]) -> None:
    config = yaml.safe_load((DEPLOY / "config" / "responder.yaml").read_text())
    mounts = [m["mountPath"] for m in _pod(rendered)["containers"][0]["volumeMounts"]]
    paths = [config["auth"]["bearer_token_file"], config["state"]["path"],
             config["templates"], *config["rules"], *config["patterns"],
             *config["alert_rules"]]
    for path in paths:
        assert any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts), path


def test_rendered_configmaps_hold_the_shipped_files(rendered: list[dict[str, Any]]) -> None:
    def data(prefix: str) -> dict[str, str]:
        found = [o for o in rendered if o["kind"] == "ConfigMap"
                 and o["metadata"]["name"].startswith(prefix)]
        assert len(found) == 1, prefix
        return dict(found[0].get("data") or {})

    runbooks = sorted((REPO / "rules" / "runbooks").glob("*.yaml"))
    assert data("alert-responder-runbooks-") == {p.name: p.read_text() for p in runbooks}
    assert data("alert-responder-patterns-") == {
        "patterns.yaml": (REPO / "rules" / "patterns.yaml").read_text()}
    assert data("alert-responder-alert-rules-") == {p.name: p.read_text()
                                                     for p in rule_files()}
    templates = sorted(p for p in (REPO / "templates").glob("*") if p.is_file())
    assert data("alert-responder-templates-") == {p.name: p.read_text() for p in templates}
    assert data("alert-responder-config-") == {
        "responder.yaml": (DEPLOY / "config" / "responder.yaml").read_text()}


def test_dashboards_configmap_is_labelled_for_the_grafana_sidecar_with_a_fixed_name(
        rendered: list[dict[str, Any]]) -> None:
    dashboards = _one(rendered, "ConfigMap", "alert-responder-dashboards")
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert set(dashboards["data"]) == {p.name for p in (REPO / "dashboards").glob("*.json")}


def test_prometheus_rule_carries_every_shipped_rule_group(
        rendered: list[dict[str, Any]]) -> None:
    rule = _one(rendered, "PrometheusRule", "alert-responder")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    groups = [g for p in rule_files() for g in yaml.safe_load(p.read_text())["groups"]]
    assert rule["spec"]["groups"] == groups


def test_service_and_service_monitor_expose_metrics_on_the_http_port(
        rendered: list[dict[str, Any]]) -> None:
    service = _one(rendered, "Service", "alert-responder")
    assert service["spec"]["ports"] == [{"name": "http", "port": 9095, "targetPort": "http",
                                         "protocol": "TCP"}]
    pod_labels = _one(rendered, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    monitor = _one(rendered, "ServiceMonitor", "alert-responder")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (
        service["metadata"]["labels"].items())
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics",
                                             "interval": "30s"}]


def test_role_grants_exactly_the_verbs_the_actions_need(
        rendered: list[dict[str, Any]]) -> None:
    assert _rules(_one(rendered, "Role", "alert-responder")) == EXPECTED_RULES
    binding = _one(rendered, "RoleBinding", "alert-responder")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "alert-responder"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "alert-responder",
                                    "namespace": "monitoring"}]


def test_role_verbs_are_the_ones_the_kubernetes_backend_calls() -> None:
    source = (REPO / "responder" / "act" / "argo.py").read_text()
    called = set(re.findall(r"\.(\w+?)_namespaced_custom_object\b", source))
    assert called == set().union(*EXPECTED_RULES.values())


def test_workflow_namespace_overlay_binds_the_role_to_the_responders_account() -> None:
    objects = _kustomize(DEPLOY / "workflow-namespace")
    assert _rules(_one(objects, "Role", "alert-responder")) == EXPECTED_RULES
    binding = _one(objects, "RoleBinding", "alert-responder")
    assert binding["metadata"]["namespace"] == "taskmaster"
    assert binding["subjects"][0]["namespace"] == "monitoring"


def test_argo_server_component_swaps_the_config_and_mounts_a_token(tmp_path: Path) -> None:
    objects = _kustomize(_overlay(tmp_path, components=(DEPLOY / "components" / "argo-server",)))
    for obj in objects:
        if obj["kind"] in CORE_KINDS | {"Secret"}:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    config = next(o for o in objects if o["metadata"]["name"].startswith(
        "alert-responder-config-"))
    with_server = yaml.safe_load(config["data"]["responder.yaml"])
    plain = yaml.safe_load((DEPLOY / "config" / "responder.yaml").read_text())
    assert with_server.pop("argo")["server"].startswith("https://")
    assert with_server == plain
    token = _one(objects, "Secret", "alert-responder-argo-token")
    assert token["type"] == "kubernetes.io/service-account-token"
    mounts = {m["mountPath"] for m in _pod(objects)["containers"][0]["volumeMounts"]}
    assert "/etc/responder/argo" in mounts


@pytest.mark.parametrize("name", ["config/responder.yaml", "components/argo-server/responder.yaml"])
def test_cluster_config_loads_with_the_responders_own_loader(name: str, tmp_path: Path) -> None:
    text = (DEPLOY / name).read_text()
    text = text.replace("/etc/responder/", f"{tmp_path}/etc/").replace(
        "/var/lib/responder/", f"{tmp_path}/state/")
    (tmp_path / "etc" / "secrets").mkdir(parents=True)
    (tmp_path / "etc" / "secrets" / "token").write_text("t0ken\n")
    (tmp_path / "etc" / "argo").mkdir()
    (tmp_path / "etc" / "argo" / "token").write_text("argo-t0ken\n")
    path = tmp_path / "responder.yaml"
    path.write_text(text)
    config = load_config(path)
    assert (config.host, config.port) == ("0.0.0.0", 9095)
    assert config.auth.bearer_token == "t0ken"
    assert {"console", "oncall", "pager"} <= set(config.channels)


def test_synced_copies_in_deploy_files_equal_their_sources() -> None:
    result = subprocess.run([sys.executable, str(DEPLOY / "sync.py"), "--check"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_alertmanager_config_passes_amtool_check_config() -> None:
    result = subprocess.run([require_binary("amtool"), "check-config",
                             str(DEPLOY / "alertmanager" / "alertmanager.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_routes_act_alerts_to_the_responder_and_self_alerts_elsewhere() -> None:
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    routes = {tuple(r["matchers"]): r for r in config["route"]["routes"]}
    to_responder = routes[('responder="act"',)]
    assert to_responder["receiver"] == "alert-responder"
    assert to_responder["group_by"] == ["alertname", "namespace", "workflow"]
    assert routes[('responder="self"',)]["receiver"] != "alert-responder"
    assert config["route"]["receiver"] != "alert-responder"
    receiver = next(r for r in config["receivers"] if r["name"] == "alert-responder")
    webhook = receiver["webhook_configs"][0]
    assert re.fullmatch(r"http://alert-responder\.[a-z0-9-]+\.svc:9095/webhook", webhook["url"])
    assert webhook["send_resolved"] is True and webhook["max_alerts"] == 0
    assert webhook["http_config"]["authorization"]["credentials_file"]
    labels = {r["labels"]["responder"] for p in rule_files()
              for g in yaml.safe_load(p.read_text())["groups"] for r in g["rules"]
              if "alert" in r}
    assert labels == {"act", "self"}


def test_alertmanager_snippet_is_the_same_route_and_receiver_as_the_full_config() -> None:
    full = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    snippet = yaml.safe_load((DEPLOY / "alertmanager" / "route-snippet.yml").read_text())
    assert snippet["receivers"] == [r for r in full["receivers"]
                                    if r["name"] == "alert-responder"]
    ours = [r for r in full["route"]["routes"] if r["receiver"] == "alert-responder"]
    assert [r for r in snippet["route"]["routes"] if r["receiver"] == "alert-responder"] == ours


def test_dockerfile_builds_a_non_root_slim_image_with_the_responder_entrypoint() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["python:3.11-slim", "python:3.11-slim"]
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users == [f"{RUN_AS}:{RUN_AS}"]
    assert 'ENTRYPOINT ["responder"]' in text
    assert 'CMD ["serve", "-c", "/etc/responder/responder.yaml"]' in text
    assert "EXPOSE 9095" in text


def test_responder_check_accepts_the_cluster_config_with_the_synced_files(
        tmp_path: Path) -> None:
    files = DEPLOY / "files"
    text = (DEPLOY / "config" / "responder.yaml").read_text()
    for mounted, local in [("/etc/responder/rules/runbooks", files / "runbooks"),
                           ("/etc/responder/rules/patterns", files / "patterns"),
                           ("/etc/responder/rules/prometheus", files / "alert-rules"),
                           ("/etc/responder/templates", files / "templates"),
                           ("/etc/responder/secrets", tmp_path),
                           ("/var/lib/responder", tmp_path)]:
        text = text.replace(mounted, str(local))
    (tmp_path / "token").write_text("t0ken\n")
    config = tmp_path / "responder.yaml"
    config.write_text(text)
    result = subprocess.run([sys.executable, "-m", "responder", "check", "-c", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
