"""Withheld callers, SIP Call-IDs and extensions through the gateway to leads, contacts and call
control, checked in their databases and on the simulated PBX."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote
from uuid import uuid4

import pytest

from switchboard.mongo import connect

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def text(result: Any) -> str:
    return " ".join(c.text for c in result.content)


def sip_call_id() -> str:
    return f"{uuid4().hex[:14]}@pc33.atlanta.example.com"


async def leads_of_call(e2e, call_id: str) -> list[dict[str, Any]]:
    client = connect(e2e.env["SWITCHBOARD_MONGO_URI"], app_name="e2e-tests")
    try:
        db = client[e2e.env["SWITCHBOARD_LEADS_MONGO_DATABASE"]]
        return [doc async for doc in db["leads"].find({"account_id": e2e.demo.account_id, "call_id": call_id})]
    finally:
        await client.close()


async def pbx_call(e2e, call_id: str) -> dict[str, Any]:
    path = f"/pbx/v1/calls/{quote(call_id, safe='')}?account_id={e2e.demo.account_id}"
    response = await e2e.admin("GET", "call-control", path)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("number", ["anonymous", ""])
async def test_lookup_contact_on_a_withheld_call_tells_the_agent_to_ask(e2e, number) -> None:
    call = await e2e.start_call(caller=None, call_id=sip_call_id())
    async with e2e.client(call, caller="anonymous") as client:
        result = await client.call_tool("lookup_contact", {"phone_number": number})
    assert result.is_error and "withheld" in text(result) and "Ask the caller" in text(result)


async def test_two_create_lead_on_a_withheld_call_record_one_lead_with_the_callback_number(e2e) -> None:
    call = await e2e.start_call(caller=None, call_id=sip_call_id())
    async with e2e.client(call, caller="restricted") as client:
        first = await client.call_tool("create_lead", {"name": "Pat", "intent": "Order 1001 is late."})
        second = await client.call_tool(
            "create_lead", {"name": "Pat", "intent": "Order 1001 is late.", "callback_number": "(415) 555-0142"}
        )
        refused = await client.call_tool(
            "create_lead", {"name": "Pat", "intent": "Order 1001.", "callback_number": "tomorrow"}
        )
    assert not first.is_error and not second.is_error
    assert second.structured_content["lead_id"] == first.structured_content["lead_id"]
    assert second.structured_content["lead_existed"] is True
    assert refused.is_error and "callback_number" in text(refused)
    [lead] = await leads_of_call(e2e, call)
    assert lead["phone_e164"] is None and lead["deduplicable"] is False


async def test_a_transfer_with_an_extension_dials_it_after_the_connection(e2e) -> None:
    call = await e2e.start_call(call_id=sip_call_id())
    async with e2e.client(call) as client:
        result = await client.call_tool("transfer_call", {"destination_number": "+1 415 555 0123 ext 22"})
    assert not result.is_error and "extension 22" in text(result)
    assert result.structured_content["extension"] == "22"
    [action] = (await pbx_call(e2e, call))["actions"]
    assert (action["destination"], action["extension"]) == ("+14155550123", "22")


async def test_a_transfer_to_an_unreadable_extension_is_refused_and_the_pbx_is_never_asked(e2e) -> None:
    call = await e2e.start_call(call_id=sip_call_id())
    async with e2e.client(call) as client:
        result = await client.call_tool("transfer_call", {"destination_number": "+1 415 555 0123 ext abc"})
    assert result.is_error and "extension" in text(result)
    assert (await pbx_call(e2e, call))["actions"] == []
