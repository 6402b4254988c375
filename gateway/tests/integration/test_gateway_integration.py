"""The gateway on the real Kafka and database: two instances under uvicorn, a stub responder for the
four services' command topics, and the official MCP client over real HTTP in both protocol eras."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import types as pytypes
from datetime import UTC, datetime
from uuid import uuid4

import httpx
import pytest
import uvicorn
from mcp.shared.exceptions import MCPError

from gateway.app import create_app
from gateway.settings import GatewaySettings
from switchboard.contracts import CommandType, Topic
from switchboard.contracts.persona import PersonaUpdated
from switchboard.messaging import kafka
from switchboard.messaging.consumer import CommandConsumer
from switchboard.messaging.events import KafkaEventPublisher
from switchboard.messaging.idempotency import INDEXES as PROCESSED_INDEXES
from switchboard.messaging.idempotency import MongoProcessedCommands
from switchboard.mongo import connect, ensure_indexes
from switchboard.settings import SwitchboardSettings

pytestmark = pytest.mark.integration

PEPPER = "integration-test-pepper-0123456789"
ERAS = ["legacy", "2026-07-28"]

async def keys_cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.keys",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


class Gateway:
    """One gateway instance under uvicorn on a port of its own."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(self.app, lifespan="on", log_level="warning"))
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ucp/v2/mcp"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the gateway stopped during start-up")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task:
            await self._task
        self._socket.close()


@pytest.fixture(scope="module")
async def system(infra, helpers):
    prefix = f"t{uuid4().hex[:10]}"
    base = SwitchboardSettings(
        kafka_bootstrap=infra.kafka_bootstrap, mongo_uri=infra.mongo_uri, topic_prefix=f"{prefix}."
    )
    client = connect(infra.mongo_uri, app_name="gateway-tests")
    responder_db = client[f"{prefix}_responder"]
    keys_db = f"{prefix}_gateway"
    await ensure_indexes(responder_db, PROCESSED_INDEXES)

    responder = helpers.Responder()
    consumers = [
        CommandConsumer(base, topic, processor)
        for topic, processor in responder.processors(lambda: MongoProcessedCommands(responder_db)).items()
    ]
    await asyncio.gather(*(c.start() for c in consumers))
    gateways: list[Gateway] = []
    try:
        async with asyncio.timeout(60):
            await asyncio.gather(*(c.ready.wait() for c in consumers))
        env = {
            **os.environ,
            "SWITCHBOARD_MONGO_URI": infra.mongo_uri,
            "SWITCHBOARD_GATEWAY_MONGO_DATABASE": keys_db,
            "SWITCHBOARD_GATEWAY_KEY_PEPPER": PEPPER,
        }
        code, key, err = await keys_cli(env, "create", "--account", helpers.ACCOUNT, "--label", "voice agent")
        assert code == 0, err
        code, revoked_key, err = await keys_cli(env, "create", "--account", helpers.ACCOUNT, "--label", "old")
        assert code == 0, err
        code, other_key, err = await keys_cli(env, "create", "--account", helpers.OTHER_ACCOUNT)
        assert code == 0, err

        for name in ("a", "b"):
            settings = GatewaySettings(
                **base.model_dump(),
                mongo_database=keys_db,
                key_pepper=PEPPER,
                instance_id=f"{prefix}-gw-{name}",
                tool_timeouts={"create_lead": 1.5},
                key_cache_seconds=0,
            )
            gateways.append(Gateway(settings))
        await asyncio.gather(*(g.start() for g in gateways))
        yield pytypes.SimpleNamespace(
            base=base,
            env=env,
            responder=responder,
            gateways=gateways,
            key=key.strip(),
            revoked_key=revoked_key.strip(),
            other_key=other_key.strip(),
        )
    finally:
        responder.release.set()
        await asyncio.gather(*(g.stop() for g in gateways))
        await asyncio.gather(*(c.stop() for c in consumers))
        await client.drop_database(responder_db.name)
        await client.drop_database(keys_db)
        await client.close()


def open_client(system, helpers, *, gateway: int = 0, mode: str = "legacy", key: str | None = None, **headers):
    return helpers.mcp_client(system.gateways[gateway].url, helpers.headers(key or system.key, **headers), mode=mode)


