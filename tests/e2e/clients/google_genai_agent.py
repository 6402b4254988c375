"""The Google Gen AI SDK (`google-genai`) with Switchboard's tools through its own MCP adapter.

    python tests/e2e/clients/google_genai_agent.py --url URL --header "X-API-Key: ..." ... --phone +14155550100 \
        [--gemini-base-url http://127.0.0.1:PORT]

One turn of a call: the MCP session is passed to Gemini as a tool; the SDK converts every
listed tool into a function declaration and runs the function calls Gemini asks for through the
session, until Gemini answers in words. With `--gemini-base-url` the model's replies come from a stand-in of the
Gemini API there (the suite's); without it, from Gemini itself (GEMINI_API_KEY).

The part between the markers is the README's example, word for word.
"""

from __future__ import annotations

import asyncio

import cli
import httpx2
from google.genai import types
from mcp.client.streamable_http import streamable_http_client

# README: begin
from google import genai
from mcp.client import Client


async def answer(mcp: Client, gemini: genai.Client, caller_said: str) -> str:
    """One turn of the call: Gemini decides, and the SDK's own MCP adapter lists Switchboard's tools,
    declares them to Gemini and runs the calls Gemini asks for, until Gemini answers in words."""
    config = {  # a dict: google-genai 3.6.1 cannot copy a GenerateContentConfig that holds a live session
        "system_instruction": "You are the receptionist of Acme Supplies, on a live phone call.",
        "tools": [mcp.session],
    }
    response = await gemini.aio.models.generate_content(model="gemini-2.5-flash", contents=caller_said, config=config)
    return response.text
# README: end


async def main() -> None:
    args = cli.arguments("Gemini's function calling with Switchboard's tools, through google-genai's MCP adapter.")
    options = types.HttpOptions(base_url=args.gemini_base_url) if args.gemini_base_url else None
    gemini = genai.Client(api_key="stand-in" if args.gemini_base_url else None, http_options=options)
    async with (
        httpx2.AsyncClient(headers=args.headers, timeout=30) as http,
        Client(streamable_http_client(args.url, http_client=http)) as mcp,
    ):
        said = await answer(mcp, gemini, f"Hi, I'm calling from {args.phone} about the delivery date of order 1001.")
    cli.emit({"answer": said})


if __name__ == "__main__":
    asyncio.run(main())
