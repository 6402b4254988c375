"""The OpenAI Agents SDK (`openai-agents`) with Switchboard as an MCP server, strict schemas on.

    python tests/e2e/clients/openai_agents_client.py --url URL --header "X-API-Key: ..." ... --phone +14155550100

Lists the tools as the agent converts them for the model (strict JSON schemas where the SDK can
make one), then looks the caller up, logs a lead and asks whether the office is open through the server's `call_tool`.

The part between the markers is the README's example, word for word.
"""

from __future__ import annotations

import asyncio

import cli
from agents import RunContextWrapper

# README: begin
from agents import Agent
from agents.mcp import MCPServerStreamableHttp


def switchboard(url: str, headers: dict[str, str]) -> MCPServerStreamableHttp:
    """Switchboard's tools during one call: `async with switchboard(url, headers) as server: ...`."""
    return MCPServerStreamableHttp(name="switchboard", params={"url": url, "headers": headers, "timeout": 30})


def receptionist(server: MCPServerStreamableHttp) -> Agent:
    """The agent on the call; `await Runner.run(receptionist(server), caller_said)` runs one turn."""
    return Agent(
        name="Receptionist",
        instructions="You are the receptionist of Acme Supplies, on a live phone call.",
        mcp_servers=[server],
        mcp_config={"convert_schemas_to_strict": True},
    )
# README: end


def result(r) -> dict:
    return {"is_error": r.is_error, "text": " ".join(c.text for c in r.content if c.type == "text"),
            "structured": r.structured_content}


async def main() -> None:
    args = cli.arguments("The OpenAI Agents SDK's MCP adapter against Switchboard, strict schemas on.")
    async with switchboard(args.url, args.headers) as server:
        listed = await server.list_tools()
        converted = await receptionist(server).get_mcp_tools(RunContextWrapper(context=None))
        contact = await server.call_tool("lookup_contact", {"phone_number": args.phone})
        lead = await server.call_tool("create_lead", {"name": "Jane Doe", "intent": "Delivery date of order 1001"})
        office = await server.call_tool("is_office_open", {})
    cli.emit({
        "tools": [{"name": t.name, "required": t.input_schema.get("required", [])} for t in listed],
        "converted": [{"name": t.name, "strict": t.strict_json_schema, "schema": t.params_json_schema} for t in converted],
        "lookup": result(contact),
        "lead": result(lead),
        "office": result(office),
    })


if __name__ == "__main__":
    asyncio.run(main())
