"""Fixtures of the gateway's tests: a stub of the four services' command handlers, and MCP clients."""

from __future__ import annotations

import importlib
import sys

# pytest (--import-mode=importlib) names this file `gateway.tests.conftest` after its directory and
# registers the member directory `gateway/` as a namespace package called `gateway`, which hides the
# real `gateway` package. Put the real one back before anything imports from it.
if getattr(sys.modules.get("gateway"), "__file__", None) is None:
    sys.modules.pop("gateway", None)
    importlib.import_module("gateway")

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from switchboard.contracts import Command, CommandType, Contract, Topic, operations_of
from switchboard.contracts.call_control import HangupResult, TransferResult
from switchboard.contracts.contacts import ContactLookup, ContactMatch, ContactPhone, ContactSource
from switchboard.contracts.leads import LeadCreated
from switchboard.contracts.persona import (
    OFFICE_STATUS_TEXT,
    ApiRequestTool,
    ApiResponse,
    Availability,
    OfficeStatus,
    OfficeStatusKind,
    PersonaTools,
    ToolVariable,
    TransferDestination,
    TransferToQueueTool,
    TransferToUserTool,
    VariableType,
)
from gateway.app import create_app
from gateway.auth import create_key
from gateway.repository import InMemoryApiKeys
from gateway.settings import GatewaySettings
from switchboard.messaging import CommandProcessor, NotFound
from switchboard.messaging.processor import claimed
from switchboard.messaging.idempotency import InMemoryProcessedCommands, ProcessedCommands
from switchboard.messaging.memory import InMemoryBus

ACCOUNT = "acc-1"
OTHER_ACCOUNT = "acc-2"
SALES = "per-sales"
SUPPORT = "per-support"
OTHER_PERSONA = "per-other"
HOLD = "Hold Forever"
"""A create_lead with this name is never answered (the timeout path)."""

GLOBAL_NAMES = [
    "transfer_call",
    "is_office_open",
    "lookup_contact",
    "check_user_availability",
    "create_lead",
    "hangup_call",
]

PERSONAS: dict[tuple[str, str], PersonaTools] = {
    (ACCOUNT, SALES): PersonaTools(
        persona_id=SALES,
        persona_name="Sales",
        account_country="DE",
        account_timezone="Europe/Berlin",
        custom_tools=[
            TransferToUserTool(name="transfer_to_anna", description="Transfer the caller to Anna in sales."),
            ApiRequestTool(
                name="check_order",
                description="Look up an order's delivery status.",
                method="GET",
                variables=[
                    ToolVariable(name="order_id", type=VariableType.text, description="The order number."),
                    ToolVariable(name="quantity", type=VariableType.number, required=False),
                    ToolVariable(name="priority", type=VariableType.dropdown, options=["low", "high"], required=False),
                ],
            ),
        ],
    ),
    (ACCOUNT, SUPPORT): PersonaTools(
        persona_id=SUPPORT,
        persona_name="Support",
        account_country="DE",
        account_timezone="Europe/Berlin",
        custom_tools=[
            TransferToQueueTool(name="support_queue", description="Transfer the caller to the support team.")
        ],
    ),
    (OTHER_ACCOUNT, OTHER_PERSONA): PersonaTools(
        persona_id=OTHER_PERSONA, persona_name="Other", account_country="US", account_timezone="UTC", custom_tools=[]
    ),
}


