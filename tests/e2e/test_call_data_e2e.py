"""Real call data and real clients' habits through the whole system: withheld caller numbers, SIP
Call-IDs, and the same side-effecting tool call sent twice (checked in the databases and the PBX)."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import uuid4

import pytest

from gateway.repeats import COLLECTION as REPEAT_CLAIMS
from gateway.repeats import fingerprint
from switchboard.contracts import CallContext, CommandType
from switchboard.contracts.leads import CreateLead
from switchboard.messaging.requester import KafkaRequester
from switchboard.mongo import connect
from switchboard.settings import SwitchboardSettings

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

WITHHELD = ["anonymous", "Anonymous", "restricted", "unavailable", "private", ""]


def text(result: Any) -> str:
    return " ".join(c.text for c in result.content)


async def count(e2e, service: str, collection: str, query: dict[str, Any]) -> int:
    client = connect(e2e.env["SWITCHBOARD_MONGO_URI"], app_name="e2e-tests")
    try:
        db = client[e2e.env[f"SWITCHBOARD_{service.upper().replace('-', '_')}_MONGO_DATABASE"]]
        return await db[collection].count_documents(query)
    finally:
        await client.close()


@pytest.mark.parametrize("withheld", WITHHELD)
async def test_a_caller_who_withholds_the_number_gets_every_tool(e2e, withheld) -> None:
    call = await e2e.start_call(caller=None)
    async with e2e.client(call, caller=withheld) as client:
        tools = [t.name for t in (await client.list_tools()).tools]
        office = await client.call_tool("is_office_open", {})
        lead = await client.call_tool("create_lead", {"name": "Pat", "intent": "Call back about an order."})
    assert "create_lead" in tools and "lookup_contact" in tools
    assert not office.is_error
    assert not lead.is_error and lead.structured_content["lead_id"]


async def test_create_lead_sent_twice_records_one_case(e2e) -> None:
    call = await e2e.start_call()
    arguments = {"name": "Jane Doe", "intent": "Order 1001 is late."}
    async with e2e.client(call) as client:
        first = await client.call_tool("create_lead", arguments)
        second = await client.call_tool("create_lead", arguments)
    assert second.structured_content == {**first.structured_content, "repeat": True}
    assert await count(e2e, "leads", "cases", {"account_id": e2e.demo.account_id, "call_id": call}) == 1


async def test_transfers_and_hangups_sent_twice_act_once_on_the_pbx(e2e) -> None:
    transferred, hung_up = await e2e.start_call(), await e2e.start_call()
    async with e2e.client(transferred) as client:
        answers = await asyncio.gather(
            *(client.call_tool(e2e.demo.transfer_to_user_tool, {}) for _ in range(3)),
        )
    async with e2e.client(hung_up) as client:
        hangups = [await client.call_tool("hangup_call", {}) for _ in range(2)]
    assert all(not a.is_error for a in answers) and sum(1 for a in answers if a.structured_content.get("repeat")) == 2
    assert len((await e2e.pbx_call(transferred))["actions"]) == 1
    assert hangups[1].structured_content == {**hangups[0].structured_content, "repeat": True}
    assert len((await e2e.pbx_call(hung_up))["actions"]) == 1


class _Bookings(BaseHTTPRequestHandler):
    received: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 (the http.server naming)
        self.received.append(self.path)
        payload = json.dumps({"booked": True, "n": len(self.received)}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


async def test_a_post_api_request_sent_twice_reaches_the_api_once(e2e) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Bookings)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        account = (await e2e.admin("GET", "persona", f"/admin/v1/accounts/{e2e.demo.account_id}")).json()
        allow = [*account["egress_allowlist"], {"host": "127.0.0.1", "port": port}]
        await e2e.put_persona_resource(
            "",
            {k: account[k] for k in ("name", "timezone", "country")} | {"egress_allowlist": allow},
        )
        persona = f"book-{uuid4().hex[:8]}"
        await e2e.put_persona_resource(f"/personas/{persona}", {"name": "Bookings"})
        await e2e.put_persona_resource(
            f"/personas/{persona}/tools/book",
            {
                "kind": "api_request",
                "name": "book_visit",
                "description": "Book a visit for the caller.",
                "method": "POST",
                "url": f"http://127.0.0.1:{port}/visits/{{{{day}}}}",
                "variables": [{"name": "day", "type": "text", "description": "The day."}],
            },
        )
        call = await e2e.start_call(persona=persona)
        async with e2e.client(call, persona=persona) as client:
            first = await client.call_tool("book_visit", {"day": "monday"})
            second = await client.call_tool("book_visit", {"day": "monday"})
            other = await client.call_tool("book_visit", {"day": "tuesday"})
    finally:
        server.shutdown()
        server.server_close()
    assert not first.is_error and second.structured_content == {**first.structured_content, "repeat": True}
    assert not other.is_error and "repeat" not in other.structured_content
    assert _Bookings.received == ["/visits/monday", "/visits/tuesday"]


async def test_a_retry_after_the_gateway_gave_up_returns_the_effect_that_landed(e2e) -> None:
    """The first call's command reached leads-svc and acted, but its reply never reached the gateway
    (it had stopped waiting): the retry the agent makes is answered with that effect, not a second."""
    call = await e2e.start_call()
    arguments = {"name": "Late Lee", "intent": "Wants a callback."}
    command_id = uuid4().hex
    client = connect(e2e.env["SWITCHBOARD_MONGO_URI"], app_name="e2e-tests")
    try:
        key = fingerprint(e2e.demo.account_id, call, "create_lead", arguments)
        gateway_db = client[e2e.env["SWITCHBOARD_GATEWAY_MONGO_DATABASE"]]
        await gateway_db[REPEAT_CLAIMS].insert_one(
            {"_id": f"{key}.0", "command_id": command_id, "fingerprint": key, "claimed_at": datetime.now(UTC)}
        )
    finally:
        await client.close()
    settings = SwitchboardSettings(
        kafka_bootstrap=e2e.env["SWITCHBOARD_KAFKA_BOOTSTRAP"], topic_prefix=e2e.env["SWITCHBOARD_TOPIC_PREFIX"]
    )
    requester = KafkaRequester(settings)
    await requester.start()
    try:
        context = CallContext(
            account_id=e2e.demo.account_id, persona_id=e2e.demo.persona_id, call_id=call, region="US"
        )
        landed = await requester.request(
            CommandType.create_lead, context, CreateLead(**arguments), timeout=20, command_id=command_id
        )
    finally:
        await requester.stop()

    async with e2e.client(call, caller=None) as mcp:
        retried = await mcp.call_tool("create_lead", arguments)
    assert retried.structured_content == {**landed.model_dump(mode="json"), "repeat": True}
    assert await count(e2e, "leads", "cases", {"account_id": e2e.demo.account_id, "call_id": call}) == 1
