"""The Helm chart (deploy/helm/switchboard) keeps its promises, read from what `helm template` renders.

`helm lint` and `helm template` run (Helm v4, built from the Go module proxy by `scripts/infra helm`,
cached) over the value sets in the chart's `ci/` folder. The rendered manifests must give every
process a Deployment with its own replicas, resources and `/healthz` + `/readyz` probes on the port
it listens on, an autoscaler (a HorizontalPodAutoscaler, or KEDA on consumer lag) and a
PodDisruptionBudget; take every secret from the existing Secret it is told (no Secret rendered, no
placeholder value); point at the external Kafka and MongoDB; and keep the services' admin APIs off
the public ingress. Each process's settings class must accept the environment its Deployment gives it.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from call_control_svc.settings import CallControlSettings
from contacts_svc.settings import ContactsSettings
from gateway.settings import GatewaySettings
from leads_svc.settings import LeadsSettings
from persona_svc.settings import PersonaSettings
from switchboard.contracts.topics import COMMAND_TOPIC_PARTITIONS
from switchboard.testing.system import ALL

# Building Helm on a fresh machine (when the test command did not) takes minutes, once.
pytestmark = pytest.mark.timeout(1500)

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "switchboard"
VALUE_SETS = sorted(p.name for p in (CHART / "ci").glob("*.yaml"))
NAMESPACE = "voice"

SETTINGS: dict[str, type[BaseSettings]] = {
    "gateway": GatewaySettings,
    "persona_svc": PersonaSettings,
    "call_control_svc": CallControlSettings,
    "contacts_svc": ContactsSettings,
    "leads_svc": LeadsSettings,
}
SECRET_VALUE = "value-from-the-existing-secret"
PLACEHOLDERS = ("change-me", "changeme", "replace-me", "placeholder", "password", "secret123", "dev-pepper")
ADMIN_API_PATHS = ("/admin", "/v1/accounts", "/pbx", "/metrics")


@cache
def helm() -> str:
    """The Helm binary: the test command's, else the cached one (built when missing)."""
    if path := os.environ.get("SWITCHBOARD_HELM"):
        return path
    done = subprocess.run([str(ROOT / "scripts" / "infra"), "helm"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm(), *args], capture_output=True, text=True, check=False, cwd=ROOT)


@cache
def rendered(value_set: str) -> tuple[dict[str, Any], ...]:
    done = run_helm("template", "sb", str(CHART), "--namespace", NAMESPACE, "-f", str(CHART / "ci" / value_set))
    assert done.returncode == 0, done.stderr
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


@cache
def values(value_set: str) -> dict[str, Any]:
    return yaml.safe_load((CHART / "ci" / value_set).read_text())


def of_kind(value_set: str, kind: str) -> dict[str, dict[str, Any]]:
    """The rendered objects of one kind by component (or by name when they have none)."""
    found = {}
    for doc in rendered(value_set):
        if doc["kind"] == kind:
            labels = doc["metadata"].get("labels", {})
            found[labels.get("app.kubernetes.io/component", doc["metadata"]["name"])] = doc
    return found


def containers(value_set: str) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for component, deployment in of_kind(value_set, "Deployment").items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        yield component, deployment, container


@pytest.fixture(params=VALUE_SETS)
def value_set(request: pytest.FixtureRequest) -> str:
    return request.param


def test_the_chart_lints_with_every_value_set(value_set: str) -> None:
    done = run_helm("lint", str(CHART), "--strict", "-f", str(CHART / "ci" / value_set))
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_release_without_kafka_or_a_secret_is_refused_with_a_clear_message() -> None:
    done = run_helm("template", "sb", str(CHART), "--set", "secrets.existingSecret=s")
    assert done.returncode != 0 and "kafka.bootstrap" in done.stderr, done.stderr
    done = run_helm("template", "sb", str(CHART), "--set", "kafka.bootstrap=kafka:9092")
    assert done.returncode != 0 and "secrets.existingSecret" in done.stderr, done.stderr
    done = run_helm(
        "template", "sb", str(CHART), "-f", str(CHART / "ci" / "minimal-values.yaml"), "--set", "ingress.enabled=true"
    )
    assert done.returncode != 0 and "ingress.host" in done.stderr, done.stderr


