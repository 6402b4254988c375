"""The same side-effecting tool call, twice: one effect, the first result, marked as a repeat."""

from __future__ import annotations

import asyncio

import pytest

from gateway.repeats import InMemoryRepeats, Repeats, fingerprint
from gateway.settings import GatewaySettings
from switchboard.contracts import CommandType
from switchboard.contracts.persona import (
    ApiRequestTool,
    PersonaTools,
    ToolVariable,
    TransferToUserTool,
    VariableType,
)

URL = "http://127.0.0.1:9443/ucp/v2/mcp"
REPEATS = "per-repeats"


@pytest.fixture
def gateway_settings() -> GatewaySettings:
    return GatewaySettings(key_pepper="unit-test-pepper-0123456789", tool_timeout=2.0, repeat_window_seconds=60)


@pytest.fixture(autouse=True)
def persona(helpers, monkeypatch) -> None:
    monkeypatch.setitem(
        helpers.PERSONAS,
        (helpers.ACCOUNT, REPEATS),
        PersonaTools(
            persona_id=REPEATS,
            persona_name="Repeats",
            account_country="US",
            account_timezone="America/New_York",
            custom_tools=[
                TransferToUserTool(name="to_anna", description="Anna."),
                ApiRequestTool(
                    name="book_visit",
                    description="Book a visit.",
                    method="POST",
                    variables=[ToolVariable(name="day", type=VariableType.text)],
                ),
                ApiRequestTool(
                    name="order_status",
                    description="An order's status.",
                    method="GET",
                    variables=[ToolVariable(name="order", type=VariableType.text)],
                ),
            ],
        ),
    )


@pytest.fixture
def call(gateway, helpers):
    async def calling(name: str, arguments: dict, *, call: str = "call-7", **headers):
        async with helpers.mcp_client(
            URL,
            {**helpers.headers(gateway.key, persona=REPEATS, call=call), **headers},
            transport=gateway.transport,
        ) as client:
            return await client.call_tool(name, arguments)

    return calling


LEAD = {"name": "Ann Lee", "intent": "Wants a quote."}

SIDE_EFFECTS = [
    ("create_lead", LEAD, CommandType.create_lead),
    ("transfer_call", {"destination_number": "+14155550123"}, CommandType.transfer_call),
    ("hangup_call", {}, CommandType.hangup_call),
    ("to_anna", {}, CommandType.transfer_call),
    ("book_visit", {"day": "Monday"}, CommandType.run_api_request),
]


@pytest.mark.parametrize(("tool", "arguments", "command_type"), SIDE_EFFECTS, ids=[s[0] for s in SIDE_EFFECTS])
async def test_a_side_effecting_tool_called_twice_acts_once_and_answers_the_first_result(
    call, responder, tool, arguments, command_type
) -> None:
    first = await call(tool, arguments)
    second = await call(tool, arguments)
    assert not first.is_error and not second.is_error
    assert len(responder.sent(command_type)) == 1
    assert "repeat" not in first.structured_content
    assert second.structured_content == {**first.structured_content, "repeat": True}
    assert "was not carried out again" in second.content[0].text


async def test_duplicate_calls_sent_at_once_act_once(call, responder) -> None:
    answers = await asyncio.gather(*(call("create_lead", LEAD) for _ in range(5)))
    assert len(responder.sent(CommandType.create_lead)) == 1
    assert len({a.structured_content["case_id"] for a in answers}) == 1
    assert sum(1 for a in answers if a.structured_content.get("repeat")) == 4


async def test_other_arguments_another_call_or_a_read_are_not_repeats(call, responder) -> None:
    await call("create_lead", LEAD)
    await call("create_lead", {**LEAD, "intent": "Something else."})
    await call("create_lead", LEAD, call="call-8")
    assert len(responder.sent(CommandType.create_lead)) == 3
    for _ in range(2):
        read = await call("order_status", {"order": "1001"})
        assert "repeat" not in read.structured_content
    assert len(responder.sent(CommandType.run_api_request)) == 2


async def test_an_idempotency_key_decides_instead_and_refuses_another_request(call, responder, gateway) -> None:
    gateway.settings.repeat_window_seconds = 0  # the key alone decides, however late the retry comes
    first = await call("create_lead", LEAD, **{"Idempotency-Key": "order-77"})
    retried = await call("create_lead", LEAD, **{"Idempotency-Key": "order-77"})
    assert retried.structured_content == {**first.structured_content, "repeat": True}
    fresh = await call("create_lead", LEAD, **{"Idempotency-Key": "order-78"})
    assert "repeat" not in fresh.structured_content
    for misuse in (
        call("create_lead", {**LEAD, "name": "Bob"}, **{"Idempotency-Key": "order-77"}),
        call("create_lead", LEAD, call="call-9", **{"Idempotency-Key": "order-77"}),
    ):
        refused = await misuse
        assert refused.is_error and "Idempotency-Key was already used" in refused.content[0].text
    assert len(responder.sent(CommandType.create_lead)) == 2


async def test_a_malformed_idempotency_key_is_a_clear_400(gateway, helpers) -> None:
    import httpx2

    async with httpx2.AsyncClient(transport=gateway.transport, base_url="http://127.0.0.1:9443") as http:
        response = await http.post(
            "/ucp/v2/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
            headers={
                "Accept": "application/json, text/event-stream",
                **helpers.headers(gateway.key),
                "Idempotency-Key": "x" * 256,
            },
        )
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["message"]


async def test_after_the_window_the_same_call_acts_again() -> None:
    repeats = Repeats(InMemoryRepeats())
    key = fingerprint("acc", "call-1", "create_lead", LEAD)
    first = await repeats.claim(key, window=60, account_id="acc")
    again = await repeats.claim(key, window=60, account_id="acc")
    assert not first.repeat and again.repeat and again.command_id == first.command_id
    later = await repeats.claim(key, window=0, account_id="acc")
    assert not later.repeat and later.command_id != first.command_id
    assert (await repeats.claim(key, window=60, account_id="acc")).command_id == first.command_id


async def test_a_released_claim_lets_the_next_call_act() -> None:
    repeats = Repeats(InMemoryRepeats())
    key = fingerprint("acc", "call-1", "hangup_call", {})
    first = await repeats.claim(key, window=60, account_id="acc")
    await repeats.release(key, first, idempotency_key=None, account_id="acc")
    retry = await repeats.claim(key, window=60, account_id="acc")
    assert not retry.repeat and retry.command_id != first.command_id
