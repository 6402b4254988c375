"""The HTTP edge of /ucp/v2/mcp: auth, account binding, context headers, Host/Origin, size and rate limits."""

from __future__ import annotations

import asyncio
import json

import httpx2
import pytest

from gateway.auth import create_key
from gateway.capacity import Capacity, Refusal
from gateway.edge import matches
from gateway.settings import GatewaySettings
from switchboard.contracts import CommandType

BASE = "http://127.0.0.1:9443"
PATH = "/ucp/v2/mcp"
LIST_TOOLS = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture
def gateway_settings() -> GatewaySettings:
    return GatewaySettings(
        key_pepper="unit-test-pepper-0123456789",
        rate_limit_per_second=1,
        rate_limit_burst=5,
        max_body_bytes=2048,
        allowed_hosts=["127.0.0.1:*", "gateway.example.com"],
        allowed_origins=["https://portal.example.com"],
        key_cache_seconds=0,
        max_in_flight=2,
        body_timeout=0.5,
    )


@pytest.fixture
async def http(gateway):
    async with httpx2.AsyncClient(transport=gateway.transport, base_url=BASE) as client:
        yield client


async def post(http, headers, body=None, **kwargs):
    return await http.post(PATH, content=json.dumps(body or LIST_TOOLS), headers={**ACCEPT, **headers}, **kwargs)


async def test_a_good_request_passes_to_mcp(http, gateway, helpers) -> None:
    response = await post(http, helpers.headers(gateway.key))
    assert response.status_code == 200
    assert len(response.json()["result"]["tools"]) == 8


async def test_missing_unknown_malformed_and_revoked_keys_get_one_identical_401(http, gateway, helpers) -> None:
    other = (await create_key(gateway.keys, gateway.settings.pepper(), helpers.ACCOUNT)).key
    assert (await post(http, helpers.headers(other))).status_code == 200
    await gateway.keys.revoke(helpers.ACCOUNT, other.split("_")[1])
    forged = gateway.key[:-4] + ("AAAA" if not gateway.key.endswith("AAAA") else "BBBB")
    answers = [
        await post(http, helpers.headers(None)),
        await post(http, helpers.headers("not-a-key")),
        await post(http, helpers.headers(forged)),
        await post(http, helpers.headers("sbk_0123456789abcdef_" + "x" * 43)),
        await post(http, helpers.headers(other)),
    ]
    assert {r.status_code for r in answers} == {401}
    assert len({r.content for r in answers}) == 1
    assert answers[0].json()["error"] == "unauthorized"


async def test_another_accounts_id_is_forbidden_and_nothing_is_sent(http, gateway, helpers, responder) -> None:
    response = await post(http, helpers.headers(gateway.key, account=helpers.OTHER_ACCOUNT))
    assert response.status_code == 403 and response.json()["error"] == "wrong_account"
    assert responder.commands == []


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"account": None}, "account_id header is required"),
        ({"persona": None}, "persona_id header is required"),
        ({"call": None}, "call_id header is required"),
        ({"call": "call 1; drop"}, "call_id header must be visible ASCII"),
        ({"call": "c\x7f1"}, "call_id header must be visible ASCII"),
        ({"call": "x" * 257}, "call_id header must be at most 256 characters"),
        ({"persona": "x" * 129}, "persona_id header is malformed"),
        ({"caller": "<script>"}, "caller_id_number header must be a phone number"),
    ],
)
async def test_missing_or_malformed_context_headers_are_a_clear_400(
    http, gateway, helpers, responder, override, message
) -> None:
    response = await post(http, helpers.headers(gateway.key, **override))
    assert response.status_code == 400
    assert message in response.json()["message"]
    assert responder.commands == []


async def test_caller_number_is_optional(http, gateway, helpers) -> None:
    assert (await post(http, helpers.headers(gateway.key, caller=None))).status_code == 200


CALL_WHO_SAYS = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "is_office_open", "arguments": {}}}


@pytest.mark.parametrize(
    ("sent", "seen"),
    [
        ("+14155550100", "+14155550100"),
        ("(415) 555-0100", "(415) 555-0100"),
        ("tel:+14155550100", "+14155550100"),
        ("anonymous", None),
        ("Anonymous", None),
        ("ANONYMOUS", None),
        ("restricted", None),
        ("Restricted", None),
        ("unavailable", None),
        ("private", None),
        ("Private", None),
        ("unknown", None),
        ("withheld", None),
        ("sip:anonymous@anonymous.invalid", None),
        ("", None),
        ("  ", None),
    ],
)
async def test_every_caller_id_form_a_phone_system_sends_gets_tools_and_a_number_or_none(
    http, gateway, helpers, responder, sent, seen
) -> None:
    headers = helpers.headers(gateway.key, caller=sent)
    listed = await post(http, headers)
    assert listed.status_code == 200 and len(listed.json()["result"]["tools"]) == 8
    called = await post(http, headers, CALL_WHO_SAYS)
    assert called.status_code == 200 and called.json()["result"]["isError"] is False
    [command] = responder.sent(CommandType.is_office_open)
    assert command.caller_id_number == seen


