"""The whole system as real processes for end-to-end tests: four services and the gateway on the real
Kafka and database, each run with its own topic prefix and databases, seeded with the demo account.

`e2e` (session scope) is one such system shared by the tests, which act on calls of their own;
`start_system` starts another one (e.g. with other settings) for a test that needs it. Every
system stops its processes and drops its databases when done. Test modules mark themselves
`pytest.mark.e2e`.

MCP clients: `e2e.client(call_id)` is the official MCP client with the headers of that call, in
either protocol era (`demo_call.ERAS`: a 2025-era client that initializes first, and 2026-07-28
stateless requests). `seed` and `demo_call` (scripts/) are importable from test modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from mcp.client import Client

from switchboard.mongo import connect
from switchboard.testing.infra import REPO_ROOT, Infra
from switchboard.testing.system import ALL, DATABASE_ENV, System, isolated_databases

sys.path.insert(0, str(REPO_ROOT / "scripts"))

import demo_call  # noqa: E402  (scripts/demo_call.py)
import seed  # noqa: E402  (scripts/seed.py)

TEST_ADMIN_TOKEN = "e2e-admin-token-0123456789"
TEST_KEY_PEPPER = "e2e-key-pepper-0123456789"
TEST_WEBHOOK_SECRET = "e2e-webhook-secret-0123456789"


def isolated_env(infra: Infra, prefix: str) -> dict[str, str]:
    """The environment of one system: its own topic prefix and databases, and its own secrets."""
    env = {
        **os.environ,
        "SWITCHBOARD_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "SWITCHBOARD_MONGO_URI": infra.mongo_uri,
        "SWITCHBOARD_TOPIC_PREFIX": f"{prefix}.",
        "SWITCHBOARD_ADMIN_TOKEN": TEST_ADMIN_TOKEN,
        "SWITCHBOARD_GATEWAY_KEY_PEPPER": TEST_KEY_PEPPER,
        "SWITCHBOARD_CALL_CONTROL_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
        # Deadlines for a loaded shared machine: these tests are about answers, not speed.
        "SWITCHBOARD_GATEWAY_TOOL_TIMEOUT": "20",
        "SWITCHBOARD_GATEWAY_TOOLS_TIMEOUT": "20",
    }
    env.update(isolated_databases(prefix))
    env.pop("SWITCHBOARD_OTEL_FILE", None)
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    return env


async def drop_databases(infra: Infra, env: Mapping[str, str]) -> None:
    client = connect(infra.mongo_uri, app_name="e2e-tests")
    try:
        for name in DATABASE_ENV.values():
            await client.drop_database(env[name])
    finally:
        await client.close()


@dataclass
class E2E:
    """A running, seeded system and what tests do with it."""

    system: System
    env: dict[str, str]
    urls: dict[str, str]
    demo: seed.DemoSystem
    prefix: str

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.env['SWITCHBOARD_ADMIN_TOKEN']}"}

    def client(
        self,
        call_id: str,
        *,
        mode: str = "2026-07-28",
        caller: str | None = seed.CALLER_NUMBER,
        persona: str | None = None,
        api_key: str | None = None,
    ) -> contextlib.AbstractAsyncContextManager[Client]:
        """The official MCP client sending the headers of call `call_id` of the demo account."""
        headers = self.demo.headers(call_id, caller_id_number=caller)
        if persona is not None:
            headers["persona_id"] = persona
        if api_key is not None:
            headers["X-API-Key"] = api_key
        return demo_call.mcp_client(self.demo.mcp_url, headers, mode=mode)

    async def admin(self, method: str, service: str, path: str, body: Any = None) -> httpx.Response:
        """A request to a service's admin API (or the simulated PBX) with the admin token."""
        async with httpx.AsyncClient(base_url=self.urls[service], headers=self.admin_headers, timeout=30) as http:
            return await http.request(method, path, json=body)

    async def start_call(
        self, *, caller: str | None = seed.CALLER_NUMBER, persona: str | None = None, call_id: str | None = None
    ) -> str:
        """A caller rings the demo line on the simulated PBX; the call id."""
        call_id = call_id or f"call-{uuid4().hex[:12]}"
        body = {"account_id": self.demo.account_id, "call_id": call_id, "persona_id": persona or self.demo.persona_id}
        if caller is not None:
            body["caller_number"] = caller
        response = await self.admin("POST", "call-control", "/pbx/v1/calls", body)
        assert response.status_code == 201, response.text
        return call_id

    async def caller_hangs_up(self, call_id: str) -> None:
        path = f"/pbx/v1/calls/{call_id}/hangup?account_id={self.demo.account_id}"
        response = await self.admin("POST", "call-control", path)
        assert response.status_code == 200, response.text

    async def pbx_call(self, call_id: str) -> dict[str, Any]:
        """What the simulated PBX did with the call."""
        response = await self.admin("GET", "call-control", f"/pbx/v1/calls/{call_id}?account_id={self.demo.account_id}")
        assert response.status_code == 200, response.text
        return response.json()

    async def put_persona_resource(self, path: str, body: Any) -> dict[str, Any]:
        """PUT under the demo account in persona-svc's admin API, e.g. `/personas/p1`."""
        response = await self.admin("PUT", "persona", f"/admin/v1/accounts/{self.demo.account_id}{path}", body)
        assert response.status_code in (200, 201), response.text
        return response.json()


