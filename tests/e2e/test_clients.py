"""The clients voice agents are built with, run for real against the running system.

Each client is a script in `tests/e2e/clients/` that lists the tools, looks the caller up
(`lookup_contact`, a tool with arguments) and logs a lead (`create_lead`, side-effecting) with the
headers of a live call on the simulated PBX, and prints what it got as JSON. The tests check that
the client saw every tool with its required arguments, that both calls answered, and that the lead
is in leads-svc's database. The scripts run in the workspace's environment, except those whose
package cannot share its lock (`mcp` 1.x), which uv runs in an environment of their own with pinned
versions; the TypeScript SDK runs on the Node 22 that `clients/node` installs from npm. The README's
client examples are the scripts' `README: begin` ... `README: end` parts, word for word.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from switchboard.mongo import connect
from switchboard.testing.infra import REPO_ROOT

CLIENTS = Path(__file__).resolve().parent / "clients"
INSTALL_SECONDS = 300
"""A first run installs an isolated environment or npm packages (a minute or so); later runs take seconds."""

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(INSTALL_SECONDS + 120)]


async def run_client(*command: str | Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a client script; its JSON report (the test fails with the script's stderr when it failed)."""
    process = await asyncio.create_subprocess_exec(
        *map(str, command),
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(INSTALL_SECONDS):
        out, err = await process.communicate()
    assert process.returncode == 0, f"{' '.join(map(str, command[:2]))} failed:\n{err.decode()[-6000:]}"
    return json.loads(out.decode().strip().splitlines()[-1])


def call_arguments(e2e, call: str) -> list[str]:
    """The command line of a client script for call `call`: endpoint, the call's headers, the caller."""
    headers = e2e.demo.headers(call, caller_id_number=e2e.demo.caller_number)
    return [
        "--url",
        e2e.demo.mcp_url,
        *(part for name, value in headers.items() for part in ("--header", f"{name}: {value}")),
        "--phone",
        e2e.demo.caller_number,
    ]


async def advertised(e2e, call: str) -> list[dict[str, Any]]:
    """The tools as the gateway lists them, with the arguments each requires."""
    async with e2e.client(call) as client:
        return [{"name": t.name, "required": t.input_schema.get("required", [])} for t in (await client.list_tools()).tools]


async def cases_of(e2e, call: str) -> list[dict[str, Any]]:
    client = connect(e2e.env["SWITCHBOARD_MONGO_URI"], app_name="e2e-tests")
    try:
        db = client[e2e.env["SWITCHBOARD_LEADS_MONGO_DATABASE"]]
        return await db["cases"].find({"account_id": e2e.demo.account_id, "call_id": call}).to_list()
    finally:
        await client.close()


async def assert_took_the_call(e2e, call: str, report: dict[str, Any]) -> None:
    """The client saw every tool with its required arguments, found Jane Doe and logged one lead."""
    assert report["tools"] == await advertised(e2e, call)
    names = [t["name"] for t in report["tools"]]
    assert names[:6] == ["transfer_call", "is_office_open", "lookup_contact", "check_user_availability", "create_lead", "hangup_call"]
    assert names[6:] == e2e.demo.custom_tools
    lookup, lead = report["lookup"], report["lead"]
    assert lookup["is_error"] is False, lookup
    assert "Jane Doe" in lookup["text"], lookup
    assert lead["is_error"] is False, lead
    if lead["structured"] is not None:
        assert lead["structured"]["lead_id"] and lead["structured"]["case_id"], lead
        assert not lead["structured"].get("repeat"), lead
    [case] = await cases_of(e2e, call)
    assert case["name"] == "Jane Doe"
    assert case["_id"] in lead["text"] or (lead["structured"] or {}).get("case_id") == case["_id"], (case, lead)


@pytest.mark.parametrize("mode", ["auto", "legacy"], ids=["2026-07-28", "2025-era"])
async def test_mcp_python_sdk(e2e, mode) -> None:
    call = await e2e.start_call()
    report = await run_client(sys.executable, CLIENTS / "mcp_python_sdk.py", *call_arguments(e2e, call), "--mode", mode)
    await assert_took_the_call(e2e, call, report)


def mcp_result(result: dict[str, Any]) -> dict[str, Any]:
    """An MCP tool result as a client script reports it, from the result's JSON (snake_case or camelCase)."""
    return {
        "is_error": result.get("is_error", result.get("isError")),
        "text": " ".join(c["text"] for c in result["content"] if c["type"] == "text"),
        "structured": result.get("structured_content", result.get("structuredContent")),
    }


class GeminiStandIn:
    """The Gemini API's `generateContent` on a local port, replying with the turns it is given in order,
    and keeping the requests it got (what the SDK declared and sent back)."""

    def __init__(self, turns: list[list[dict[str, Any]]]) -> None:
        self.turns = list(turns)
        self.requests: list[dict[str, Any]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stand_in.requests.append({"path": self.path, "body": body})
                if not self.path.endswith(":generateContent") or not stand_in.turns:
                    self.reply(404, {"error": {"code": 404, "message": f"no turn for {self.path}", "status": "NOT_FOUND"}})
                    return
                parts = stand_in.turns.pop(0)
                self.reply(200, {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}]})

            def reply(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def function_responses(self) -> dict[str, dict[str, Any]]:
        """What the SDK sent back to the model for each tool it called, by tool name."""
        return {
            part["functionResponse"]["name"]: part["functionResponse"]["response"]
            for request in self.requests
            for content in request["body"].get("contents", [])
            for part in content.get("parts", [])
            if "functionResponse" in part
        }


async def test_google_genai_converts_every_tool_and_runs_gemini_s_function_calls(e2e) -> None:
    call = await e2e.start_call()
    gemini = GeminiStandIn(
        [
            [{"functionCall": {"name": "lookup_contact", "args": {"phone_number": e2e.demo.caller_number}}}],
            [{"functionCall": {"name": "create_lead", "args": {"name": "Jane Doe", "intent": "Delivery date of order 1001"}}}],
            [{"text": "Thank you, Jane. I have noted your question about order 1001."}],
        ]
    )
    try:
        report = await run_client(
            sys.executable, CLIENTS / "google_genai_agent.py", *call_arguments(e2e, call), "--gemini-base-url", gemini.url
        )
    finally:
        gemini.close()
    assert report["answer"].startswith("Thank you, Jane")
    [declared] = {json.dumps(r["body"]["tools"]) for r in gemini.requests}  # the same on every turn
    declarations = [d for tool in json.loads(declared) for d in tool["functionDeclarations"]]
    answered = gemini.function_responses()
    await assert_took_the_call(
        e2e,
        call,
        {
            "tools": [{"name": d["name"], "required": d.get("parameters", {}).get("required", [])} for d in declarations],
            "lookup": mcp_result(answered["lookup_contact"]["result"]),
            "lead": mcp_result(answered["create_lead"]["result"]),
        },
    )


async def test_openai_agents_converts_the_tools_to_strict_schemas_and_calls_them(e2e) -> None:
    call = await e2e.start_call()
    report = await run_client(sys.executable, CLIENTS / "openai_agents_client.py", *call_arguments(e2e, call))
    await assert_took_the_call(e2e, call, report)
    assert [t["name"] for t in report["converted"]] == [t["name"] for t in report["tools"]]
    for tool in report["converted"]:
        if tool["schema"]["properties"]:
            assert tool["strict"] is True, tool
            assert tool["schema"]["additionalProperties"] is False, tool
        else:
            # The SDK makes a strict schema of an object without properties only when the server says
            # `additionalProperties: false`, which google-genai's adapter cannot read; the model calls
            # such a tool with `{}` either way.
            assert tool["schema"] == {"type": "object", "properties": {}}, tool
    assert report["office"]["is_error"] is False and report["office"]["text"].startswith("Office is"), report["office"]


@pytest.mark.skipif(shutil.which("npm") is None, reason="clients/node installs Node 22 and the SDK with npm")
async def test_mcp_typescript_sdk(e2e) -> None:
    call = await e2e.start_call()
    report = await run_client(CLIENTS / "node", "mcp_typescript_sdk.mjs", *call_arguments(e2e, call))
    await assert_took_the_call(e2e, call, report)


async def test_langchain_mcp_adapters(e2e) -> None:
    call = await e2e.start_call()
    report = await run_client(
        REPO_ROOT / "scripts" / "uv",
        "run",
        "--quiet",
        "--isolated",
        "--no-project",
        "--python",
        sys.executable,
        "--with-requirements",
        CLIENTS / "langchain-requirements.txt",
        "python",
        CLIENTS / "langchain_client.py",
        *call_arguments(e2e, call),
    )
    await assert_took_the_call(e2e, call, report)


README_EXAMPLE = re.compile(r"<!-- example: (?P<path>[\w/.-]+) -->\n```\w*\n(?P<code>.*?)```", re.DOTALL)
SCRIPT_EXAMPLE = re.compile(r"^(?:# |// )README: begin\n(?P<code>.*?)^(?:# |// )README: end\n", re.DOTALL | re.MULTILINE)


def test_the_readmes_client_examples_are_the_ones_the_suite_runs() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    shown = {m["path"]: m["code"] for m in README_EXAMPLE.finditer(readme)}
    scripts = sorted(p for p in CLIENTS.iterdir() if SCRIPT_EXAMPLE.search(p.read_text()))
    assert sorted(shown) == [str(p.relative_to(REPO_ROOT)) for p in scripts]
    for path in scripts:
        assert shown[str(path.relative_to(REPO_ROOT))] == SCRIPT_EXAMPLE.search(path.read_text())["code"], path
