"""tools/list and tools/call through the official MCP client, in both protocol eras, on the in-memory bus."""

from __future__ import annotations

import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from gateway.app import create_app
from gateway.repository import InMemoryApiKeys
from gateway.settings import GatewaySettings
from switchboard.contracts import CommandType
from switchboard.contracts.call_control import TargetKind, TransferTarget
from switchboard.messaging.memory import InMemoryBus

URL = "http://127.0.0.1:9443/ucp/v2/mcp"
ERAS = ["legacy", "2026-07-28"]


@pytest.fixture
def gateway_settings() -> GatewaySettings:
    return GatewaySettings(
        key_pepper="unit-test-pepper-0123456789", tool_timeout=2.0, tool_timeouts={"create_lead": 0.5}
    )


@pytest.fixture
def connect(gateway, helpers):
    def open_client(mode: str = "legacy", **headers):
        return helpers.mcp_client(URL, helpers.headers(gateway.key, **headers), mode=mode, transport=gateway.transport)

    return open_client


@pytest.mark.parametrize("mode", ERAS)
async def test_tools_list_is_the_global_tools_then_the_personas_own(connect, helpers, mode) -> None:
    async with connect(mode, persona=helpers.SALES) as client:
        sales = [t.name for t in (await client.list_tools()).tools]
    async with connect(mode, persona=helpers.SUPPORT) as client:
        support = [t.name for t in (await client.list_tools()).tools]
    assert sales == [*helpers.GLOBAL_NAMES, "check_order", "transfer_to_anna"]
    assert support == [*helpers.GLOBAL_NAMES, "support_queue"]


async def test_listed_tools_carry_descriptions_schemas_and_annotations(connect) -> None:
    async with connect() as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    for tool in tools.values():
        assert tool.description and tool.input_schema["type"] == "object" and tool.output_schema["type"] == "object"
    assert "target" not in tools["transfer_call"].input_schema["properties"]
    assert tools["transfer_call"].annotations.destructive_hint is True
    assert tools["hangup_call"].annotations.destructive_hint is True
    for name in ("is_office_open", "lookup_contact", "check_user_availability"):
        assert tools[name].annotations.read_only_hint is True
    order = tools["check_order"].input_schema
    assert order["properties"]["order_id"]["type"] == "string"
    assert order["properties"]["quantity"] == {"type": "number"}
    assert order["properties"]["priority"]["enum"] == ["low", "high"]
    assert order["required"] == ["order_id"]
    assert tools["transfer_to_anna"].input_schema == {"type": "object", "properties": {}}


@pytest.mark.parametrize("mode", ERAS)
async def test_is_office_open_answers_the_exact_sentence_and_structured_content(
    connect, gateway, responder, mode
) -> None:
    async with connect(mode) as client:
        result = await client.call_tool("is_office_open", {})
    assert not result.is_error
    assert result.content[0].text == "Office is currently open"
    assert result.structured_content["status"] == "open"
    assert result.structured_content["timezone"] == "Europe/Berlin"
    [command] = responder.sent(CommandType.is_office_open)
    assert command.region == "DE" and command.caller_id_number == "+4930555000" and command.call_id == "call-1"


async def test_every_global_tool_reaches_its_service_and_returns_text_and_structure(connect, responder) -> None:
    calls = {
        "transfer_call": {"destination_number": "+4930999888"},
        "lookup_contact": {"phone_number": "+14155550123"},
        "check_user_availability": {"user_id": "u-7"},
        "create_lead": {"name": "Ann Lee", "intent": "Wants a quote", "classification": "customer", "notes": None},
        "hangup_call": {},
    }
    async with connect() as client:
        results = {name: await client.call_tool(name, args) for name, args in calls.items()}
    for name, result in results.items():
        assert not result.is_error, (name, result.content)
        assert result.content[0].text and isinstance(result.structured_content, dict)
    assert results["lookup_contact"].content[0].text.startswith("Found 1 contact(s) for +14155550123: Ann Lee")
    assert results["check_user_availability"].content[0].text == "User u-7 is available to take a call."
    assert results["create_lead"].structured_content["case_id"] == "case-call-1"
    [transfer] = responder.sent(CommandType.transfer_call)
    assert transfer.args.target is None and transfer.args.destination_number == "+4930999888"
    [lead] = responder.sent(CommandType.create_lead)
    assert lead.args.classification == "customer" and lead.args.notes is None
    assert {c.region for c in responder.commands if c.type is not CommandType.list_tools} == {"DE"}


@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        ("create_lead", {"name": "Ann"}, "Missing required argument 'intent'."),
        (
            "create_lead",
            {"name": "Ann", "intent": "x", "classification": "vip"},
            "Argument 'classification' must be one of",
        ),
        ("create_lead", {"name": "", "intent": "x"}, "Argument 'name' must not be empty."),
        ("check_user_availability", {"user_id": 42}, "Argument 'user_id' must be of type string."),
        ("check_user_availability", {"user_id": "a b"}, "Argument 'user_id' has an invalid format."),
        ("transfer_call", {"destination_number": "+1", "target": {"kind": "user"}}, "Unknown argument 'target'"),
        ("check_order", {"order_id": "A1", "quantity": "three"}, "Argument 'quantity' must be of type number."),
        ("check_order", {"order_id": "A1", "priority": "urgent"}, "Argument 'priority' must be one of: low, high."),
    ],
)
async def test_bad_arguments_are_a_tool_error_naming_the_field_and_send_nothing(
    connect, responder, name, arguments, expected
) -> None:
    async with connect() as client:
        result = await client.call_tool(name, arguments)
    assert result.is_error
    assert expected in result.content[0].text
    assert [c.type for c in responder.commands] == [CommandType.list_tools]