async def test_keys_cli_lists_and_revokes(system, helpers) -> None:
    code, listing, _ = await keys_cli(system.env, "list", "--account", helpers.ACCOUNT)
    assert code == 0
    lines = [line.split("\t") for line in listing.strip().splitlines()]
    assert [line[3] for line in lines] == ["voice agent", "old"]
    assert all(line[2] == "active" for line in lines)
    assert system.key not in listing
    prefix = "_".join(system.revoked_key.split("_")[:2])
    assert (await keys_cli(system.env, "revoke", "--account", helpers.OTHER_ACCOUNT, prefix))[0] == 1
    code, out, _ = await keys_cli(system.env, "revoke", "--account", helpers.ACCOUNT, prefix)
    assert code == 0 and prefix in out
    code, listing, _ = await keys_cli(system.env, "list", "--account", helpers.ACCOUNT)
    assert "revoked" in listing.splitlines()[1]


@pytest.mark.parametrize("mode", ERAS)
async def test_both_eras_list_per_persona_and_call_tools(system, helpers, mode) -> None:
    call_id = f"call-{uuid4().hex[:8]}"
    async with open_client(system, helpers, mode=mode, persona=helpers.SALES, call=call_id) as client:
        sales = [t.name for t in (await client.list_tools()).tools]
        office = await client.call_tool("is_office_open", {})
        transfer = await client.call_tool("transfer_to_anna", {})
    async with open_client(system, helpers, mode=mode, persona=helpers.SUPPORT, call=call_id) as client:
        support = [t.name for t in (await client.list_tools()).tools]
    assert sales == [*helpers.GLOBAL_NAMES, "check_order", "transfer_to_anna"]
    assert support == [*helpers.GLOBAL_NAMES, "support_queue"]
    assert office.content[0].text == "Office is currently open" and office.structured_content["status"] == "open"
    assert not transfer.is_error and transfer.structured_content["target"]["name"] == "Anna"
    [sent] = [c for c in system.responder.sent(CommandType.transfer_call) if c.call_id == call_id]
    assert sent.region == "DE" and sent.args.target.id == "u-anna"


async def test_auth_matrix(system, helpers) -> None:
    gateway = system.gateways[0]
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    accept = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    before = len(system.responder.commands)
    async with httpx.AsyncClient(base_url=gateway.base) as http:

        async def status(headers: dict[str, str]) -> httpx.Response:
            return await http.post("/ucp/v2/mcp", json=body, headers={**accept, **headers})

        await keys_cli(system.env, "revoke", "--account", helpers.ACCOUNT, "_".join(system.revoked_key.split("_")[:2]))
        no_key = await status(helpers.headers(None))
        bad_key = await status(helpers.headers("sbk_0123456789abcdef_" + "A" * 43))
        revoked = await status(helpers.headers(system.revoked_key))
        wrong_account = await status(helpers.headers(system.key, account=helpers.OTHER_ACCOUNT))
        other_accounts_key = await status(helpers.headers(system.other_key))
        assert (await status(helpers.headers(system.key))).status_code == 200
    assert no_key.status_code == bad_key.status_code == revoked.status_code == 401
    assert no_key.content == bad_key.content == revoked.content
    assert wrong_account.status_code == other_accounts_key.status_code == 403
    assert len(system.responder.commands) - before <= 1  # only the good request's tool list, if not cached

    async with open_client(
        system, helpers, key=system.other_key, account=helpers.OTHER_ACCOUNT, persona=helpers.SALES
    ) as client:
        with pytest.raises(MCPError, match="no persona 'per-sales' in this account"):
            await client.list_tools()
        with pytest.raises(MCPError, match="no persona"):
            await client.call_tool("hangup_call", {})
    assert not [c for c in system.responder.sent(CommandType.hangup_call) if c.account_id == helpers.OTHER_ACCOUNT]


@pytest.mark.parametrize("mode", ERAS)
async def test_bad_arguments_are_refused_at_the_gateway(system, helpers, mode) -> None:
    call_id = f"call-{uuid4().hex[:8]}"
    async with open_client(system, helpers, mode=mode, call=call_id) as client:
        result = await client.call_tool("create_lead", {"name": "Ann", "classification": "vip"})
    assert result.is_error
    assert "Missing required argument 'intent'." in result.content[0].text
    assert "Argument 'classification' must be one of" in result.content[0].text
    assert not [c for c in system.responder.commands if c.call_id == call_id and c.type is CommandType.create_lead]