@pytest.mark.parametrize("sent", ["<script>", "call me maybe", "anonymous caller", "+1 415 555 0100 ext 5", "1-800-FLOWERS"])
async def test_a_caller_id_that_is_neither_a_number_nor_a_withheld_form_is_a_clear_400(
    http, gateway, helpers, responder, sent
) -> None:
    response = await post(http, helpers.headers(gateway.key, caller=sent))
    assert response.status_code == 400
    assert "caller_id_number header must be a phone number" in response.json()["message"]
    assert responder.commands == []


@pytest.mark.parametrize(
    "call_id",
    [
        "a84b4c76e66710@pc33.atlanta.example.com",
        "3848276298220188511@atlanta.example.com",
        "f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
        "CA" + "0123456789abcdef" * 2,
        "1700000000.42",
        "<weird>/call?id=\"1\"&x=[y]{z}~!%*+'`|",
        "x" * 256,
    ],
)
async def test_call_ids_real_phone_systems_use_are_accepted_and_carried_unchanged(
    http, gateway, helpers, responder, call_id
) -> None:
    response = await post(http, helpers.headers(gateway.key, call=call_id), CALL_WHO_SAYS)
    assert response.status_code == 200 and response.json()["result"]["isError"] is False
    [command] = responder.sent(CommandType.is_office_open)
    assert command.call_id == call_id


async def test_unknown_host_and_origin_are_forbidden(http, gateway, helpers) -> None:
    headers = helpers.headers(gateway.key)
    assert (await post(http, {**headers, "Host": "evil.example.net"})).status_code == 403
    assert (await post(http, {**headers, "Host": "gateway.example.com"})).status_code == 200
    assert (await post(http, {**headers, "Origin": "https://evil.example.net"})).status_code == 403
    assert (await post(http, {**headers, "Origin": "https://portal.example.com"})).status_code == 200


async def test_oversized_bodies_are_refused_with_413(http, gateway, helpers, responder) -> None:
    big = {**LIST_TOOLS, "params": {"_meta": {"padding": "x" * 4096}}}
    response = await post(http, helpers.headers(gateway.key), big)
    assert response.status_code == 413
    assert responder.commands == []


async def test_a_key_over_its_rate_limit_gets_429(http, gateway, helpers) -> None:
    statuses = [(await post(http, helpers.headers(gateway.key))).status_code for _ in range(8)]
    assert statuses[:5] == [200] * 5
    assert 429 in statuses[5:]
    limited = await post(http, helpers.headers(gateway.key))
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


async def test_past_its_capacity_the_gateway_answers_503_busy_at_once_and_serves_again_after(
    http, gateway, helpers, responder
) -> None:
    def held(i: int) -> dict:
        arguments = {"name": helpers.HOLD, "intent": f"x{i}"}  # two different leads, not a repeat
        return {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "create_lead", "arguments": arguments}}

    headers = helpers.headers(gateway.key)
    holding = [asyncio.create_task(post(http, headers, held(i))) for i in range(2)]
    while len(responder.sent(CommandType.create_lead)) < 2:
        await asyncio.sleep(0.01)

    sent = len(responder.commands)
    refused = await post(http, headers)
    assert refused.status_code == 503
    assert refused.json()["error"] == "busy" and refused.headers["Retry-After"] == "1"
    assert len(responder.commands) == sent

    responder.release.set()
    assert [(await task).status_code for task in holding] == [200, 200]
    assert (await post(http, headers)).status_code == 200


async def test_malformed_json_rpc_is_a_protocol_error_without_side_effects(http, gateway, helpers, responder) -> None:
    response = await http.post(PATH, content=b"{not json", headers={**ACCEPT, **helpers.headers(gateway.key)})
    assert response.status_code == 400
    assert "Traceback" not in response.text
    assert responder.sent(CommandType.list_tools) == []


@pytest.mark.parametrize("body", [[1], [LIST_TOOLS], {"jsonrpc": "2.0", "id": 1}, {"id": 1, "method": "tools/list"}])
async def test_a_body_that_is_no_json_rpc_message_gets_one_sentence_not_a_validation_report(
    http, gateway, helpers, body
) -> None:
    response = await post(http, helpers.headers(gateway.key), body)
    assert response.status_code == 400
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.json()["error"]["message"].startswith("Invalid request: the body must be a JSON-RPC 2.0")
    assert not any(word in response.text for word in ("pydantic", "JSONRPCRequest", "input_value"))


@pytest.mark.parametrize("resume", [{}, {"Last-Event-ID": "0"}])
async def test_a_get_is_405_as_there_is_no_event_stream(http, gateway, helpers, resume) -> None:
    headers = {**ACCEPT, **helpers.headers(gateway.key), **resume}
    response = await http.get(PATH, headers=headers)
    assert response.status_code == 405 and response.headers["Allow"] == "POST"
    assert response.json()["error"] == "method_not_allowed"
    assert (await http.get(PATH, headers={**headers, "X-API-Key": "nope"})).status_code == 401


