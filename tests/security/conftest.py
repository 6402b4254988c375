"""The whole system as real processes for the security tests, seeded through the admin APIs with two
accounts: ours (whose API keys the tests hold) and a rival (whose data must stay out of reach).

Every run has its own topic prefix, database names, free ports and fresh secrets. Two gateway
processes serve the same system: the main one with a rate limit high enough for fuzzing, and a
strict one whose limit a test reaches in a few requests. Key and tool-list caches are off, so a
revoked key and a newly configured tool take effect at once. Every process appends its spans to one
JSON-lines file (`Secured.spans`), where the tests look for what must never be recorded.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
import types
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest

from gateway.auth import create_key
from gateway.repository import MongoApiKeys
from switchboard.mongo import connect
from switchboard.testing.system import ALL, DATABASE_ENV, GATEWAY, System, isolated_databases

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import seed  # noqa: E402  (scripts/seed.py)

MCP_PATH = "/ucp/v2/mcp"
MODERN = "2026-07-28"
SERVICES = ("persona", "contacts", "leads", "call-control")
JSON_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}

RIVAL_PERSONA = "rival-desk"
RIVAL_USER = "rival-ceo"
RIVAL_TOOL = "rival_vault"

LEAK = re.compile(
    r"Traceback|File \"|\.py\b|site-packages|/work/|/usr/lib|/root/|\b[A-Z][A-Za-z]*(?:Error|Exception)\b"
    r"|\bpydantic\b|errors\.pydantic\.dev|\bpymongo\b|\baiokafka\b|\bstarlette\b|\buvicorn\b|\bhttpcore\b"
)
"""What no response may show: a stack trace, a source path, an exception class or a library's name."""


def leaks(response_text: str, request_text: str = "") -> list[str]:
    """What the response shows of the server's internals, leaving out what the request itself said."""
    echoed = set(LEAK.findall(request_text))
    return sorted(set(LEAK.findall(response_text)) - echoed)


def mcp_message(
    era: str, method: str, params: Mapping[str, Any] | None = None, request_id: int | str = 1
) -> tuple[dict[str, Any], dict[str, str]]:
    """A JSON-RPC request and its protocol headers: a stateless 2025-era request, or a 2026-07-28 one
    with `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` and the `_meta` envelope keys."""
    params = dict(params or {})
    headers: dict[str, str] = {}
    if era == MODERN:
        params["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
        }
        headers = {"MCP-Protocol-Version": MODERN, "Mcp-Method": method}
        if method == "tools/call":
            headers["Mcp-Name"] = str(params.get("name", ""))
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}, headers


def tool_call(
    era: str, name: str, arguments: Mapping[str, Any] | None = None, request_id: int | str = 1
) -> tuple[dict[str, Any], dict[str, str]]:
    return mcp_message(era, "tools/call", {"name": name, "arguments": dict(arguments or {})}, request_id)


@dataclass
class Secured:
    """The running system and what was seeded; `ours` and `rival` are the seed's account records."""

    system: System
    env: Mapping[str, str]
    urls: Mapping[str, str]
    strict_mcp_url: str
    ours: Any
    rival: Any
    mongo: Any
    spans: Path

    @property
    def mcp_url(self) -> str:
        return self.urls["gateway"] + MCP_PATH

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.env['SWITCHBOARD_ADMIN_TOKEN']}"}

    def persona_admin(self, account_id: str) -> str:
        return f"{self.urls['persona']}/admin/v1/accounts/{account_id}"

    def db(self, process: str) -> Any:
        return self.mongo[self.env[DATABASE_ENV[process]]]

    def headers(self, call_id: str, **context: str | None) -> dict[str, str]:
        """Our account's headers for one request during `call_id`; a value of None leaves that header out."""
        values = {
            "X-API-Key": self.ours.api_key,
            "account_id": self.ours.account_id,
            "persona_id": self.ours.persona_id,
            "call_id": call_id,
            "caller_id_number": self.ours.caller_number,
            **context,
        }
        return {**JSON_HEADERS, **{k: v for k, v in values.items() if v is not None}}

    async def new_key(self, label: str, account_id: str | None = None) -> str:
        pepper = self.env["SWITCHBOARD_GATEWAY_KEY_PEPPER"].encode()
        created = await create_key(self._keys, pepper, account_id or self.ours.account_id, label)
        return created.key

    async def revoke(self, key: str) -> None:
        assert await self._keys.revoke(self.ours.account_id, key.split("_")[1]) is not None

    @property
    def _keys(self) -> MongoApiKeys:
        return MongoApiKeys(self.db("gateway"))

    async def processed(self, call_id: str) -> dict[str, list[str]]:
        """The command types each service processed for this call id (its `processed_commands`)."""
        found = {}
        for process in SERVICES:
            docs = await self.db(process)["processed_commands"].find({"call_id": call_id}).to_list(None)
            found[process] = sorted(d["type"] for d in docs)
        return found

    async def stored(self) -> dict[str, int]:
        """How many documents every service collection holds, besides the processed commands."""
        counts = {}
        for process in SERVICES:
            db = self.db(process)
            for name in await db.list_collection_names():
                if name != "processed_commands":
                    counts[f"{process}.{name}"] = await db[name].count_documents({})
        return counts


