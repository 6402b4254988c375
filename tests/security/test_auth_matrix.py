"""Who may call what, through the running gateway: every tool (the six global tools and each kind of
custom tool) in both protocol eras, against every refusal the edge makes, and against another
account's persona, user and tools. A refused request reads and writes nothing: no service
processes a command for its call id and no service collection changes."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import httpx
import pytest

pytestmark = [pytest.mark.security, pytest.mark.timeout(300)]

ERAS = ["2025", "2026-07-28"]


def tools(ours: Any) -> dict[str, dict[str, Any]]:
    """Every tool our persona offers, with arguments that a permitted caller would get served."""
    return {
        "transfer_call": {"destination_number": "+14155550111"},
        "is_office_open": {},
        "lookup_contact": {"phone_number": ours.caller_number},
        "check_user_availability": {"user_id": ours.available_user},
        "create_lead": {"name": "Mallory", "intent": "wants in"},
        "hangup_call": {},
        ours.transfer_to_user_tool: {},
        ours.transfer_to_queue_tool: {},
        ours.api_request_tool: {"order_id": "1001"},
    }


TOOL_NAMES = [
    "transfer_call",
    "is_office_open",
    "lookup_contact",
    "check_user_availability",
    "create_lead",
    "hangup_call",
    "transfer_to_user",
    "transfer_to_queue",
    "api_request",
]


def tool_named(ours: Any, kind: str) -> str:
    return {
        "transfer_to_user": ours.transfer_to_user_tool,
        "transfer_to_queue": ours.transfer_to_queue_tool,
        "api_request": ours.api_request_tool,
    }.get(kind, kind)


@dataclass(frozen=True)
class Refusal:
    name: str
    status: int
    error: str
    change: Callable[[dict[str, str], Any], dict[str, str]]
    body: Callable[[bytes], bytes] = lambda body: body


def _keys(headers: dict[str, str], key: str | None) -> dict[str, str]:
    rest = {k: v for k, v in headers.items() if k != "X-API-Key"}
    return rest if key is None else {**rest, "X-API-Key": key}


REFUSALS = [
    Refusal("missing key", 401, "unauthorized", lambda h, k: _keys(h, None)),
    Refusal("empty key", 401, "unauthorized", lambda h, k: _keys(h, "")),
    Refusal("malformed key", 401, "unauthorized", lambda h, k: _keys(h, "' OR 1=1 --")),
    Refusal("unknown key", 401, "unauthorized", lambda h, k: _keys(h, "sbk_0123456789abcdef_" + "A" * 43)),
    Refusal("tampered key", 401, "unauthorized", lambda h, k: _keys(h, k.ours[:-4] + "AAAA")),
    Refusal("revoked key", 401, "unauthorized", lambda h, k: _keys(h, k.revoked)),
    Refusal("rival key for our account", 403, "wrong_account", lambda h, k: _keys(h, k.rival)),
    Refusal("our key naming the rival account", 403, "wrong_account", lambda h, k: {**h, "account_id": "rival"}),
    Refusal("foreign origin", 403, "forbidden_origin", lambda h, k: {**h, "Origin": "https://evil.example"}),
    Refusal("null origin", 403, "forbidden_origin", lambda h, k: {**h, "Origin": "null"}),
    Refusal("foreign host", 403, "forbidden_host", lambda h, k: {**h, "Host": "evil.example"}),
    Refusal(
        "oversized body",
        413,
        "body_too_large",
        lambda h, k: h,
        lambda body: body[:-1] + b', "pad": "' + b"x" * 300_000 + b'"}',
    ),
]


@dataclass(frozen=True)
class Keys:
    ours: str
    revoked: str
    rival: str


@pytest.fixture(scope="module")
async def keys(secured) -> Keys:
    revoked = await secured.new_key("soon revoked")
    await secured.revoke(revoked)
    return Keys(secured.ours.api_key, revoked, secured.rival.api_key)


@pytest.fixture(scope="module")
async def strict_key(secured, sec) -> str:
    """A key whose burst on the strict gateway is spent (it refills one request per 100 s)."""
    key = await secured.new_key("rate limited")
    body, _ = sec.mcp_message("2025", "tools/list")
    async with httpx.AsyncClient(timeout=30) as http:
        for _ in range(10):
            headers = {**secured.headers(f"warm-{uuid4().hex[:8]}"), "X-API-Key": key}
            if (await http.post(secured.strict_mcp_url, json=body, headers=headers)).status_code == 429:
                return key
    raise AssertionError("the strict gateway never limited the key")


def without_date(response: httpx.Response) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in response.headers.items() if k != "date")


@pytest.mark.parametrize("kind", TOOL_NAMES)
async def test_every_refusal_reads_and_writes_nothing(secured, sec, keys, strict_key, kind) -> None:
    name = tool_named(secured.ours, kind)
    arguments = tools(secured.ours)[name]
    before = await secured.stored()
    unauthorized: list[httpx.Response] = []
    refused_calls = []
    async with httpx.AsyncClient(timeout=30) as http:
        for era in ERAS:
            for refusal in REFUSALS:
                call_id = f"refused-{uuid4().hex[:10]}"
                message, protocol = sec.tool_call(era, name, arguments)
                headers = refusal.change({**secured.headers(call_id), **protocol}, keys)
                body = refusal.body(json.dumps(message).encode())
                response = await http.post(secured.mcp_url, content=body, headers=headers)
                assert (response.status_code, response.json()["error"]) == (refusal.status, refusal.error), (
                    f"{era} {refusal.name}: {response.status_code} {response.text[:300]}"
                )
                if refusal.status == 401:
                    unauthorized.append(response)
                refused_calls.append(call_id)

            call_id = f"limited-{uuid4().hex[:10]}"
            message, protocol = sec.tool_call(era, name, arguments)
            headers = {**secured.headers(call_id), **protocol, "X-API-Key": strict_key}
            limited = await http.post(secured.strict_mcp_url, json=message, headers=headers)
            assert limited.status_code == 429 and limited.json()["error"] == "rate_limited", limited.text
            assert int(limited.headers["Retry-After"]) >= 1
            refused_calls.append(call_id)

    assert len({r.content for r in unauthorized}) == 1, "every 401 must carry the same body"
    assert len({tuple(without_date(r)) for r in unauthorized}) == 1, "every 401 must carry the same headers"
    for call_id in refused_calls:
        assert await secured.processed(call_id) == {s: [] for s in ("persona", "contacts", "leads", "call-control")}
    assert await secured.stored() == before


@pytest.mark.parametrize("kind", TOOL_NAMES)
async def test_a_persona_of_another_account_is_refused(secured, sec, kind) -> None:
    name = tool_named(secured.ours, kind)
    before = await secured.stored()
    async with httpx.AsyncClient(timeout=30) as http:
        for era in ERAS:
            call_id = f"rival-persona-{uuid4().hex[:10]}"
            message, protocol = sec.tool_call(era, name, tools(secured.ours)[name])
            headers = {**secured.headers(call_id, persona_id=sec.RIVAL_PERSONA), **protocol}
            response = await http.post(secured.mcp_url, json=message, headers=headers)
            error = response.json()["error"]
            assert error["code"] == -32602 and f"No persona {sec.RIVAL_PERSONA!r} in this account" in error["message"]
            assert sec.leaks(response.text) == []
            # Finding the persona is the only thing that happened: persona.list_tools, a read,
            # which keeps no processed-command record; nothing else reached any service.
            assert await secured.processed(call_id) == {s: [] for s in ("persona", "contacts", "leads", "call-control")}
    assert await secured.stored() == before


async def test_a_user_of_another_account_is_unknown(secured, sec) -> None:
    call_id = f"rival-user-{uuid4().hex[:10]}"
    before = await secured.stored()
    async with httpx.AsyncClient(timeout=30) as http:
        for era in ERAS:
            message, protocol = sec.tool_call(era, "check_user_availability", {"user_id": sec.RIVAL_USER})
            response = await http.post(secured.mcp_url, json=message, headers={**secured.headers(call_id), **protocol})
            result = response.json()["result"]
            assert result["isError"] is True
            assert result["content"][0]["text"] == f"There is no user {sec.RIVAL_USER!r} in this account."
    assert await secured.stored() == before


async def test_a_tool_of_another_account_is_unknown(secured, sec) -> None:
    call_id = f"rival-tool-{uuid4().hex[:10]}"
    async with httpx.AsyncClient(timeout=30) as http:
        for era in ERAS:
            listing, protocol = sec.mcp_message(era, "tools/list")
            listed = await http.post(secured.mcp_url, json=listing, headers={**secured.headers(call_id), **protocol})
            assert sec.RIVAL_TOOL not in [tool["name"] for tool in listed.json()["result"]["tools"]]
            message, protocol = sec.tool_call(era, sec.RIVAL_TOOL)
            response = await http.post(secured.mcp_url, json=message, headers={**secured.headers(call_id), **protocol})
            assert response.json()["error"]["message"] == f"Unknown tool: {sec.RIVAL_TOOL}"
    assert "persona.run_api_request" not in (await secured.processed(call_id))["persona"]


async def test_a_transfer_tool_cannot_point_at_another_accounts_user_or_queue(secured, sec) -> None:
    tools_url = f"{secured.persona_admin(secured.ours.account_id)}/personas/{secured.ours.persona_id}/tools"
    targets = {
        "to_rival_user": {"kind": "transfer_to_user", "user_id": sec.RIVAL_USER},
        "to_rival_queue": {"kind": "transfer_to_queue", "queue_id": "rival-only-queue"},
    }
    async with httpx.AsyncClient(headers=secured.admin_headers, timeout=30) as http:
        rival_queue = f"{secured.persona_admin(secured.rival.account_id)}/queues/rival-only-queue"
        assert (await http.put(rival_queue, json={"name": "Rival queue", "extension": "998"})).status_code == 201
        for tool_id, target in targets.items():
            body = {**target, "name": tool_id, "description": "Reach into another account."}
            response = await http.put(f"{tools_url}/{tool_id}", json=body)
            assert response.status_code == 422, response.text
            assert (await http.get(f"{tools_url}/{tool_id}")).status_code == 404


async def test_the_same_tools_with_our_key_are_served(secured, sec) -> None:
    """The refusals above are refusals: with our own key and persona every tool reaches its service."""
    async with httpx.AsyncClient(timeout=30) as http:
        for name, arguments in tools(secured.ours).items():
            call_id = f"allowed-{uuid4().hex[:10]}"
            message, protocol = sec.tool_call("2025", name, arguments)
            response = await http.post(secured.mcp_url, json=message, headers={**secured.headers(call_id), **protocol})
            assert "result" in response.json(), response.text
            result = response.json()["result"]
            processed = await secured.processed(call_id)
            # A tool with a side effect leaves its command's record; a read keeps none and shows
            # it was served by its structured answer.
            recorded = any(t != "persona.list_tools" for types in processed.values() for t in types)
            assert recorded or (not result["isError"] and result.get("structuredContent")), (name, processed, result)
