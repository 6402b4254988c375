"""The system under test: every process started on free ports with its own topics and databases.

Nothing here touches the default ports of `make run` or another run's topics and databases: each
bench run has its own id, topic prefix `b<id>.` and databases `bench_<id>_<service>`, dropped at
the end. The demo account is seeded with scripts/seed.py, the same seed `make run` uses.

By default the run also has its own Kafka and FerretDB (`PrivateInfra`: scripts/infra on free
ports with a state directory of its own, stopped and deleted at the end). Other people's tests use
the shared servers at the same time; with servers of its own, the CPU a tool call costs in Kafka
and FerretDB is ours alone, and the bench's load does not slow their tests down.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

from pymongo import MongoClient

from switchboard.testing.infra import REPO_ROOT, start_infra
from switchboard.testing.system import (
    ALL,
    DATABASE_ENV,
    GATEWAY,
    ProcessSpec,
    Running,
    System,
    free_port,
    isolated_databases,
)

sys.path.insert(0, str(REPO_ROOT / "scripts"))

import seed  # noqa: E402  (scripts/seed.py)


UNLIMITED = 1_000_000
"""A per-key rate limit no run reaches: throughput runs measure the system, not the limiter."""

BASELINE = ProcessSpec("baseline", "bench.baseline", "SWITCHBOARD_GATEWAY_PORT", "SWITCHBOARD_GATEWAY_HOST", 0)
READY_TIMEOUT = 180
"""Seconds for every process to answer /readyz: starting five processes takes long on a busy machine."""
INFRA_PIDS = {"kafka": "kafka.pid", "ferretdb": "ferretdb.pid"}


def shared_state_dir() -> Path:
    cache = Path(os.environ.get("SWITCHBOARD_CACHE", Path.home() / ".cache" / "switchboard"))
    return Path(os.environ.get("SWITCHBOARD_STATE", cache / "state"))


@dataclass(frozen=True)
class Servers:
    """Kafka and FerretDB: where they listen and the state directory holding their pid files."""

    kafka_bootstrap: str
    mongo_uri: str
    state: Path
    private: bool

    @classmethod
    def shared(cls) -> Servers:
        infra, _ = start_infra()
        return cls(infra.kafka_bootstrap, infra.mongo_uri, shared_state_dir(), private=False)

    @classmethod
    def start_private(cls) -> Servers:
        state = Path(tempfile.mkdtemp(prefix="switchboard-bench-"))
        kafka, controller, mongo = free_port(), free_port(), free_port()
        env = {
            **os.environ,
            "SWITCHBOARD_STATE": str(state),
            "SWITCHBOARD_KAFKA_PORT": str(kafka),
            "SWITCHBOARD_KAFKA_CONTROLLER_PORT": str(controller),
            "SWITCHBOARD_MONGO_PORT": str(mongo),
        }
        subprocess.run([str(REPO_ROOT / "scripts" / "infra"), "up"], env=env, check=True)
        return cls(f"127.0.0.1:{kafka}", f"mongodb://127.0.0.1:{mongo}", state, private=True)

    def pids(self) -> dict[str, int]:
        pids = {}
        for name, file in INFRA_PIDS.items():
            try:
                pids[name] = int((self.state / file).read_text().strip())
            except (OSError, ValueError):
                continue
        return pids

    def stop(self) -> None:
        """Stop and delete private servers (by the pids their start wrote); shared ones are left alone."""
        if not self.private:
            return
        for pid in self.pids().values():
            _terminate(pid)
        if os.environ.get("SWITCHBOARD_BENCH_KEEP_STATE"):
            print(f"bench: servers' state and every process's log kept in {self.state}", flush=True)
            return
        shutil.rmtree(self.state, ignore_errors=True)


def _terminate(pid: int, grace: float = 15) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def rate_limit_env(per_second: float, burst: int) -> dict[str, str]:
    return {
        "SWITCHBOARD_GATEWAY_RATE_LIMIT_PER_SECOND": str(per_second),
        "SWITCHBOARD_GATEWAY_RATE_LIMIT_BURST": str(burst),
    }


def bench_env(run_id: str, mongo_uri: str, kafka_bootstrap: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SWITCHBOARD_OTEL_FILE", "OTEL_EXPORTER_OTLP_ENDPOINT")}
    env.update(
        {
            "SWITCHBOARD_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "SWITCHBOARD_MONGO_URI": mongo_uri,
            "SWITCHBOARD_TOPIC_PREFIX": f"b{run_id}.",
            "SWITCHBOARD_LOG_LEVEL": "WARNING",
            "SWITCHBOARD_ADMIN_TOKEN": f"bench-admin-{run_id}",
            "SWITCHBOARD_GATEWAY_KEY_PEPPER": f"bench-pepper-{run_id}",
            "SWITCHBOARD_CALL_CONTROL_WEBHOOK_SECRET": f"bench-webhook-{run_id}",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
            **rate_limit_env(UNLIMITED, UNLIMITED),
            # One tenant drives the whole bench: its key's and account's share is the whole gateway.
            "SWITCHBOARD_GATEWAY_MAX_IN_FLIGHT_PER_KEY": str(UNLIMITED),
            "SWITCHBOARD_GATEWAY_MAX_IN_FLIGHT_PER_ACCOUNT": str(UNLIMITED),
        }
    )
    env.update(isolated_databases(f"bench_{run_id}"))
    return env


@dataclass
class BenchSystem:
    run_id: str
    env: dict[str, str]
    system: System
    servers: Servers
    demo: seed.DemoSystem | None = None
    demo_api: seed.DemoApi | None = None
    baseline: Running | None = None
    extra: list[Running] = field(default_factory=list)

    @classmethod
    async def start(cls, *, private_servers: bool = True, extra_env: Mapping[str, str] | None = None) -> BenchSystem:
        servers = Servers.start_private() if private_servers else Servers.shared()
        run_id = uuid4().hex[:10]
        env = {**bench_env(run_id, servers.mongo_uri, servers.kafka_bootstrap), **(extra_env or {})}
        bench = cls(run_id, env, System(env, servers.state / "logs" / f"bench-{run_id}"), servers)
        try:
            for spec in ALL:
                bench.system.start(spec)
            await bench.system.wait_ready(timeout=READY_TIMEOUT)
            bench.demo_api = seed.DemoApi.start()
            bench.demo = await seed.seed_system(env, bench.urls, demo_api_url=bench.demo_api.url, key_label="bench")
        except BaseException:
            bench.stop()
            raise
        return bench

    @property
    def urls(self) -> dict[str, str]:
        return {r.spec.name: r.base_url for r in self.system.running if r.replica == 0}

    @property
    def gateway_url(self) -> str:
        return self.system.get(GATEWAY.name).base_url

    def database(self, service: str) -> str:
        return self.env[DATABASE_ENV[service]]

    def pids(self, *, baseline: bool = False) -> dict[str, int]:
        """The processes whose CPU a tool call costs: ours with Kafka and FerretDB, or the baseline with FerretDB."""
        servers = self.servers.pids()
        if baseline:
            assert self.baseline is not None
            return {"baseline": self.baseline.process.pid, "ferretdb": servers["ferretdb"]}
        ours = {r.label: r.process.pid for r in self.system.running if r.spec is not BASELINE and r.process.poll() is None}
        return {**ours, **servers}

    async def restart_gateway(self, extra_env: Mapping[str, str], *, spec: ProcessSpec = GATEWAY) -> None:
        """Replace the gateway process, e.g. with other settings or under a profiler."""
        self.system.stop(self.system.get(GATEWAY.name))
        self.system.running = [r for r in self.system.running if r.spec.name != GATEWAY.name]
        self.system.start(spec, extra_env=extra_env)
        await self.system.wait_ready(timeout=READY_TIMEOUT)

    async def start_baseline(self) -> Running:
        self.baseline = self.system.start(BASELINE)
        await self.system.wait_ready(timeout=READY_TIMEOUT)
        return self.baseline

    def stop_baseline(self) -> None:
        if self.baseline is not None:
            self.system.stop(self.baseline)
            self.system.running.remove(self.baseline)
            self.baseline = None

    def stop(self) -> None:
        self.system.stop_all()
        if self.demo_api is not None:
            self.demo_api.stop()
        if self.servers.private:
            self.servers.stop()
            return
        with MongoClient(self.env["SWITCHBOARD_MONGO_URI"]) as client:
            for variable in DATABASE_ENV.values():
                client.drop_database(self.env[variable])