def _environment(infra: Any) -> dict[str, str]:
    isolation = f"t{uuid4().hex[:10]}"
    env = {
        **os.environ,
        "SWITCHBOARD_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "SWITCHBOARD_MONGO_URI": infra.mongo_uri,
        "SWITCHBOARD_TOPIC_PREFIX": f"{isolation}.",
        "SWITCHBOARD_ADMIN_TOKEN": secrets.token_urlsafe(24),
        "SWITCHBOARD_GATEWAY_KEY_PEPPER": secrets.token_urlsafe(24),
        "SWITCHBOARD_CALL_CONTROL_WEBHOOK_SECRET": secrets.token_urlsafe(24),
        "SWITCHBOARD_GATEWAY_KEY_CACHE_SECONDS": "0",
        "SWITCHBOARD_GATEWAY_TOOLS_CACHE_SECONDS": "0",
        "SWITCHBOARD_GATEWAY_RATE_LIMIT_PER_SECOND": "10000",
        "SWITCHBOARD_GATEWAY_RATE_LIMIT_BURST": "10000",
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    env.update(isolated_databases(isolation))
    return env


async def _seed_rival_only(http: httpx.AsyncClient, secured: Secured, api_url: str) -> None:
    """A user and a custom tool that exist in the rival account only."""
    rival = secured.persona_admin(secured.rival.account_id)
    user = await http.put(f"{rival}/users/{RIVAL_USER}", json={"name": "Rival CEO", "extension": "999"})
    tool = await http.put(
        f"{rival}/personas/{RIVAL_PERSONA}/tools/{RIVAL_TOOL}",
        json={
            "kind": "api_request",
            "name": RIVAL_TOOL,
            "description": "The rival's own lookup.",
            "url": f"{api_url}/orders/1001",
        },
    )
    assert user.status_code == 201 and tool.status_code == 201, (user.text, tool.text)


@pytest.fixture(scope="session")
async def secured(infra, tmp_path_factory) -> AsyncIterator[Secured]:
    env = _environment(infra)
    spans = tmp_path_factory.mktemp("security-spans") / "spans.jsonl"
    env["SWITCHBOARD_OTEL_FILE"] = str(spans)
    system = System(env, tmp_path_factory.mktemp("security-logs"))
    mongo = connect(env["SWITCHBOARD_MONGO_URI"], app_name="security-tests")
    demo_api = seed.DemoApi.start()
    try:
        for spec in ALL:
            system.start(spec)
        strict = system.start(
            GATEWAY,
            replica=1,
            extra_env={"SWITCHBOARD_GATEWAY_RATE_LIMIT_PER_SECOND": "0.01", "SWITCHBOARD_GATEWAY_RATE_LIMIT_BURST": "3"},
        )
        await system.wait_ready(timeout=120)
        urls = {r.spec.name: r.base_url for r in system.running if r.replica == 0}
        ours = await seed.seed_system(env, urls, demo_api_url=demo_api.url, account_id="acme", key_label="ours")
        rival = await seed.seed_system(
            env, urls, demo_api_url=demo_api.url, account_id="rival", persona_id=RIVAL_PERSONA, key_label="rival"
        )
        secured = Secured(system, env, urls, strict.base_url + MCP_PATH, ours, rival, mongo, spans)
        async with httpx.AsyncClient(headers=secured.admin_headers, timeout=30) as http:
            await _seed_rival_only(http, secured, demo_api.url)
        yield secured
    finally:
        system.stop_all()
        demo_api.stop()
        for variable in DATABASE_ENV.values():
            await mongo.drop_database(env[variable])
        await mongo.close()


@pytest.fixture(scope="session")
def sec() -> types.SimpleNamespace:
    """This conftest's module-level helpers, for the test modules (which cannot import a conftest)."""
    return types.SimpleNamespace(
        MCP_PATH=MCP_PATH,
        MODERN=MODERN,
        JSON_HEADERS=JSON_HEADERS,
        RIVAL_PERSONA=RIVAL_PERSONA,
        RIVAL_USER=RIVAL_USER,
        RIVAL_TOOL=RIVAL_TOOL,
        leaks=leaks,
        mcp_message=mcp_message,
        tool_call=tool_call,
    )
