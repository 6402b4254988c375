"""Every tool through the gateway with the official MCP client, in both protocol eras, on the real
processes, Kafka and database: what the model reads (text and structuredContent) and what the
simulated PBX did."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from mcp.shared.exceptions import MCPError

from demo_call import ERAS

# The first test also waits for the shared system to start: minutes on a loaded machine.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

GLOBAL_TOOLS = ["transfer_call", "is_office_open", "lookup_contact", "check_user_availability", "create_lead", "hangup_call"]
OFFICE_SENTENCES = {
    "Office is currently open",
    "Office is currently closed",
    "Office is closed today",
    "Office is open 24 hours today",
}
WEEK = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
UNKNOWN_NUMBER = "+12025550173"


def text(result: Any) -> str:
    return " ".join(c.text for c in result.content)


def new_caller() -> str:
    """A valid US number no other test uses."""
    return f"+1312555{uuid4().int % 10_000:04d}"


@pytest.mark.parametrize("mode", ERAS)
async def test_tools_list_is_the_global_tools_then_the_personas_custom_tools(e2e, call_id, mode) -> None:
    async with e2e.client(call_id, mode=mode) as client:
        tools = (await client.list_tools()).tools
    assert [t.name for t in tools] == [*GLOBAL_TOOLS, *e2e.demo.custom_tools]
    assert all(t.description and t.input_schema and t.output_schema for t in tools)
    order_tool = next(t for t in tools if t.name == e2e.demo.api_request_tool)
    assert order_tool.input_schema["required"] == ["order_id"]


@pytest.mark.parametrize("mode", ERAS)
async def test_a_call_through_the_global_tools(e2e, mode) -> None:
    call = await e2e.start_call()
    async with e2e.client(call, mode=mode) as client:
        office = await client.call_tool("is_office_open", {})
        jane = await client.call_tool("lookup_contact", {"phone_number": "(415) 555-0100"})
        nobody = await client.call_tool("lookup_contact", {"phone_number": UNKNOWN_NUMBER})
        bob = await client.call_tool("check_user_availability", {"user_id": e2e.demo.dnd_user})
        alice = await client.call_tool("check_user_availability", {"user_id": e2e.demo.available_user})
        lead = await client.call_tool(
            "create_lead", {"name": "Jane Doe", "intent": "Order 1001 delivery", "classification": "customer"}
        )
        transfer = await client.call_tool("transfer_call", {"destination_number": "205"})

    assert not office.is_error and text(office) in OFFICE_SENTENCES
    assert office.structured_content["text"] == text(office)
    assert office.structured_content["timezone"] == "America/New_York"

    assert not jane.is_error and text(jane).startswith("Found 1 contact(s) for +14155550100: Jane Doe, of Doe Logistics")
    [match] = jane.structured_content["contacts"]
    assert (match["name"], match["source"]) == ("Jane Doe", "native")

    assert not nobody.is_error and text(nobody) == f"No contact found for {UNKNOWN_NUMBER}."
    assert nobody.structured_content["found"] is False

    assert text(bob) == "Bob Chen is on Do Not Disturb and cannot take a call now."
    assert bob.structured_content["dnd"] is True and bob.structured_content["available"] is False
    assert text(alice) == "Alice Moreno is available to take a call."
    assert alice.structured_content["available"] is True

    assert not lead.is_error and lead.structured_content["lead_id"] and lead.structured_content["case_id"]
    assert text(lead).startswith(("Lead ", "This caller already had a lead"))

    assert not transfer.is_error and text(transfer).startswith("Transfer accepted")
    assert transfer.structured_content["accepted"] is True
    assert (transfer.structured_content["destination"], transfer.structured_content["destination_kind"]) == (
        "205",
        "extension",
    )
    pbx = await e2e.pbx_call(call)
    assert pbx["state"] == "transferred"
    assert [(a["action"], a["destination"]) for a in pbx["actions"]] == [("transfer", "205")]


@pytest.mark.parametrize("mode", ERAS)
async def test_a_second_call_from_a_caller_adds_a_case_to_their_lead(e2e, mode) -> None:
    caller = new_caller()
    leads = []
    for _ in range(2):
        call = await e2e.start_call(caller=caller)
        async with e2e.client(call, mode=mode, caller=caller) as client:
            leads.append(await client.call_tool("create_lead", {"name": "Sam Ortiz", "intent": "Quote for 40 boxes"}))
    first, second = (lead.structured_content for lead in leads)
    assert first["lead_existed"] is False and second["lead_existed"] is True
    assert first["lead_id"] == second["lead_id"] and first["case_id"] != second["case_id"]
    assert text(leads[1]) == f"This caller already had a lead ({first['lead_id']}); case {second['case_id']} was added to it."


@pytest.mark.parametrize("mode", ERAS)
async def test_after_a_hangup_the_call_cannot_be_transferred(e2e, mode) -> None:
    call = await e2e.start_call()
    async with e2e.client(call, mode=mode) as client:
        hangup = await client.call_tool("hangup_call", {})
        transfer = await client.call_tool("transfer_call", {"destination_number": "205"})
        queue = await client.call_tool(e2e.demo.transfer_to_queue_tool, {})
        again = await client.call_tool("hangup_call", {})

    assert not hangup.is_error and text(hangup) == "The call has been ended."
    assert hangup.structured_content == {"ended": True, "already_ended": False, "message": "The call has been ended."}
    for refused in (transfer, queue):
        assert refused.is_error
        assert text(refused) == "The call has already ended; there is no caller to transfer."
    # The same hang-up again on the same call is a repeat: the first result, and no second action.
    assert not again.is_error and again.structured_content == {**hangup.structured_content, "repeat": True}
    pbx = await e2e.pbx_call(call)
    assert pbx["state"] == "hung_up"
    assert [(a["action"], a["by"]) for a in pbx["actions"]] == [("hangup", "agent")]


@pytest.mark.parametrize("mode", ERAS)
async def test_a_call_the_caller_hung_up_is_not_active(e2e, mode) -> None:
    call = await e2e.start_call()
    await e2e.caller_hangs_up(call)
    async with e2e.client(call, mode=mode) as client:
        transfer = await client.call_tool(e2e.demo.transfer_to_user_tool, {})
        hangup = await client.call_tool("hangup_call", {})
    assert transfer.is_error and text(transfer) == "The call has already ended; there is no caller to transfer."
    assert not hangup.is_error and hangup.structured_content["already_ended"] is True
    assert text(hangup) in ("The call has already ended.", "The caller had already hung up; the call has ended.")


@pytest.mark.parametrize("mode", ERAS)
async def test_custom_tools_of_every_kind(e2e, mode) -> None:
    demo = e2e.demo
    to_user, to_queue = await e2e.start_call(), await e2e.start_call()
    async with e2e.client(to_user, mode=mode) as client:
        order = await client.call_tool(demo.api_request_tool, {"order_id": "1001"})
        missing = await client.call_tool(demo.api_request_tool, {"order_id": "4242"})
        alice = await client.call_tool(demo.transfer_to_user_tool, {})
    async with e2e.client(to_queue, mode=mode) as client:
        queue = await client.call_tool(demo.transfer_to_queue_tool, {})

    assert not order.is_error and text(order).startswith("The request succeeded (HTTP 200).")
    assert order.structured_content["status_code"] == 200 and '"status": "shipped"' in order.structured_content["body"]
    assert missing.is_error and text(missing).startswith("The request failed with HTTP 404.")
    assert "There is no order '4242'." in text(missing)

    assert not alice.is_error and text(alice).startswith("Transfer accepted: the caller is being connected to Alice Moreno")
    assert alice.structured_content["target"] == {"kind": "user", "id": "alice", "name": "Alice Moreno"}
    assert not queue.is_error and queue.structured_content["target"] == {
        "kind": "queue",
        "id": demo.queue_id,
        "name": "Support team",
    }
    assert [a["destination"] for a in (await e2e.pbx_call(to_user))["actions"]] == ["201"]
    assert [a["destination"] for a in (await e2e.pbx_call(to_queue))["actions"]] == ["300"]


@pytest.mark.parametrize("mode", ERAS)
async def test_errors_the_model_sees_are_sentences_it_can_act_on(e2e, mode) -> None:
    call, never_started = await e2e.start_call(), f"call-{uuid4().hex[:12]}"
    async with e2e.client(call, mode=mode) as client:
        ghost = await client.call_tool("check_user_availability", {"user_id": "ghost"})
        garbage = await client.call_tool("transfer_call", {"destination_number": "call me maybe"})
        not_a_number = await client.call_tool("lookup_contact", {"phone_number": "12345678901234"})
        emergency = await client.call_tool("transfer_call", {"destination_number": "911"})
        abroad = await client.call_tool("transfer_call", {"destination_number": "+442071838750"})
        no_intent = await client.call_tool("create_lead", {"name": "Jane Doe"})
        bad_variable = await client.call_tool(e2e.demo.api_request_tool, {"order": "1001"})
        with pytest.raises(MCPError, match="Unknown tool"):
            await client.call_tool("transfer_to_the_moon", {})
    async with e2e.client(never_started, mode=mode) as client:
        unknown_call = await client.call_tool("transfer_call", {"destination_number": "205"})

    assert ghost.is_error and text(ghost) == "There is no user 'ghost' in this account."
    assert garbage.is_error and "Give a phone number with its area code" in text(garbage)
    assert not_a_number.is_error and text(not_a_number) == (
        "'12345678901234' is not a valid phone number. Ask the caller to say the number again, with its country code."
    )
    assert emergency.is_error and text(emergency).startswith("911 is an emergency number")
    assert abroad.is_error and text(abroad) == (
        "+442071838750 is outside the account's country (US); this account does not allow international transfers."
    )
    assert no_intent.is_error and text(no_intent).startswith("Invalid arguments for create_lead:")
    assert "intent" in text(no_intent)
    assert bad_variable.is_error and text(bad_variable).startswith(f"Invalid arguments for {e2e.demo.api_request_tool}:")
    assert unknown_call.is_error
    assert text(unknown_call) == (
        f"Call {never_started} is not a call of this account that call control knows about; "
        "it cannot be transferred or hung up."
    )
    assert (await e2e.pbx_call(call))["actions"] == []


async def test_a_transfer_to_a_colleague_on_dnd_is_refused(e2e) -> None:
    persona = f"dnd-{uuid4().hex[:8]}"
    await e2e.put_persona_resource(f"/personas/{persona}", {"name": "DND check"})
    await e2e.put_persona_resource(
        f"/personas/{persona}/tools/to-bob",
        {
            "kind": "transfer_to_user",
            "name": "transfer_to_bob",
            "description": "Transfer the caller to Bob.",
            "user_id": e2e.demo.dnd_user,
            "refuse_when_dnd": True,
        },
    )
    call = await e2e.start_call(persona=persona)
    async with e2e.client(call, persona=persona) as client:
        refused = await client.call_tool("transfer_to_bob", {})
    assert refused.is_error
    assert text(refused) == (
        "Bob Chen is on Do Not Disturb and is not taking transfers right now; "
        "offer to take a message or transfer elsewhere."
    )
    assert (await e2e.pbx_call(call))["actions"] == []


def every_day(start: str, end: str) -> dict[str, list[dict[str, str]]]:
    return {day: [{"start": start, "end": end}] for day in WEEK}


def office_hours_for_each_answer(now: datetime) -> dict[str, dict[str, Any]]:
    """Office hours whose answer does not depend on when the test runs: the only closed or open
    minute of each day is twelve hours away, and holidays cover yesterday to tomorrow."""
    far = (now + timedelta(hours=12)).replace(second=0, microsecond=0)
    far_start, far_end = far.strftime("%H:%M"), (far + timedelta(minutes=1)).strftime("%H:%M")
    days = [(now.date() + timedelta(days=d)).isoformat() for d in (-1, 0, 1)]
    return {
        "Office is open 24 hours today": {"weekly": every_day("00:00", "24:00")},
        "Office is currently open": {"weekly": every_day(far_end, far_start)},
        "Office is currently closed": {"weekly": every_day(far_start, far_end)},
        "Office is closed today": {
            "weekly": every_day("00:00", "24:00"),
            "holidays": [{"date": day, "name": "Founders' Day"} for day in days],
        },
    }


async def test_is_office_open_says_exactly_one_of_the_four_sentences(e2e, call_id) -> None:
    now = datetime.now(ZoneInfo("America/New_York"))
    answers = {}
    for sentence, hours in office_hours_for_each_answer(now).items():
        persona = f"hours-{uuid4().hex[:8]}"
        await e2e.put_persona_resource(f"/personas/{persona}", {"name": sentence, "office_hours": hours})
        async with e2e.client(call_id, persona=persona) as client:
            answers[sentence] = await client.call_tool("is_office_open", {})
    for sentence, answer in answers.items():
        assert not answer.is_error
        assert text(answer) == sentence
        assert answer.structured_content["text"] == sentence
    assert answers["Office is closed today"].structured_content["holiday"] == "Founders' Day"
    assert answers["Office is currently closed"].structured_content["next_opening"] is not None
