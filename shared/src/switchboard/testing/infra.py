"""Where the tests' Kafka and MongoDB come from: testcontainers when a Docker engine answers, else
the servers scripts/infra starts natively. `SWITCHBOARD_INFRA=native|containers` forces one."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[4]


@dataclass(frozen=True)
class Infra:
    mode: str
    kafka_bootstrap: str
    mongo_uri: str


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


def start_infra() -> tuple[Infra, list[object]]:
    """Start (or reuse) the servers; returns them and the containers to stop afterwards."""
    mode = os.environ.get("SWITCHBOARD_INFRA", "auto")
    if mode == "auto":
        mode = "containers" if _docker_available() else "native"
    if mode == "containers":
        from testcontainers.kafka import KafkaContainer
        from testcontainers.mongodb import MongoDbContainer

        kafka = KafkaContainer("apache/kafka:4.1.1").with_kraft()
        mongo = MongoDbContainer("mongo:8.0")
        kafka.start()
        mongo.start()
        return Infra(mode, kafka.get_bootstrap_server(), mongo.get_connection_url()), [kafka, mongo]
    if mode != "native":
        raise RuntimeError(f"SWITCHBOARD_INFRA must be native, containers or auto, not {mode!r}")
    subprocess.run([str(REPO_ROOT / "scripts" / "infra"), "up"], check=True)
    env = subprocess.run(
        [str(REPO_ROOT / "scripts" / "infra"), "env"], check=True, capture_output=True, text=True
    ).stdout
    values = dict(line.split("=", 1) for line in env.splitlines() if "=" in line)
    return Infra(mode, values["SWITCHBOARD_KAFKA_BOOTSTRAP"], values["SWITCHBOARD_MONGO_URI"]), []