class Responder:
    """Stub handlers of persona, call-control, contacts and leads: fixed answers, every command kept."""

    def __init__(self) -> None:
        self.commands: list[Command[Any]] = []
        self.release = asyncio.Event()

    def handlers(self) -> dict[CommandType, Callable[[Command[Any]], Any]]:
        return {
            CommandType.list_tools: self.list_tools,
            CommandType.is_office_open: self.is_office_open,
            CommandType.check_user_availability: self.check_user_availability,
            CommandType.resolve_transfer: self.resolve_transfer,
            CommandType.run_api_request: self.run_api_request,
            CommandType.transfer_call: self.transfer_call,
            CommandType.hangup_call: self.hangup_call,
            CommandType.lookup_contact: self.lookup_contact,
            CommandType.create_lead: self.create_lead,
        }

    def processors(
        self, store: Callable[[], ProcessedCommands] = InMemoryProcessedCommands
    ) -> dict[Topic, CommandProcessor]:
        handlers = self.handlers()
        topics = (Topic.persona_commands, Topic.call_control_commands, Topic.contacts_commands, Topic.leads_commands)
        return {
            topic: CommandProcessor(topic.value.split(".")[0], {t: handlers[t] for t in operations_of(topic)}, store())
            for topic in topics
        }

    def sent(self, command_type: CommandType) -> list[Command[Any]]:
        return [c for c in self.commands if c.type is command_type]

    def _keep(self, command: Command[Any]) -> None:
        self.commands.append(command)

    async def list_tools(self, command: Command[Any]) -> Contract:
        self._keep(command)
        tools = PERSONAS.get((command.account_id, command.persona_id))
        if tools is None:
            raise NotFound(f"There is no persona {command.persona_id!r} in this account.")
        return tools

    async def is_office_open(self, command: Command[Any]) -> Contract:
        self._keep(command)
        return OfficeStatus(
            status=OfficeStatusKind.open,
            text=OFFICE_STATUS_TEXT[OfficeStatusKind.open],
            local_time=datetime(2026, 3, 2, 10, 30, tzinfo=UTC),
            timezone="Europe/Berlin",
        )

    async def check_user_availability(self, command: Command[Any]) -> Contract:
        self._keep(command)
        if command.args.user_id == "ghost":
            raise NotFound("There is no colleague with the id 'ghost' in this account.")
        return Availability(
            user_id=command.args.user_id, name=f"User {command.args.user_id}", available=True, dnd=False
        )

    async def resolve_transfer(self, command: Command[Any]) -> Contract:
        self._keep(command)
        if command.args.tool_name == "support_queue":
            return TransferDestination(
                destination_number="200", target_kind="queue", target_id="q-support", target_name="Support"
            )
        return TransferDestination(
            destination_number="+4930123456", target_kind="user", target_id="u-anna", target_name="Anna"
        )

    async def run_api_request(self, command: Command[Any]) -> Contract:
        self._keep(command)
        return ApiResponse(
            status_code=200, ok=True, body=json.dumps(command.args.variables, sort_keys=True), truncated=False
        )

    async def transfer_call(self, command: Command[Any]) -> Contract:
        await claimed()  # as the real handler: it acts only once its command id is claimed
        self._keep(command)
        target = command.args.target
        return TransferResult(
            transfer_id=f"tr-{command.command_id[:8]}",
            accepted=True,
            destination=command.args.destination_number,
            destination_kind="extension" if command.args.destination_number.isdigit() else "e164",
            target=target,
            message=f"Transferring the caller to {target.name if target else command.args.destination_number}.",
        )

    async def hangup_call(self, command: Command[Any]) -> Contract:
        await claimed()  # as the real handler: it acts only once its command id is claimed
        self._keep(command)
        return HangupResult(ended=True, already_ended=False, message="The call has ended.")

    async def lookup_contact(self, command: Command[Any]) -> Contract:
        self._keep(command)
        return ContactLookup(
            phone_number="+14155550123",
            found=True,
            contacts=[
                ContactMatch(
                    name="Ann Lee",
                    company="Acme",
                    phone_numbers=[ContactPhone(number="+14155550123", label="mobile")],
                    source=ContactSource.native,
                )
            ],
        )

    async def create_lead(self, command: Command[Any]) -> Contract:
        self._keep(command)
        if command.args.name == HOLD:
            await self.release.wait()
        return LeadCreated(lead_id="lead-1", case_id=f"case-{command.call_id}", lead_existed=False, deduplicable=True)


@pytest.fixture
def responder() -> Responder:
    return Responder()


def context_headers(
    key: str | None,
    *,
    account: str | None = ACCOUNT,
    persona: str | None = SALES,
    call: str | None = "call-1",
    caller: str | None = "+4930555000",
) -> dict[str, str]:
    headers = {
        "X-API-Key": key,
        "account_id": account,
        "persona_id": persona,
        "call_id": call,
        "caller_id_number": caller,
    }
    return {k: v for k, v in headers.items() if v is not None}


@contextlib.asynccontextmanager
async def mcp_client(
    url: str, headers: dict[str, str], *, mode: str = "legacy", transport: httpx2.AsyncBaseTransport | None = None
) -> AsyncIterator[Client]:
    """The official MCP client over HTTP: `legacy` initializes first, `2026-07-28` sends stateless requests."""
    http = httpx2.AsyncClient(headers=headers, transport=transport, timeout=httpx2.Timeout(30))
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode, cache=None) as client:
        yield client


@contextlib.asynccontextmanager
async def running(app: Any) -> AsyncIterator[None]:
    """Run an ASGI app's lifespan in a task of its own (the MCP manager's task group must start and
    end in one task, which a fixture's setup and teardown are not)."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with app.router.lifespan_context(app):
            started.set()
            await stop.wait()

    task = asyncio.create_task(hold())
    waiting = asyncio.create_task(started.wait())
    await asyncio.wait([task, waiting], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiting.cancel()
        task.result()
    try:
        yield
    finally:
        stop.set()
        await task


@pytest.fixture(scope="session")
def helpers() -> Any:
    """Module-level helpers of this conftest, for test modules (which cannot import a conftest)."""
    import types as pytypes

    return pytypes.SimpleNamespace(
        ACCOUNT=ACCOUNT,
        OTHER_ACCOUNT=OTHER_ACCOUNT,
        SALES=SALES,
        SUPPORT=SUPPORT,
        OTHER_PERSONA=OTHER_PERSONA,
        HOLD=HOLD,
        GLOBAL_NAMES=GLOBAL_NAMES,
        PERSONAS=PERSONAS,
        headers=context_headers,
        mcp_client=mcp_client,
        running=running,
        Responder=Responder,
    )


@pytest.fixture
def gateway_settings() -> GatewaySettings:
    """Overridden by a test module to run the in-memory gateway with other settings."""
    return GatewaySettings(key_pepper="unit-test-pepper-0123456789")


@pytest.fixture
async def gateway(responder, gateway_settings) -> AsyncIterator[Any]:
    """The gateway app on the in-memory bus (stub services), an in-memory key store and one key."""
    import types as pytypes

    bus = InMemoryBus()
    for topic, processor in responder.processors().items():
        bus.register(topic, processor)
    keys = InMemoryApiKeys()
    key = (await create_key(keys, gateway_settings.pepper(), ACCOUNT)).key
    app = create_app(gateway_settings, requester=bus, keys=keys, events=False)
    async with running(app):
        yield pytypes.SimpleNamespace(
            app=app, bus=bus, keys=keys, key=key, settings=gateway_settings, transport=httpx2.ASGITransport(app=app)
        )