@pytest.mark.parametrize("mode", ERAS)
async def test_unknown_tool_is_a_protocol_error(connect, mode) -> None:
    async with connect(mode) as client:
        with pytest.raises(MCPError, match="Unknown tool: summon_dragon"):
            await client.call_tool("summon_dragon", {})


async def test_a_tool_of_another_persona_is_unknown_to_this_one(connect) -> None:
    async with connect(persona="per-support") as client:
        with pytest.raises(MCPError, match="Unknown tool"):
            await client.call_tool("transfer_to_anna", {})


@pytest.mark.parametrize("mode", ERAS)
async def test_a_persona_outside_the_account_is_refused(connect, helpers, responder, mode) -> None:
    async with connect(mode, persona=helpers.OTHER_PERSONA) as client:
        with pytest.raises(MCPError, match="no persona 'per-other' in this account"):
            await client.list_tools()
        with pytest.raises(MCPError, match="no persona"):
            await client.call_tool("is_office_open", {})
    assert {c.type for c in responder.commands} == {CommandType.list_tools}


async def test_service_errors_become_tool_errors_with_the_services_sentence(connect) -> None:
    async with connect() as client:
        result = await client.call_tool("check_user_availability", {"user_id": "ghost"})
    assert result.is_error
    assert result.content[0].text == "There is no colleague with the id 'ghost' in this account."


async def test_no_reply_before_the_deadline_is_temporarily_unavailable(connect, helpers, responder) -> None:
    async with connect() as client:
        result = await client.call_tool("create_lead", {"name": helpers.HOLD, "intent": "x"})
    assert result.is_error
    assert "temporarily unavailable" in result.content[0].text
    [lead] = responder.sent(CommandType.create_lead)
    # The command's own deadline is the tool's, less the margin kept to answer the agent in time.
    assert 0.3 < (lead.deadline - lead.sent_at).total_seconds() <= 0.5


async def test_a_busy_requester_is_a_clear_busy_error(connect, gateway, monkeypatch) -> None:
    from switchboard.messaging import Busy

    async def busy(*args, **kwargs):
        raise Busy("too many")

    async with connect() as client:
        await client.list_tools()
        monkeypatch.setattr(gateway.bus, "request", busy)
        result = await client.call_tool("hangup_call", {})
    assert result.is_error and "too many requests" in result.content[0].text


async def test_custom_transfer_resolves_the_target_then_transfers_with_it(connect, responder) -> None:
    async with connect() as client:
        result = await client.call_tool("transfer_to_anna", {})
    assert not result.is_error
    assert result.content[0].text == "Transferring the caller to Anna."
    [resolve] = responder.sent(CommandType.resolve_transfer)
    [transfer] = responder.sent(CommandType.transfer_call)
    assert resolve.args.tool_name == "transfer_to_anna"
    assert transfer.args.target == TransferTarget(kind=TargetKind.user, id="u-anna", name="Anna")
    assert transfer.args.destination_number == "+4930123456"
    assert transfer.region == "DE" and transfer.call_id == resolve.call_id == "call-1"


async def test_api_request_tool_sends_its_variables(connect, responder) -> None:
    async with connect("2026-07-28") as client:
        result = await client.call_tool("check_order", {"order_id": "A-17", "quantity": 2, "priority": "high"})
    assert not result.is_error
    assert result.structured_content["status_code"] == 200
    [run] = responder.sent(CommandType.run_api_request)
    assert run.args.tool_name == "check_order"
    assert run.args.variables == {"order_id": "A-17", "quantity": 2, "priority": "high"}


async def test_tool_lists_are_cached_per_persona(connect, responder) -> None:
    async with connect() as client:
        await client.list_tools()
        await client.call_tool("is_office_open", {})
        await client.call_tool("hangup_call", {})
    assert len(responder.sent(CommandType.list_tools)) == 1


async def test_health_and_readiness(gateway) -> None:
    async with httpx2.AsyncClient(transport=gateway.transport, base_url="http://127.0.0.1:9443") as http:
        assert (await http.get("/healthz")).json() == {"status": "ok", "service": "gateway"}
        ready = await http.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"ready": True, "checks": {"mcp": True}}


async def test_the_app_refuses_to_start_without_a_pepper() -> None:
    from gateway.settings import MissingSecret

    with pytest.raises(MissingSecret, match="SWITCHBOARD_GATEWAY_KEY_PEPPER"):
        create_app(
            GatewaySettings(key_pepper=None, allow_dev_pepper=False),
            requester=InMemoryBus(),
            keys=InMemoryApiKeys(),
            events=False,
        )
