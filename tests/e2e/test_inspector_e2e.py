"""The MCP Inspector CLI (scripts/inspector: npm @modelcontextprotocol/inspector on a Node 22 it
installs once under ~/.cache/switchboard) against the running gateway, with the context headers:
what a developer does to poke at Switchboard by hand."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from typing import Any

import pytest

from switchboard.testing.infra import REPO_ROOT

INSTALL_AND_RUN_SECONDS = 300
"""The first run installs the Inspector and Node from npm (about a minute); later runs take seconds."""

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(INSTALL_AND_RUN_SECONDS + 240),
    pytest.mark.skipif(shutil.which("npm") is None, reason="scripts/inspector installs the Inspector with npm"),
]


async def inspector(e2e, call_id: str, *arguments: str, tmp_path) -> tuple[int, Any, str]:
    """Run `scripts/inspector --cli` with the demo account's headers for `call_id`: (exit code, JSON out, stderr)."""
    headers = [
        part
        for name, value in e2e.demo.headers(call_id, caller_id_number=e2e.demo.caller_number).items()
        for part in ("--header", f"{name}: {value}")
    ]
    process = await asyncio.create_subprocess_exec(
        str(REPO_ROOT / "scripts" / "inspector"),
        "--cli",
        e2e.demo.mcp_url,
        "--transport",
        "http",
        *headers,
        *arguments,
        env={**os.environ, "MCP_CATALOG_PATH": str(tmp_path / "inspector-catalog.json")},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(INSTALL_AND_RUN_SECONDS):
        out, err = await process.communicate()
    text = out.decode()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = text
    return process.returncode or 0, parsed, err.decode()


async def test_inspector_lists_the_personas_tools(e2e, call_id, tmp_path) -> None:
    code, listing, err = await inspector(e2e, call_id, "--method", "tools/list", tmp_path=tmp_path)
    assert code == 0, err
    names = [tool["name"] for tool in listing["tools"]]
    assert names[:6] == ["transfer_call", "is_office_open", "lookup_contact", "check_user_availability", "create_lead", "hangup_call"]
    assert names[6:] == e2e.demo.custom_tools
    assert all("outputSchema" in tool for tool in listing["tools"])


async def test_inspector_calls_global_and_custom_tools_during_a_call(e2e, tmp_path) -> None:
    call = await e2e.start_call()
    lookup = await inspector(
        e2e,
        call,
        "--method",
        "tools/call",
        "--tool-name",
        "lookup_contact",
        "--tool-arg",
        f'phone_number="{e2e.demo.caller_number}"',
        tmp_path=tmp_path,
    )
    order = await inspector(
        e2e,
        call,
        "--method",
        "tools/call",
        "--tool-name",
        e2e.demo.api_request_tool,
        "--tool-arg",
        'order_id="1002"',
        tmp_path=tmp_path,
    )
    transfer = await inspector(
        e2e, call, "--method", "tools/call", "--tool-name", e2e.demo.transfer_to_queue_tool, tmp_path=tmp_path
    )
    for code, result, err in (lookup, order, transfer):
        assert code == 0, err
        assert result["isError"] is False, result
    assert lookup[1]["structuredContent"]["contacts"][0]["name"] == "Jane Doe"
    assert '"status": "processing"' in order[1]["structuredContent"]["body"]
    assert transfer[1]["content"][0]["text"].startswith("Transfer accepted")
    assert [a["destination"] for a in (await e2e.pbx_call(call))["actions"]] == ["300"]