def test_every_process_has_a_deployment_running_its_module_on_its_port(value_set: str) -> None:
    by_module = {spec.module: spec for spec in ALL}
    deployments = list(containers(value_set))
    assert sorted(c for c, _, _ in deployments) == sorted(spec.name for spec in ALL)
    for component, _, container in deployments:
        module = container["command"][-1]
        assert container["command"] == ["python", "-m", module]
        assert by_module[module].name == component
        (port,) = container["ports"]
        assert port["containerPort"] == by_module[module].default_port
        member = component if component == "gateway" else f"{component}-svc"
        assert container["image"].rsplit("/", 1)[-1].startswith(f"switchboard-{member}:")


def test_every_process_is_probed_on_healthz_and_readyz(value_set: str) -> None:
    for component, _, container in containers(value_set):
        port_name = container["ports"][0]["name"]
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
            get = container[probe]["httpGet"]
            assert (get["path"], get["port"]) == (path, port_name), f"{component} {probe}: {get}"


def test_every_process_has_resources_and_runs_as_non_root(value_set: str) -> None:
    for component, deployment, container in containers(value_set):
        assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"], component
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_each_service_scales_on_its_own(value_set: str) -> None:
    deployments = of_kind(value_set, "Deployment")
    hpas = of_kind(value_set, "HorizontalPodAutoscaler")
    scaled = of_kind(value_set, "ScaledObject")
    assert not set(hpas) & set(scaled), "a Deployment with both an HPA and a KEDA ScaledObject: they fight"
    assert "gateway" not in scaled, "the gateway has no consumer lag to scale on"
    for component, deployment in deployments.items():
        name = deployment["metadata"]["name"]
        if component in hpas:
            assert hpas[component]["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
            assert "replicas" not in deployment["spec"], f"{component}: replicas fixed under an autoscaler"
        elif component in scaled:
            assert scaled[component]["spec"]["scaleTargetRef"]["name"] == name
            assert "replicas" not in deployment["spec"]
        else:
            assert deployment["spec"]["replicas"] >= 1
    if value_set == "production-values.yaml":
        assert hpas["gateway"]["spec"]["minReplicas"] == 4 and hpas["gateway"]["spec"]["maxReplicas"] == 20
        assert set(scaled) == {"leads", "contacts"}
    if value_set == "no-autoscaling-values.yaml":
        assert not hpas and not scaled
        assert deployments["persona"]["spec"]["replicas"] == 3 and deployments["leads"]["spec"]["replicas"] == 1


def test_keda_scales_on_the_lag_of_the_service_consumer_group(value_set: str) -> None:
    prefix = values(value_set)["kafka"].get("topicPrefix", "")
    for component, scaled in of_kind(value_set, "ScaledObject").items():
        (trigger,) = scaled["spec"]["triggers"]
        assert trigger["type"] == "kafka"
        meta = trigger["metadata"]
        assert meta["topic"] == f"{prefix}{component}.commands"
        assert meta["consumerGroup"] == f"{prefix}{component}.workers"
        assert meta["bootstrapServers"] == values(value_set)["kafka"]["bootstrap"]
        assert scaled["spec"]["maxReplicaCount"] <= COMMAND_TOPIC_PARTITIONS, "more consumers than partitions idle"


def test_every_process_has_a_disruption_budget_unless_turned_off(value_set: str) -> None:
    budgets = of_kind(value_set, "PodDisruptionBudget")
    if value_set == "no-autoscaling-values.yaml":
        assert not budgets
        return
    for component, deployment in of_kind(value_set, "Deployment").items():
        assert budgets[component]["spec"]["selector"] == deployment["spec"]["selector"]


def test_no_secret_is_rendered_and_every_secret_comes_from_the_existing_one(value_set: str) -> None:
    docs = rendered(value_set)
    assert not [d for d in docs if d["kind"] == "Secret"]
    secret_name = values(value_set)["secrets"]["existingSecret"]
    text = yaml.safe_dump_all(docs).lower()
    for placeholder in PLACEHOLDERS:
        assert placeholder not in text, f"a placeholder secret ({placeholder}) is rendered"
    for component, _, container in containers(value_set):
        env = {e["name"]: e for e in container["env"]}
        secret_like = [n for n in env if any(w in n for w in ("TOKEN", "PEPPER", "SECRET", "MONGO_URI", "PASSWORD"))]
        assert "SWITCHBOARD_MONGO_URI" in secret_like
        for name in secret_like:
            assert "value" not in env[name], f"{component}: {name} has a literal value"
            assert env[name]["valueFrom"]["secretKeyRef"]["name"] == secret_name


def _env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", SECRET_VALUE) for e in container["env"]}


def test_each_process_settings_accept_the_environment_of_its_deployment(value_set: str, monkeypatch) -> None:
    kafka = values(value_set)["kafka"]["bootstrap"]
    for component, _, container in containers(value_set):
        for key in list(os.environ):
            if key.startswith(("SWITCHBOARD_", "OTEL_")):
                monkeypatch.delenv(key)
        for key, value in _env_of(container).items():
            monkeypatch.setenv(key, value)
        settings = SETTINGS[container["command"][-1]]()
        assert settings.kafka_bootstrap == kafka, component
        assert settings.mongo_uri == SECRET_VALUE, component
        port = container["ports"][0]["containerPort"]
        if isinstance(settings, GatewaySettings):
            assert (settings.host, settings.port) == ("0.0.0.0", port)
            assert settings.key_pepper is not None and settings.pepper()
            ingress = values(value_set).get("ingress", {})
            if ingress.get("enabled"):
                assert ingress["host"] in settings.allowed_hosts
            assert f"sb-switchboard-gateway.{NAMESPACE}.svc:*" in settings.allowed_hosts
        else:
            assert (settings.http_host, settings.http_port) == ("0.0.0.0", port), component
            assert settings.admin_token is not None and settings.admin_token.get_secret_value() == SECRET_VALUE
        if isinstance(settings, CallControlSettings):
            assert settings.webhook_secret is not None


def test_the_public_ingress_reaches_only_the_mcp_endpoint_of_the_gateway(value_set: str) -> None:
    ingresses = [d for d in rendered(value_set) if d["kind"] == "Ingress"]
    if not values(value_set).get("ingress", {}).get("enabled"):
        assert not ingresses
        return
    gateway_service = of_kind(value_set, "Service")["gateway"]["metadata"]["name"]
    (ingress,) = ingresses
    paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert [(p["path"], p["pathType"]) for p in paths] == [("/ucp/v2/mcp", "Exact")]
    assert {p["backend"]["service"]["name"] for p in paths} == {gateway_service}
    assert "defaultBackend" not in ingress["spec"]
    for path in paths:
        assert not path["path"].startswith(ADMIN_API_PATHS)


def test_network_policies_keep_the_admin_apis_away_from_the_ingress_controller(value_set: str) -> None:
    policies = of_kind(value_set, "NetworkPolicy")
    if not values(value_set).get("networkPolicy", {}).get("enabled", True):
        assert not policies
        return
    deployments = of_kind(value_set, "Deployment")
    assert set(policies) == set(deployments)
    ingress_controller = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    for component, policy in policies.items():
        spec = policy["spec"]
        assert spec["podSelector"]["matchLabels"] == deployments[component]["spec"]["selector"]["matchLabels"]
        assert "Ingress" in spec["policyTypes"]
        sources = [source for rule in spec["ingress"] for source in rule.get("from", [None])]
        assert None not in sources, f"{component}: a rule open to every source"
        assert all(rule.get("from") for rule in spec["ingress"]), f"{component}: a rule open to every source"
        if component == "gateway":
            assert ingress_controller in sources
        else:
            assert ingress_controller not in sources, f"{component}'s admin API is reachable from the ingress controller"
            assert {"podSelector": {}} not in sources, f"{component}'s admin API is open to every pod"
            assert not [s for s in sources if s.get("namespaceSelector") == {}], f"{component} open to every namespace"


def test_prometheus_finds_every_process_metrics(value_set: str) -> None:
    for component, deployment, container in containers(value_set):
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/path"] == "/metrics"
        assert annotations["prometheus.io/port"] == str(container["ports"][0]["containerPort"]), component


def test_the_chart_says_how_to_create_an_api_key() -> None:
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    assert "python -m gateway.keys create" in notes
    assert json.loads(json.dumps(values("production-values.yaml")))["ingress"]["host"] in {"mcp.example.com"}
