"""The MCP Python SDK (`mcp` 2.x) during one call: list the tools, look the caller up, log a lead.

    python tests/e2e/clients/mcp_python_sdk.py --url URL --header "X-API-Key: ..." ... --phone +14155550100 [--mode legacy]

The part between the markers is the README's example, word for word (tests/e2e/test_clients.py
checks that).
"""

from __future__ import annotations

import asyncio

import cli

# README: begin
import httpx2
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client


async def take_the_call(url: str, headers: dict[str, str], phone: str, *, mode: str = "auto"):
    """What an agent does during one call: list the tools, look the caller up, log a lead."""
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        tools = (await client.list_tools()).tools
        contact = await client.call_tool("lookup_contact", {"phone_number": phone})
        lead = await client.call_tool("create_lead", {"name": "Jane Doe", "intent": "Delivery date of order 1001"})
        # contact.content[0].text: the sentence for the model; contact.structured_content: the same
        # as data, matching the tool's outputSchema (lead.structured_content: lead id and case id)
        return tools, contact, lead
# README: end


def result(r) -> dict:
    return {"is_error": r.is_error, "text": " ".join(c.text for c in r.content if c.type == "text"),
            "structured": r.structured_content}


async def main() -> None:
    args = cli.arguments("The MCP Python SDK against Switchboard.")
    tools, contact, lead = await take_the_call(args.url, args.headers, args.phone, mode=args.mode)
    cli.emit({
        "tools": [{"name": t.name, "required": t.input_schema.get("required", [])} for t in tools],
        "lookup": result(contact),
        "lead": result(lead),
    })


if __name__ == "__main__":
    asyncio.run(main())
