"""docker-compose.yml runs the same system as the native run (`make run`), checked without Docker.

Every process of `switchboard.testing.system.ALL` is a compose service built from the one root
Dockerfile, its build argument MEMBER picking the workspace member; its settings class validates
with the compose environment; ports, healthchecks and the shared connection settings agree; images
run as a non-root user; traces reach Jaeger through the collector.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydantic import ValidationError
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


DOCKERFILE_PATH = ROOT / "Dockerfile"


@dataclass(frozen=True)
class Member:
    """One row of the Dockerfile's table: what the build argument MEMBER turns into."""

    package: str
    module: str
    port: int


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

    def table_script(self) -> str:
        """The RUN step that turns MEMBER into its package, module and port, as the shell runs it."""
        (script,) = [run for run in self.instructions("RUN") if 'case "$MEMBER"' in run]
        return script

    def resolve(self, member: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
        """Runs the table step with MEMBER set, writing where /app/process would be."""
        out = tmp_path / "process"
        script = self.table_script().replace("/app/process", str(out))
        return subprocess.run(["sh", "-c", script], env={"MEMBER": member, "PATH": os.environ["PATH"]}, capture_output=True, text=True)

    def table(self) -> dict[str, Member]:
        """MEMBER -> its package, module and port, as the table step reads."""
        rows = re.findall(r'([\w-]+)\)\s+echo "([\w-]+) (\w+) (\d+)"', self.table_script())
        return {member: Member(package, module, int(port)) for member, package, module, port in rows}


DOCKERFILE = Dockerfile(DOCKERFILE_PATH)


class ComposeProcess:
    """One Switchboard process as compose runs it."""

    def __init__(self, spec: ProcessSpec) -> None:
        table = DOCKERFILE.table()
        matches = [
            (name, service)
            for name, service in COMPOSE["services"].items()
            if "build" in service and table.get(_member(service), Member("", "", 0)).module == spec.module
        ]
        assert len(matches) == 1, f"expected one compose service running {spec.module}, found {[m[0] for m in matches]}"
        self.spec = spec
        self.name, self.service = matches[0]
        self.member = _member(self.service)
        self.image = table[self.member]
        self.env = {key: interpolate(value) for key, value in self.service.get("environment", {}).items()}

    def settings(self, monkeypatch: pytest.MonkeyPatch, *, local: bool = True) -> BaseSettings:
        """The process's settings class, reading exactly the compose environment; `local` as with
        `SWITCHBOARD_LOCAL_MODE=true docker compose up`, which accepts the placeholder secrets."""
        for key in list(os.environ):
            if key.startswith(("SWITCHBOARD_", "OTEL_")):
                monkeypatch.delenv(key)
        for key, value in self.env.items():
            monkeypatch.setenv(key, value)
        if local:
            monkeypatch.setenv("SWITCHBOARD_LOCAL_MODE", "true")
        return SETTINGS[self.spec.module]()

    @property
    def port(self) -> int:
        return int(self.env[self.spec.port_env])

    def healthcheck_ports(self) -> list[int]:
        (check,) = DOCKERFILE.instructions("HEALTHCHECK")
        assert "/healthz" in check and "/app/port" in check, f"the image's healthcheck does not ask the member's port: {check!r}"
        ports = [self.image.port]
        if "healthcheck" in self.service:
            test = " ".join(map(str, self.service["healthcheck"]["test"]))
            urls = re.findall(r"https?://[\w.\[\]:]+/(?:healthz|readyz)", test)
            assert urls, f"{self.name}: healthcheck without a /healthz or /readyz URL: {test!r}"
            ports += [urlsplit(url).port for url in urls]
        return ports


def _member(service: dict[str, Any]) -> str:
    build = service["build"]
    assert (ROOT / build.get("context", ".") / build["dockerfile"]).resolve() == DOCKERFILE_PATH, build
    return build.get("args", {}).get("MEMBER", "")


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


def test_the_placeholder_secrets_stop_every_process_outside_local_mode(process: ComposeProcess, monkeypatch) -> None:
    assert process.env["SWITCHBOARD_LOCAL_MODE"] == "false"
    with pytest.raises(ValidationError, match="placeholder change-me"):
        process.settings(monkeypatch, local=False)


def test_only_the_gateway_is_published_beyond_this_host(process: ComposeProcess) -> None:
    for published in process.service.get("ports", []):
        if process.name == "gateway":
            assert str(published).count(":") == 1, published
        else:
            assert str(published).startswith("127.0.0.1:"), f"{process.name}'s admin API is published as {published}"


def test_listens_on_all_interfaces_at_the_port_it_publishes(process: ComposeProcess, monkeypatch) -> None:
    settings = process.settings(monkeypatch)
    host = settings.host if isinstance(settings, GatewaySettings) else settings.http_host
    port = settings.port if isinstance(settings, GatewaySettings) else settings.http_port
    assert host == "0.0.0.0", f"{process.name} listens on {host}: unreachable from other containers"
    assert port == process.port == process.spec.default_port
    published = [str(p).rsplit(":", 1)[-1] for p in process.service.get("ports", [])]
    assert published == [str(port)], f"{process.name} publishes {published}, listens on {port}"
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
    final = DOCKERFILE.final_stage
    assert re.match(r"FROM python:3\.\d+-slim\b", final[0]), final[0]
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), f"{DOCKERFILE.path}: runs as {users or 'root'}"
    member = ROOT / process.member
    assert (member / "src" / process.spec.module / "__main__.py").exists()
    assert process.image == Member(_project_name(member), process.spec.module, process.spec.default_port)
    (cmd,) = DOCKERFILE.instructions("CMD")
    assert "exec python -m" in cmd and "/app/module" in cmd, f"the image should run `python -m <module>`: {cmd}"
    assert 'uv sync --frozen --no-dev --no-editable --package "$package"' in DOCKERFILE.text
    assert "COPY ${MEMBER} ${MEMBER}" in DOCKERFILE.text


def test_one_dockerfile_serves_every_member() -> None:
    members = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]["members"]
    processes = [m for m in members if m != "shared"]
    assert sorted(DOCKERFILE.table()) == sorted(processes)
    assert {row.module for row in DOCKERFILE.table().values()} == {spec.module for spec in ALL}
    copies = [m for m in members if (ROOT / m / "Dockerfile").exists()]
    assert not copies, f"a Dockerfile per member again: {copies}"


@pytest.mark.parametrize("member", ["gateway", "leads-svc"])
def test_the_table_step_names_the_member_package_module_and_port(member: str, tmp_path: Path) -> None:
    done = DOCKERFILE.resolve(member, tmp_path)
    assert done.returncode == 0, done.stderr
    package, module, port = (tmp_path / "process").read_text().split()
    assert Member(package, module, int(port)) == DOCKERFILE.table()[member]


@pytest.mark.parametrize("member", ["", "shared", "nope-svc", "gateway; rm -rf /"])
def test_a_build_without_a_known_member_stops_with_a_clear_error(member: str, tmp_path: Path) -> None:
    done = DOCKERFILE.resolve(member, tmp_path)
    assert done.returncode != 0
    assert "MEMBER must be one of gateway, persona-svc, call-control-svc, contacts-svc, leads-svc" in done.stderr


def test_image_build_sees_every_workspace_member() -> None:
    """`uv sync --frozen` checks the lock against the whole workspace, so each member's pyproject is copied."""
    members = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]["members"]
    text = DOCKERFILE.text
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
