"""A scripted demo agent: one simulated phone call, walked through with the official MCP client.

No language model: the script plays the AI voice agent's side of a realistic call. It starts the
call on call-control's simulated PBX, then looks up the caller, checks office hours and two
colleagues' availability, checks an order through the account's API Request tool, logs a lead and
transfers the caller to the support queue; each tool call is printed with its result text and its
latency. Finally it shows what the simulated PBX did with the call.

    scripts/uv run --frozen python scripts/demo_call.py --api-key sbk_...
    scripts/run --demo          # make run, then this once everything is up

Exit status 0 when every step answered without an error, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import httpx2
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

sys.path.insert(0, str(Path(__file__).resolve().parent))

import seed  # noqa: E402  (scripts/seed.py)

ERAS = ("2026-07-28", "legacy")
"""`legacy`: a 2025-era client that initializes first; `2026-07-28`: stateless requests, no handshake."""


@contextlib.asynccontextmanager
async def mcp_client(url: str, headers: Mapping[str, str], *, mode: str = "2026-07-28") -> AsyncIterator[Client]:
    """The official MCP client over Streamable HTTP, sending `headers` with every request."""
    http = httpx2.AsyncClient(headers=dict(headers), timeout=httpx2.Timeout(30))
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode, cache=None) as client:
        yield client


@dataclass(frozen=True)
class Step:
    say: str
    tool: str
    arguments: dict[str, Any]


def conversation(demo: seed.DemoSystem) -> list[Step]:
    order = demo.known_orders[0]
    return [
        Step("Who is calling?", "lookup_contact", {"phone_number": demo.caller_number}),
        Step("Is the office open right now?", "is_office_open", {}),
        Step("The caller asks for Bob.", "check_user_availability", {"user_id": demo.dnd_user}),
        Step("Bob is busy; is Alice free?", "check_user_availability", {"user_id": demo.available_user}),
        Step(f"The caller asks about order {order}.", demo.api_request_tool, {"order_id": order}),
        Step(
            "Log the enquiry.",
            "create_lead",
            {
                "name": "Jane Doe",
                "intent": f"Delivery date of order {order}",
                "classification": "customer",
                "summary": f"Asked when order {order} arrives; wants to change the delivery address.",
            },
        ),
        Step("Hand over to the support team.", demo.transfer_to_queue_tool, {}),
    ]


def place_call(call_control_url: str, admin_token: str, demo: seed.DemoSystem, call_id: str) -> None:
    response = httpx.post(
        f"{call_control_url}/pbx/v1/calls",
        headers={"Authorization": f"Bearer {admin_token}"},
        json={
            "account_id": demo.account_id,
            "call_id": call_id,
            "persona_id": demo.persona_id,
            "caller_number": demo.caller_number,
        },
        timeout=30,
    )
    response.raise_for_status()


def pbx_record(call_control_url: str, admin_token: str, demo: seed.DemoSystem, call_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{call_control_url}/pbx/v1/calls/{call_id}",
        params={"account_id": demo.account_id},
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()


def describe_action(action: Mapping[str, Any]) -> str:
    where = f" to {action['destination']}" if action.get("destination") else ""
    return f"{action['action']}{where} (asked by the {action['by']})"


async def walk(demo: seed.DemoSystem, call_id: str, *, mode: str) -> bool:
    """Run the conversation on a started call; True when no step answered with an error."""
    as_expected = True
    headers = demo.headers(call_id, caller_id_number=demo.caller_number)
    async with mcp_client(demo.mcp_url, headers, mode=mode) as client:
        started = time.perf_counter()
        tools = [tool.name for tool in (await client.list_tools()).tools]
        print(f"agent  tools/list -> {', '.join(tools)}  ({(time.perf_counter() - started) * 1000:.0f} ms)")
        for step in conversation(demo):
            print(f"\nagent  ({step.say})")
            print(f"  call   {step.tool} {json.dumps(step.arguments)}")
            started = time.perf_counter()
            result = await client.call_tool(step.tool, step.arguments)
            elapsed = (time.perf_counter() - started) * 1000
            text = " ".join(c.text for c in result.content if getattr(c, "text", None))
            marker = "error " if result.is_error else "result"
            print(f"  {marker} {text}  ({elapsed:.0f} ms)", flush=True)
            as_expected = as_expected and not result.is_error
    return as_expected


def arguments(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ
    gateway_port = env.get("SWITCHBOARD_GATEWAY_PORT") or "9443"
    call_control_port = env.get("SWITCHBOARD_CALL_CONTROL_HTTP_PORT") or "9502"
    p = argparse.ArgumentParser(description="Walk one simulated call through the demo account's tools.")
    p.add_argument("--api-key", required=True, help="the gateway API key `make run` printed")
    p.add_argument("--mcp-url", default=f"http://127.0.0.1:{gateway_port}{seed.MCP_PATH}")
    p.add_argument("--call-control-url", default=f"http://127.0.0.1:{call_control_port}")
    p.add_argument("--admin-token", default=env.get("SWITCHBOARD_ADMIN_TOKEN") or seed.DEMO_ADMIN_TOKEN)
    p.add_argument("--account", default=seed.ACCOUNT_ID)
    p.add_argument("--persona", default=seed.PERSONA_ID)
    p.add_argument("--era", choices=ERAS, default=ERAS[0], help="MCP protocol era of the client")
    return p.parse_args(argv)


def demo_of(args: argparse.Namespace) -> seed.DemoSystem:
    return seed.DemoSystem(api_key=args.api_key, mcp_url=args.mcp_url, account_id=args.account, persona_id=args.persona)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    demo = demo_of(args)
    call_id = f"demo-{uuid4().hex[:10]}"
    print(f"\ndemo: {demo.caller_number} calls the demo line; call {call_id} starts on the simulated PBX")
    try:
        place_call(args.call_control_url, args.admin_token, demo, call_id)
    except httpx.HTTPError as e:
        print(f"demo: the simulated PBX at {args.call_control_url} did not start the call: {e}", file=sys.stderr)
        return 1
    print(f"demo: the agent connects to {demo.mcp_url} ({args.era} MCP client)\n")
    ok = asyncio.run(walk(demo, call_id, mode=args.era))
    record = pbx_record(args.call_control_url, args.admin_token, demo, call_id)
    actions = "; ".join(describe_action(a) for a in record["actions"]) or "none"
    print(f"\ndemo: the simulated PBX says the call is {record['state']}; what it did: {actions}")
    print("demo: every step answered as expected" if ok else "demo: some steps did not answer as expected")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