async def test_a_service_that_never_answers_is_temporarily_unavailable(system, helpers) -> None:
    call_id = f"call-{uuid4().hex[:8]}"
    async with open_client(system, helpers, call=call_id) as client:
        slow = await client.call_tool("create_lead", {"name": helpers.HOLD, "intent": "x"})
        other = await client.call_tool("check_user_availability", {"user_id": "u-1"})
    assert slow.is_error and "temporarily unavailable" in slow.content[0].text
    assert not other.is_error
    gateway = system.gateways[0]
    assert gateway.app.state.runtime.requester.pending == 0


async def test_two_instances_serve_interleaved_requests(system, helpers) -> None:
    async with (
        open_client(system, helpers, gateway=0, call="call-left") as left,
        open_client(system, helpers, gateway=1, mode="2026-07-28", call="call-right") as right,
    ):

        async def ask(i: int) -> tuple[str, str]:
            client = left if i % 2 else right
            result = await client.call_tool("check_user_availability", {"user_id": f"u-{i}"})
            return result.structured_content["user_id"], result.content[0].text

        answers = await asyncio.gather(*(ask(i) for i in range(20)))
    assert [a[0] for a in answers] == [f"u-{i}" for i in range(20)]
    assert all(text.endswith("is available to take a call.") for _, text in answers)
    reply_topics = {
        c.reply_to for c in system.responder.sent(CommandType.check_user_availability) if c.call_id.startswith("call-")
    }
    assert {g.app.state.runtime.requester.reply_topic for g in system.gateways} <= reply_topics


async def test_a_persona_update_invalidates_every_instances_cache(system, helpers) -> None:
    persona_lists = lambda: len(  # noqa: E731
        [c for c in system.responder.sent(CommandType.list_tools) if c.persona_id == helpers.SUPPORT]
    )
    async with open_client(system, helpers, persona=helpers.SUPPORT) as client:
        await client.list_tools()
        await client.list_tools()
        fetched = persona_lists()
        producer = kafka.producer(system.base, client_id="persona-events-test")
        await producer.start()
        try:
            await KafkaEventPublisher(system.base, producer).publish(
                Topic.persona_events,
                PersonaUpdated(account_id=helpers.ACCOUNT, persona_id=helpers.SUPPORT, updated_at=datetime.now(UTC)),
                key=helpers.ACCOUNT,
            )
        finally:
            await producer.stop()
        for _ in range(100):
            await client.list_tools()
            if persona_lists() > fetched:
                break
            await asyncio.sleep(0.05)
    assert persona_lists() == fetched + 1


async def test_one_tool_call_is_one_trace_rooted_at_the_http_request(system, helpers, spans) -> None:
    call_id = f"call-{uuid4().hex[:8]}"
    async with open_client(system, helpers, call=call_id, caller="+4930555777") as client:
        await client.list_tools()
        spans.clear()
        await client.call_tool("check_user_availability", {"user_id": "u-trace"})
    root = next(
        s
        for s in spans.get_finished_spans()
        if s.name == "POST /ucp/v2/mcp" and s.attributes.get("switchboard.tool.name") == "check_user_availability"
    )
    assert root.parent is None
    assert root.attributes["switchboard.call_id"] == call_id and root.attributes["switchboard.outcome"] == "ok"
    trace_id = root.context.trace_id
    for _ in range(100):
        in_trace = [s for s in spans.get_finished_spans() if s.context.trace_id == trace_id]
        if any(s.name.endswith("persona.commands process") for s in in_trace):
            break
        await asyncio.sleep(0.02)
    names = {s.name for s in in_trace}
    assert "tool check_user_availability" in names
    assert any(n.endswith("persona.commands publish") for n in names)
    assert any(n.endswith("persona.commands process") for n in names)
    telemetry = json.dumps([dict(s.attributes or {}) for s in in_trace])
    assert "+4930555777" not in telemetry and "4930555777" not in telemetry
    assert system.key not in telemetry and system.key.split("_")[2] not in telemetry


async def test_health_and_readiness(system) -> None:
    async with httpx.AsyncClient(base_url=system.gateways[1].base) as http:
        assert (await http.get("/healthz")).status_code == 200
        ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": True, "requester": True, "events": True, "mcp": True}