@contextlib.asynccontextmanager
async def start_e2e(
    infra: Infra, log_dir: Path, *, extra_env: Mapping[str, str] | None = None
) -> AsyncIterator[E2E]:
    """Start the four services and the gateway on free ports, wait until ready, seed the demo account."""
    prefix = f"t{uuid4().hex[:10]}"
    # The tests of a module share one API key and send tool calls as fast as the system answers;
    # the per-key rate limit is the security suite's to test (tests/security), not a pace to keep.
    unlimited = {"SWITCHBOARD_GATEWAY_RATE_LIMIT_PER_SECOND": "10000", "SWITCHBOARD_GATEWAY_RATE_LIMIT_BURST": "10000"}
    env = {**isolated_env(infra, prefix), **unlimited, **(extra_env or {})}
    system = System(env, log_dir)
    demo_api = seed.DemoApi.start()
    try:
        for spec in ALL:
            system.start(spec)
        await system.wait_ready(timeout=120)
        urls = {r.spec.name: r.base_url for r in system.running}
        demo = await seed.seed_system(env, urls, demo_api_url=demo_api.url, key_label="e2e")
        yield E2E(system=system, env=env, urls=urls, demo=demo, prefix=prefix)
    finally:
        await asyncio.to_thread(system.stop_all)
        demo_api.stop()
        await drop_databases(infra, env)


@pytest.fixture(scope="session")
async def e2e(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[E2E]:
    async with start_e2e(infra, tmp_path_factory.mktemp("e2e-logs")) as system:
        yield system


@pytest.fixture(scope="session")
def start_system(infra: Infra, tmp_path_factory: pytest.TempPathFactory):
    """`async with start_system(extra_env={...}) as other:` another seeded system, for one test."""

    def start(*, extra_env: Mapping[str, str] | None = None) -> contextlib.AbstractAsyncContextManager[E2E]:
        return start_e2e(infra, tmp_path_factory.mktemp("e2e-logs"), extra_env=extra_env)

    return start


@pytest.fixture
async def system_env(infra: Infra) -> AsyncIterator[dict[str, str]]:
    """The environment of one more system started by the test itself (own topic prefix, databases
    and secrets); its databases are dropped afterwards."""
    env = isolated_env(infra, f"t{uuid4().hex[:10]}")
    yield env
    await drop_databases(infra, env)


@pytest.fixture
def call_id() -> str:
    return f"call-{uuid4().hex[:12]}"
