"""scripts/infra's Jaeger and Helm steps, as far as they can be checked without starting anything."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "scripts" / "infra"


@pytest.mark.parametrize("command", ["up", "fresh"])
def test_an_unknown_jaeger_mode_is_refused_before_anything_starts(command: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "kafka").mkdir(parents=True)
    env = {**os.environ, "SWITCHBOARD_JAEGER": "sometimes", "SWITCHBOARD_STATE": str(state)}
    done = subprocess.run([str(INFRA), command], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "SWITCHBOARD_JAEGER" in done.stderr and "auto, wait or off" in done.stderr
    assert [p.name for p in state.iterdir()] == ["kafka"], "something was started, written or deleted before the refusal"


def test_versions_come_from_the_pinned_modules() -> None:
    jaeger = (ROOT / "infra" / "jaeger" / "go.mod").read_text()
    helm = (ROOT / "infra" / "helm" / "go.mod").read_text()
    assert "tool github.com/jaegertracing/jaeger/cmd/jaeger" in jaeger
    assert "github.com/jaegertracing/jaeger v1.75.0" in jaeger
    assert "tool helm.sh/helm/v4/cmd/helm" in helm
    assert "helm.sh/helm/v4 v4.3.2" in helm


def test_env_names_no_trace_backend_while_jaeger_is_not_running(tmp_path: Path) -> None:
    env = {**os.environ, "SWITCHBOARD_STATE": str(tmp_path / "state")}
    done = subprocess.run([str(INFRA), "env"], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert "SWITCHBOARD_KAFKA_BOOTSTRAP=" in done.stdout
    assert "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" not in done.stdout and "SWITCHBOARD_JAEGER_URL" not in done.stdout


def test_the_jaeger_config_has_every_port_filled_in_by_the_script() -> None:
    config = (ROOT / "infra" / "jaeger" / "config.yaml.in").read_text()
    script = INFRA.read_text()
    for placeholder in ("@OTLP_HTTP_PORT@", "@QUERY_PORT@", "@QUERY_GRPC_PORT@"):
        assert placeholder in config and f"s|{placeholder}|" in script
    assert "127.0.0.1:" in config and "0.0.0.0" not in config
