"""docker-compose.yml runs the same system as the native run (`make run`), checked without Docker.

Every process of `switchboard.testing.system.ALL` is a compose service built from its own
Dockerfile; its settings class validates with the compose environment; ports, healthchecks and the
shared connection settings agree; images run as a non-root user; traces reach Jaeger through the
collector.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic_settings import BaseSettings

from call_control_svc.settings import CallControlSettings
from contacts_svc.settings import ContactsSettings
from gateway.settings import GatewaySettings
from leads_svc.settings import LeadsSettings
from persona_svc.settings import PersonaSettings
from switchboard.service import ServiceSettings
from switchboard.testing.system import ALL, ProcessSpec

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
COLLECTOR = yaml.safe_load((ROOT / "infra" / "otel" / "collector.yaml").read_text())

SETTINGS: dict[str, type[BaseSettings]] = {
    "gateway": GatewaySettings,
    "persona_svc": PersonaSettings,
    "call_control_svc": CallControlSettings,
    "contacts_svc": ContactsSettings,
    "leads_svc": LeadsSettings,
}

SECRETS: dict[str, list[str]] = {
    "gateway": ["key_pepper"],
    "persona_svc": ["admin_token"],
    "call_control_svc": ["admin_token", "webhook_secret"],
    "contacts_svc": ["admin_token"],
    "leads_svc": ["admin_token"],
}
"""Settings a process cannot do its work without, though it starts: refusing all is not running."""

SHARED = [
    "SWITCHBOARD_KAFKA_BOOTSTRAP",
    "SWITCHBOARD_MONGO_URI",
    "SWITCHBOARD_TOPIC_PREFIX",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
]
"""One value for the whole system, or the processes do not talk to each other."""

_VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?::?-(?P<default>[^}]*))?\}")


def interpolate(value: Any) -> str:
    """A compose value as the container sees it with an empty shell environment (`${X:-default}`)."""

    def replace(match: re.Match[str]) -> str:
        if match.group("default") is None:
            raise AssertionError(f"{match.group(0)} has no default: `docker compose up` alone would leave it empty")
        return match.group("default")

    return _VARIABLE.sub(replace, str(value)).replace("$$", "$")


class Dockerfile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.text = path.read_text()
        self.lines = [line.strip() for line in self.text.replace("\\\n", " ").splitlines()]

    def instructions(self, name: str) -> list[str]:
        return [line[len(name) :].strip() for line in self.lines if line.upper().startswith(name + " ")]

    @property
    def final_stage(self) -> list[str]:
        starts = [i for i, line in enumerate(self.lines) if line.upper().startswith("FROM ")]
        return self.lines[starts[-1] :]

    def module(self) -> str:
        (cmd,) = self.instructions("CMD")
        argv = yaml.safe_load(cmd)
        assert argv[:2] == ["python", "-m"], f"{self.path}: CMD should be `python -m <module>`, not {cmd}"
        return argv[2]


class ComposeProcess:
    """One Switchboard process as compose runs it."""

    def __init__(self, spec: ProcessSpec) -> None:
        matches = [
            (name, service)
            for name, service in COMPOSE["services"].items()
            if "build" in service and _dockerfile(service).module() == spec.module
        ]
        assert len(matches) == 1, f"expected one compose service running {spec.module}, found {[m[0] for m in matches]}"
        self.spec = spec
        self.name, self.service = matches[0]
        self.dockerfile = _dockerfile(self.service)
        self.env = {key: interpolate(value) for key, value in self.service.get("environment", {}).items()}

    def settings(self, monkeypatch: pytest.MonkeyPatch) -> BaseSettings:
        """The process's settings class, reading exactly the compose environment."""
        for key in list(os.environ):
            if key.startswith(("SWITCHBOARD_", "OTEL_")):
                monkeypatch.delenv(key)
        for key, value in self.env.items():
            monkeypatch.setenv(key, value)
        return SETTINGS[self.spec.module]()

    @property
    def port(self) -> int:
        return int(self.env[self.spec.port_env])

    def healthcheck_ports(self) -> list[int]:
        checks = [" ".join(self.dockerfile.instructions("HEALTHCHECK"))]
        if "healthcheck" in self.service:
            checks.append(" ".join(map(str, self.service["healthcheck"]["test"])))
        ports = []
        for check in checks:
            urls = re.findall(r"https?://[\w.\[\]:]+/(?:healthz|readyz)", check)
            assert urls, f"{self.name}: healthcheck without a /healthz or /readyz URL: {check!r}"
            ports += [urlsplit(url).port for url in urls]
        return ports


def _dockerfile(service: dict[str, Any]) -> Dockerfile:
    build = service["build"]
    return Dockerfile(ROOT / build.get("context", ".") / build["dockerfile"])


PROCESSES = {spec.name: ComposeProcess(spec) for spec in ALL}


@pytest.fixture(params=sorted(PROCESSES))
def process(request: pytest.FixtureRequest) -> ComposeProcess:
    return PROCESSES[request.param]


