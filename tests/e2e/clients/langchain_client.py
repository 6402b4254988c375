"""LangChain's MCP adapters (`langchain-mcp-adapters`, on `mcp` 1.x) with Switchboard's tools.

    uv run --isolated --no-project --with-requirements tests/e2e/clients/langchain-requirements.txt \
        python tests/e2e/clients/langchain_client.py --url URL --header "X-API-Key: ..." ... --phone +14155550100

Loads the tools as LangChain tools, then looks the caller up and logs a lead by invoking them as a
model's tool calls. langchain-mcp-adapters requires `mcp` 1.x, so it cannot share the workspace's
environment (`mcp` 2.x): the suite runs it in one of its own.

The part between the markers is the README's example, word for word.
"""

from __future__ import annotations

import asyncio

import cli

# README: begin
from langchain_mcp_adapters.client import MultiServerMCPClient


def switchboard(url: str, headers: dict[str, str]) -> MultiServerMCPClient:
    """Switchboard's tools during one call, as LangChain tools: `tools = await switchboard(url, headers).get_tools()`,
    then give them to a model (`model.bind_tools(tools)`) or an agent (`create_agent(model, tools)`)."""
    return MultiServerMCPClient({"switchboard": {"transport": "streamable_http", "url": url, "headers": headers}})
# README: end


async def invoke(tool, arguments: dict) -> dict:
    """Invoke `tool` as a model's tool call does; the ToolMessage as a report."""
    message = await tool.ainvoke({"type": "tool_call", "id": f"call-{tool.name}", "name": tool.name, "args": arguments})
    blocks = message.content if isinstance(message.content, list) else [message.content]
    text = " ".join(b if isinstance(b, str) else b.get("text", "") for b in blocks)
    artifact = message.artifact or {}
    return {"is_error": message.status == "error", "text": text, "structured": artifact.get("structured_content")}


async def main() -> None:
    args = cli.arguments("LangChain's MCP adapters against Switchboard.")
    tools = await switchboard(args.url, args.headers).get_tools()
    by_name = {t.name: t for t in tools}
    contact = await invoke(by_name["lookup_contact"], {"phone_number": args.phone})
    lead = await invoke(by_name["create_lead"], {"name": "Jane Doe", "intent": "Delivery date of order 1001"})
    cli.emit({
        "tools": [{"name": t.name, "required": t.args_schema.get("required", [])} for t in tools],
        "lookup": contact,
        "lead": lead,
    })


if __name__ == "__main__":
    asyncio.run(main())
