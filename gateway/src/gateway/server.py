"""The MCP server: the SDK's low-level `Server` (tools/list differs per persona), served statelessly.

The HTTP edge (edge.py) authenticates each request and puts the `Caller` and the request's span in
the ASGI scope; the SDK hands the handlers the HTTP request (`ctx.request`), whose scope is that
same scope, so handlers read who is calling from there.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_REQUEST
from opentelemetry import trace

from gateway.model import Caller
from gateway.tools import Tools

CALLER_SCOPE_KEY = "switchboard.caller"
SPAN_SCOPE_KEY = "switchboard.span"

INSTRUCTIONS = (
    "Tools for the phone call you are handling: transfer or end the call, check office hours, look up "
    "contacts, check a colleague's availability, record a lead, and this account's own tools. Each tool "
    "answers with a sentence to use in the conversation; when a tool reports an error, tell the caller "
    "plainly and carry on."
)


def _caller(ctx: ServerRequestContext[Any, Any]) -> tuple[Caller, trace.Span | None]:
    request = ctx.request
    scope = getattr(request, "scope", None) or {}
    caller = scope.get(CALLER_SCOPE_KEY)
    if not isinstance(caller, Caller):
        raise MCPError(code=INVALID_REQUEST, message="This request carries no authenticated call context.")
    return caller, scope.get(SPAN_SCOPE_KEY)


def build_server(tools: Tools, *, version: str) -> Server[Any]:
    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        caller, _ = _caller(ctx)
        return await tools.list_tools(caller)

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        caller, span = _caller(ctx)
        return await tools.call_tool(caller, params.name, params.arguments, span)

    server: Server[Any] = Server(
        "switchboard",
        version=version,
        title="Switchboard",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        # Our schemas declare no `Mcp-Param-*` headers; without this the SDK would run tools/list
        # before every 2026-era tools/call just to find that out.
        get_tool_input_schema=lambda name: None,
    )
    # The gateway's own spans (HTTP request -> tool call) make the trace; the SDK's per-message span
    # would parent itself on a trace id the client chose.
    server.middleware = []
    return server


def session_manager(server: Server[Any], *, max_body_bytes: int) -> StreamableHTTPSessionManager:
    return StreamableHTTPSessionManager(
        app=server,
        json_response=True,
        stateless=True,
        # Host and Origin are checked at the edge, with the gateway's own lists and answers.
        security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        max_request_body_size=max_body_bytes,
    )
