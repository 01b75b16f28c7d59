"""The Prometheus Operator set-up under deploy/components: AlertmanagerConfig, the
``release`` label, the NetworkPolicy. Rendered with kustomize; core kinds validated with
kubernetes-validate, the Operator's kinds against schemas of the fields they use."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from tests.conftest import require_binary
from tests.operator_schemas import SCHEMAS
from tests.shipped import REPO

DEPLOY = REPO / "deploy"
COMPONENTS = DEPLOY / "components"
K8S_VERSION = "1.30.0"
OPERATOR_KINDS = set(SCHEMAS)


class _Loader(yaml.SafeLoader):
    """kustomize writes ``matchType: =`` unquoted; YAML 1.1's ``=`` (value) is a string."""


_Loader.add_constructor("tag:yaml.org,2002:value",
                        lambda loader, node: loader.construct_scalar(node))  # type: ignore[arg-type]


def render(tmp_path: Path, *components: str) -> list[dict[str, Any]]:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "namespace": "monitoring", "resources": [os.path.relpath(DEPLOY, overlay)],
        "components": [os.path.relpath(COMPONENTS / c, overlay) for c in components]}))
    result = subprocess.run([require_binary("kubectl"), "kustomize", str(overlay)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.load_all(result.stdout, Loader=_Loader) if doc]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


@pytest.fixture(scope="module")
def operator_install(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return render(tmp_path_factory.mktemp("operator"), "prometheus-operator", "release-label",
                  "network-policy")


def test_every_object_validates_core_kinds_by_kubernetes_and_operator_kinds_by_their_fields(
        operator_install: list[dict[str, Any]]) -> None:
    kinds = {o["kind"] for o in operator_install}
    assert {"AlertmanagerConfig", "NetworkPolicy", "PrometheusRule", "ServiceMonitor"} <= kinds
    for obj in operator_install:
        if obj["kind"] in OPERATOR_KINDS:
            jsonschema.validate(obj, SCHEMAS[obj["kind"]])
        else:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_a_field_the_operator_does_not_know_is_caught(
        operator_install: list[dict[str, Any]]) -> None:
    config = one(operator_install, "AlertmanagerConfig")
    typo = {**config, "spec": {**config["spec"], "route": {**config["spec"]["route"],
                                                          "group_by": ["alertname"]}}}
    with pytest.raises(jsonschema.ValidationError, match="group_by"):
        jsonschema.validate(typo, SCHEMAS["AlertmanagerConfig"])


def test_alertmanager_config_is_the_shipped_route_and_receiver_with_the_token_secret(
        operator_install: list[dict[str, Any]]) -> None:
    snippet = yaml.safe_load((DEPLOY / "alertmanager" / "route-snippet.yml").read_text())
    (plain,) = [r for r in snippet["route"]["routes"] if r["receiver"] == "alert-responder"]
    (receiver,) = snippet["receivers"]
    webhook = receiver["webhook_configs"][0]
    config = one(operator_install, "AlertmanagerConfig")
    assert config["metadata"]["namespace"] == "monitoring"
    route = config["spec"]["route"]
    assert route["receiver"] == plain["receiver"]
    assert [f'{m["name"]}{m["matchType"]}"{m["value"]}"' for m in route["matchers"]] == \
        plain["matchers"]
    assert (route["groupBy"], route["groupWait"], route["groupInterval"],
            route["repeatInterval"], route["continue"]) == (
        plain["group_by"], plain["group_wait"], plain["group_interval"],
        plain["repeat_interval"], plain["continue"])
    (ours,) = config["spec"]["receivers"]
    (hook,) = ours["webhookConfigs"]
    assert ours["name"] == receiver["name"]
    assert (hook["url"], hook["sendResolved"], hook["maxAlerts"]) == (
        webhook["url"], webhook["send_resolved"], webhook["max_alerts"])
    assert hook["httpConfig"]["authorization"] == {
        "type": "Bearer", "credentials": {"name": "alert-responder-token", "key": "token"}}
    # The token Secret the Deployment mounts is the one the AlertmanagerConfig reads.
    volumes = one(operator_install, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert any(v.get("secret", {}).get("secretName") == "alert-responder-token"
               for v in volumes)


def test_the_release_label_goes_on_what_prometheus_selects_and_nothing_else(
        operator_install: list[dict[str, Any]]) -> None:
    labelled = {o["kind"] for o in operator_install
                if o["metadata"].get("labels", {}).get("release") == "kube-prometheus-stack"}
    assert labelled == {"PrometheusRule", "ServiceMonitor", "AlertmanagerConfig"}


def test_the_release_label_component_works_without_the_alertmanager_config(
        tmp_path: Path) -> None:
    objects = render(tmp_path, "release-label")
    labelled = {o["kind"] for o in objects if "release" in o["metadata"].get("labels", {})}
    assert labelled == {"PrometheusRule", "ServiceMonitor"}


def test_network_policy_lets_in_alertmanager_and_prometheus_only_and_out_dns_argo_api_channels(
        operator_install: list[dict[str, Any]]) -> None:
    policy = one(operator_install, "NetworkPolicy")["spec"]
    pod = one(operator_install, "Deployment")["spec"]["template"]
    assert policy["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = policy["ingress"]
    assert [p["podSelector"]["matchLabels"] for p in ingress["from"]] == [
        {"app.kubernetes.io/name": "alertmanager"}, {"app.kubernetes.io/name": "prometheus"}]
    container_ports = {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
    assert [p["port"] for p in ingress["ports"]] == ["http"] and "http" in container_ports
    allowed = {(p["port"], p["protocol"]) for rule in policy["egress"] for p in rule["ports"]}
    assert {(53, "UDP"), (53, "TCP"), (2746, "TCP"), (443, "TCP"), (6443, "TCP"),
            (587, "TCP")} <= allowed
    assert all(p["protocol"] in ("TCP", "UDP") and p["port"] != 9095 for rule in
               policy["egress"] for p in rule["ports"])