def test_host_patterns() -> None:
    assert matches("127.0.0.1:9443", ["127.0.0.1:*"])
    assert not matches("127.0.0.1.evil.net:80", ["127.0.0.1:*"])
    assert not matches("127.0.0.1:", ["127.0.0.1:*"])
    assert matches("anything", ["*"])
    assert matches("http://localhost:3000", ["http://localhost:*"])


def _scope(headers: dict[str, str]) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "root_path": "",
        "query_string": b"",
        "server": ("127.0.0.1", 9443),
        "client": ("127.0.0.1", 50000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in {"Host": "127.0.0.1:9443", **ACCEPT, **headers}.items()],
    }


async def _asgi(app, headers: dict[str, str], messages: list[dict]) -> list[dict]:
    """Run one request through the app; `receive` hands out `messages`, then waits forever."""
    pending = list(messages)
    sent: list[dict] = []

    async def receive() -> dict:
        if pending:
            return pending.pop(0)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: dict) -> None:
        sent.append(message)

    await app(_scope(headers), receive, send)
    return sent


async def test_a_body_that_stops_arriving_is_answered_408_and_nothing_is_sent(gateway, helpers, responder) -> None:
    partial = {"type": "http.request", "body": json.dumps(LIST_TOOLS).encode()[:10], "more_body": True}
    sent = await _asgi(gateway.app, helpers.headers(gateway.key), [partial])
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]
    assert json.loads(sent[1]["body"])["error"] == "request_timeout"
    assert responder.commands == []


async def test_a_body_longer_than_allowed_without_a_declared_length_is_413(gateway, helpers, responder) -> None:
    chunk = {"type": "http.request", "body": b"x" * 1500, "more_body": True}
    sent = await _asgi(gateway.app, helpers.headers(gateway.key), [chunk, chunk])
    assert sent[0]["status"] == 413
    assert responder.commands == []


async def test_a_client_that_disconnects_is_an_info_line_and_gets_nothing(gateway, helpers, responder, caplog) -> None:
    caplog.set_level("INFO")
    partial = {"type": "http.request", "body": b"{", "more_body": True}
    sent = await _asgi(gateway.app, helpers.headers(gateway.key), [partial, {"type": "http.disconnect"}])
    assert sent == []
    assert responder.commands == []
    records = [r for r in caplog.records if "disconnected" in r.getMessage()]
    assert records and all(r.levelname == "INFO" and r.exc_info is None for r in records)
    assert not [r for r in caplog.records if r.levelno >= 40]


def test_in_flight_capacity_is_shared_per_key_and_account_within_the_total() -> None:
    capacity = Capacity(total=5, per_key=2, per_account=3, unauthenticated=1)
    assert capacity.enter("k1", "a1") is None and capacity.enter("k1", "a1") is None
    assert capacity.enter("k1", "a1") is Refusal.key
    assert capacity.enter("k2", "a1") is None
    assert capacity.enter("k3", "a1") is Refusal.account
    assert capacity.enter("k4", "a2") is None and capacity.enter("k5", "a3") is None
    assert capacity.enter("k6", "a4") is Refusal.gateway
    capacity.leave("k1", "a1")
    assert capacity.enter("k6", "a4") is None
    for key, account in [("k1", "a1"), ("k2", "a1"), ("k4", "a2"), ("k5", "a3"), ("k6", "a4")]:
        capacity.leave(key, account)
    assert capacity.in_flight == 0 and capacity.held_by_key("k1") == 0

    assert capacity.enter_unauthenticated() and not capacity.enter_unauthenticated()
    capacity.leave_unauthenticated()
    assert capacity.enter_unauthenticated()


async def test_a_keys_requests_over_its_share_get_429_while_another_account_is_served(
    http, gateway, helpers, responder
) -> None:
    edge = gateway.app.mcp
    edge._capacity = Capacity(total=10, per_key=2, per_account=4, unauthenticated=4)
    other = (await create_key(gateway.keys, gateway.settings.pepper(), helpers.OTHER_ACCOUNT)).key

    def held(i: int) -> dict:
        arguments = {"name": helpers.HOLD, "intent": f"share{i}"}
        return {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "create_lead", "arguments": arguments}}

    headers = helpers.headers(gateway.key)
    holding = [asyncio.create_task(post(http, headers, held(i))) for i in range(2)]
    while len(responder.sent(CommandType.create_lead)) < 2:
        await asyncio.sleep(0.01)
    refused = await post(http, headers)
    assert refused.status_code == 429
    assert refused.json()["error"] == "too_many_in_flight" and refused.headers["Retry-After"] == "1"
    served = await post(http, helpers.headers(other, account=helpers.OTHER_ACCOUNT, persona=helpers.OTHER_PERSONA))
    assert served.status_code == 200
    responder.release.set()
    assert [(await task).status_code for task in holding] == [200, 200]
