"""The system under fault: every service and the gateway as real processes, two replicas of the
services with side effects (leads, call-control), seeded through the admin APIs with scripts/seed.py.

Each system has its own topic prefix, database names, free ports and secrets, and a consumer
session timeout of a few seconds (`SESSION_TIMEOUT_MS`) so that a paused replica loses its
partitions. The servers it runs on are either the shared ones or a private pair started with
scripts/infra (`PrivateInfra`), which the broker and database restarts need: the shared servers
are never stopped.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

from switchboard.testing.system import (
    CALL_CONTROL,
    CONTACTS,
    DATABASE_ENV,
    GATEWAY,
    LEADS,
    PERSONA,
    Running,
    System,
    free_port,
    isolated_databases,
)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import seed  # noqa: E402  (scripts/seed.py)

SESSION_TIMEOUTS = (
    "SWITCHBOARD_PERSONA_SESSION_TIMEOUT_MS",
    "SWITCHBOARD_CONTACTS_SESSION_TIMEOUT_MS",
    "SWITCHBOARD_LEADS_SESSION_TIMEOUT_MS",
    "SWITCHBOARD_CALL_CONTROL_SESSION_TIMEOUT_MS",
)
TOOL_TIMEOUT = 4.0
"""The gateway's deadline of every tool call, in seconds."""

SESSION_TIMEOUT_MS = 6000
"""Longer than a tool call's deadline, so that the commands waiting on a dead or paused replica's
partitions fail (the fault shows in the ledger) instead of being served late but in time; short
enough that those partitions move to the other replica within seconds."""

GATEWAY_IN_FLIGHT = 64
"""The gateway's default `max_in_flight`: the load's one API key may use all of it."""

REPLICATED = (LEADS, CALL_CONTROL)


def system_env(kafka_bootstrap: str, mongo_uri: str) -> dict[str, str]:
    isolation = f"t{uuid4().hex[:10]}"
    env = {
        **os.environ,
        "SWITCHBOARD_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "SWITCHBOARD_MONGO_URI": mongo_uri,
        "SWITCHBOARD_TOPIC_PREFIX": f"{isolation}.",
        "SWITCHBOARD_ADMIN_TOKEN": secrets.token_urlsafe(24),
        "SWITCHBOARD_GATEWAY_KEY_PEPPER": secrets.token_urlsafe(24),
        "SWITCHBOARD_CALL_CONTROL_WEBHOOK_SECRET": secrets.token_urlsafe(24),
        "SWITCHBOARD_GATEWAY_TOOL_TIMEOUT": str(TOOL_TIMEOUT),
        "SWITCHBOARD_GATEWAY_RATE_LIMIT_PER_SECOND": "10000",
        "SWITCHBOARD_GATEWAY_RATE_LIMIT_BURST": "10000",
        # One tenant under test: its share of the gateway is the whole gateway, as in the bench.
        "SWITCHBOARD_GATEWAY_MAX_IN_FLIGHT_PER_KEY": str(GATEWAY_IN_FLIGHT),
        "SWITCHBOARD_GATEWAY_MAX_IN_FLIGHT_PER_ACCOUNT": str(GATEWAY_IN_FLIGHT),
        "SWITCHBOARD_LOG_LEVEL": "INFO",
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    env.update(isolated_databases(isolation))
    env.update({variable: str(SESSION_TIMEOUT_MS) for variable in SESSION_TIMEOUTS})
    return env


@dataclass
class FaultSystem:
    """A running, seeded system and the handles fault tests need."""

    system: System
    env: Mapping[str, str]
    demo: Any
    mongo: Any

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.env['SWITCHBOARD_ADMIN_TOKEN']}"}

    @property
    def pbx_url(self) -> str:
        return self.system.get(CALL_CONTROL.name).base_url + "/pbx/v1/calls"

    def replica(self, name: str, replica: int) -> Running:
        return self.system.get(name, replica)

    def db(self, process: str) -> Any:
        return self.mongo[self.env[DATABASE_ENV[process]]]

    def kill(self, running: Running) -> None:
        self.system.signal(running, signal.SIGKILL)
        running.process.wait()

    async def restart(self, running: Running, extra_env: Mapping[str, str] | None = None) -> Running:
        """Start a replica again in place of a killed one (same port, same replica number)."""
        self.system.running.remove(running)
        again = self.system.start(running.spec, port=running.port, replica=running.replica, extra_env=extra_env)
        await self.system.wait_ready(timeout=90)
        return again

    async def drop_databases(self) -> None:
        for variable in DATABASE_ENV.values():
            await self.mongo.drop_database(self.env[variable])


async def start_system(
    env: Mapping[str, str], log_dir: Path, mongo: Any, *, service_env: Mapping[str, str] | None = None
) -> FaultSystem:
    """Start and seed the system; `service_env` is given to the replicated services only (e.g. a proxied database)."""
    system = System(env, log_dir)
    for spec in (PERSONA, CONTACTS, GATEWAY):
        system.start(spec)
    try:
        # Second replicas join once the first are up, as a scaled-out service does.
        for replica in (0, 1):
            for spec in REPLICATED:
                system.start(spec, replica=replica, extra_env=service_env)
            await system.wait_ready(timeout=120)
        urls = {r.spec.name: r.base_url for r in system.running if r.replica == 0}
        demo_api = seed.DemoApi.start()
        try:
            demo = await seed.seed_system(env, urls, demo_api_url=demo_api.url, account_id="faults")
        finally:
            demo_api.stop()
    except BaseException:
        system.stop_all()
        raise
    return FaultSystem(system, env, demo, mongo)


@dataclass
class PrivateInfra:
    """A Kafka and a FerretDB of this test run alone (own ports, own state dir), started by scripts/infra."""

    state: Path
    kafka_port: int
    controller_port: int
    mongo_port: int

    @classmethod
    def create(cls, state: Path) -> PrivateInfra:
        return cls(state, free_port(), free_port(), free_port())

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "SWITCHBOARD_STATE": str(self.state),
            "SWITCHBOARD_KAFKA_PORT": str(self.kafka_port),
            "SWITCHBOARD_KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "SWITCHBOARD_MONGO_PORT": str(self.mongo_port),
        }

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def mongo_uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.mongo_port}"

    def up(self) -> None:
        """Start whatever is not running, on the data already there; returns once both answer."""
        done = subprocess.run([str(ROOT / "scripts" / "infra"), "up"], env=self.env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"scripts/infra up failed ({done.returncode}):\n{done.stderr[-3000:]}")

    def kill(self, server: str) -> None:
        """SIGKILL one server ("kafka" or "ferretdb"): no clean shutdown, as in a crash."""
        pid = int((self.state / f"{server}.pid").read_text())
        os.kill(pid, signal.SIGKILL)

    def down(self) -> None:
        subprocess.run([str(ROOT / "scripts" / "infra"), "down"], env=self.env, capture_output=True, check=False)
        shutil.rmtree(self.state, ignore_errors=True)