def test_settings_validate_with_the_compose_environment(process: ComposeProcess, monkeypatch) -> None:
    settings = process.settings(monkeypatch)
    for name in SECRETS[process.spec.module]:
        value = getattr(settings, name)
        assert value is not None and value.get_secret_value(), f"{process.name}: {name} is not set"
    if isinstance(settings, GatewaySettings):
        settings.pepper()


def test_listens_on_all_interfaces_at_the_port_it_publishes(process: ComposeProcess, monkeypatch) -> None:
    settings = process.settings(monkeypatch)
    host = settings.host if isinstance(settings, GatewaySettings) else settings.http_host
    port = settings.port if isinstance(settings, GatewaySettings) else settings.http_port
    assert host == "0.0.0.0", f"{process.name} listens on {host}: unreachable from other containers"
    assert port == process.port == process.spec.default_port
    published = [str(p).rsplit(":", 1)[-1] for p in process.service.get("ports", [])]
    assert published == [str(port)], f"{process.name} publishes {published}, listens on {port}"
    assert process.dockerfile.instructions("EXPOSE") == [str(port)]
    assert set(process.healthcheck_ports()) == {port}


def test_every_process_shares_one_broker_database_server_prefix_and_collector(monkeypatch) -> None:
    for key in SHARED:
        values = {name: p.env.get(key) for name, p in PROCESSES.items()}
        assert len(set(values.values())) == 1, f"{key} differs between processes: {values}"
    any_process = next(iter(PROCESSES.values()))
    settings = any_process.settings(monkeypatch)
    kafka_host, _, kafka_port = settings.kafka_bootstrap.partition(":")
    assert kafka_host in COMPOSE["services"], settings.kafka_bootstrap
    advertised = COMPOSE["services"][kafka_host]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"//{kafka_host}:{kafka_port}" in advertised
    mongo = urlsplit(settings.mongo_uri)
    assert mongo.hostname in COMPOSE["services"] and mongo.port == 27017
    collector = urlsplit(settings.otel_exporter_otlp_endpoint)
    assert collector.hostname in COMPOSE["services"]
    assert COLLECTOR["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(f":{collector.port}")


def test_each_service_owns_a_database_of_its_own(monkeypatch) -> None:
    databases = {name: p.settings(monkeypatch).mongo_database for name, p in PROCESSES.items()}
    assert len(set(databases.values())) == len(databases), databases


def test_kafka_runs_in_kraft_mode_and_topics_are_created_by_the_system() -> None:
    kafka = COMPOSE["services"]["kafka"]["environment"]
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "ZOOKEEPER" not in " ".join(kafka).upper()
    assert str(kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]).lower() == "false"


def test_services_start_after_kafka_and_the_database_are_healthy() -> None:
    for name, p in PROCESSES.items():
        depends = p.service["depends_on"]
        for dependency in ("kafka", "mongo"):
            assert depends[dependency]["condition"] == "service_healthy", name
            assert "healthcheck" in COMPOSE["services"][dependency]


def test_image_is_slim_non_root_and_runs_its_own_module(process: ComposeProcess) -> None:
    dockerfile = process.dockerfile
    final = dockerfile.final_stage
    assert re.match(r"FROM python:3\.\d+-slim\b", final[0]), final[0]
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), f"{dockerfile.path}: runs as {users or 'root'}"
    member = dockerfile.path.parent
    assert (member / "src" / process.spec.module / "__main__.py").exists()
    assert f"--package {_project_name(member)}" in dockerfile.text
    assert f"COPY {member.name} {member.name}" in dockerfile.text


def test_image_build_sees_every_workspace_member(process: ComposeProcess) -> None:
    """`uv sync --frozen` checks the lock against the whole workspace, so each member's pyproject is copied."""
    members = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]["members"]
    text = process.dockerfile.text
    assert "COPY pyproject.toml uv.lock ./" in text
    for member in members:
        assert f"COPY {member} {member}" in text or f"COPY {member}/pyproject.toml {member}/pyproject.toml" in text


def test_readme_says_how_to_run_it_with_docker() -> None:
    assert "docker compose up" in (ROOT / "README.md").read_text()


def _project_name(member: Path) -> str:
    match = re.search(r'^name = "([^"]+)"', (member / "pyproject.toml").read_text(), flags=re.M)
    assert match, member
    return match.group(1)


def test_traces_go_to_jaeger_and_jaeger_shows_them_on_16686() -> None:
    pipeline = COLLECTOR["service"]["pipelines"]["traces"]
    assert "otlp" in pipeline["receivers"]
    (exporter,) = [e for e in pipeline["exporters"] if e.startswith("otlp")]
    jaeger_host = urlsplit("//" + COLLECTOR["exporters"][exporter]["endpoint"]).hostname
    assert jaeger_host in COMPOSE["services"]
    assert "16686:16686" in COMPOSE["services"][jaeger_host]["ports"]


def test_settings_classes_cover_every_process() -> None:
    assert set(SETTINGS) == {spec.module for spec in ALL}
    for cls in SETTINGS.values():
        assert cls is GatewaySettings or issubclass(cls, ServiceSettings)
