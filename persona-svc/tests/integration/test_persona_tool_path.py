"""Every command a tool call sends persona-svc reads the database by `_id` alone, which FerretDB
serves from an index; any other filter reads every document of the collection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from pymongo import AsyncMongoClient

from switchboard.contracts import CallContext, CommandType, Contract
from switchboard.contracts.persona import (
    ApiResponse,
    CheckUserAvailability,
    IsOfficeOpen,
    ListTools,
    PersonaTools,
    ResolveTransfer,
    RunApiRequest,
)
from switchboard.messaging.requester import build_command
from switchboard.testing.queries import QueryLog

from persona_svc import handlers
from persona_svc.egress import EgressPolicy
from persona_svc.model import (
    Account,
    ApiRequestDefinition,
    CustomTool,
    OfficeHours,
    Persona,
    Queue,
    Span,
    TransferToQueueDefinition,
    TransferToUserDefinition,
    User,
    Weekday,
)
from persona_svc.repository import Repositories, create_indexes, mongo_repositories
from persona_svc.templates import RenderedRequest

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 9, 14, 30, tzinfo=UTC)
CONTEXT = CallContext(account_id="acme", persona_id="front", call_id="call-1")


@pytest.fixture
async def recorded(infra, isolation) -> AsyncIterator[tuple[Repositories, QueryLog]]:
    queries = QueryLog()
    client = AsyncMongoClient(infra.mongo_uri, tz_aware=True, event_listeners=[queries])
    db = client[f"{isolation}_tool_path"]
    await create_indexes(db)
    repos = mongo_repositories(db)
    await seed(repos)
    yield repos, queries
    await client.drop_database(db.name)
    await client.close()


class AnsweringEgress:
    async def send(self, request: RenderedRequest, policy: EgressPolicy, *, timeout: float) -> ApiResponse:
        return ApiResponse(status_code=200, ok=True, body="{}", truncated=False)


async def seed(repos: Repositories) -> None:
    for account_id in ("acme", "other"):
        await repos.accounts.put(
            Account(account_id=account_id, name=account_id, timezone="America/New_York", country="US", updated_at=NOW)
        )
        hours = OfficeHours(weekly={Weekday.monday: [Span(start="09:00", end="17:00")]})
        await repos.personas.put(
            Persona(account_id=account_id, persona_id="front", name="Front", office_hours=hours, updated_at=NOW)
        )
        await repos.users.put(User(account_id=account_id, user_id="ann", name="Ann", extension="201", updated_at=NOW))
        await repos.queues.put(
            Queue(account_id=account_id, queue_id="sales", name="Sales", extension="500", updated_at=NOW)
        )
        for tool_id, definition in (
            ("t1", TransferToUserDefinition(name="to_ann", description="Ann.", user_id="ann")),
            ("t2", TransferToQueueDefinition(name="to_sales", description="Sales.", queue_id="sales")),
            ("t3", ApiRequestDefinition(name="order", description="An order.", url="https://crm.example/orders")),
        ):
            await repos.tools.put(
                CustomTool(
                    account_id=account_id, persona_id="front", tool_id=tool_id, definition=definition, updated_at=NOW
                )
            )


async def run(repos: Repositories, command_type: CommandType, args: Contract) -> Contract:
    command = build_command(command_type, CONTEXT, args, timeout=5, reply_to="tests")
    match command_type:
        case CommandType.is_office_open:
            return await handlers.is_office_open(command, repos=repos, clock=lambda: NOW)
        case CommandType.check_user_availability:
            return await handlers.check_user_availability(command, repos=repos, clock=lambda: NOW)
        case CommandType.list_tools:
            return await handlers.list_tools(command, repos=repos)
        case CommandType.resolve_transfer:
            return await handlers.resolve_transfer(command, repos=repos, clock=lambda: NOW)
        case CommandType.run_api_request:
            return await handlers.run_api_request(command, repos=repos, egress=AnsweringEgress())
    raise AssertionError(command_type)


@pytest.mark.parametrize(
    ("command_type", "args", "reads"),
    [
        (CommandType.is_office_open, IsOfficeOpen(), ["acme", "acme/front"]),
        (CommandType.check_user_availability, CheckUserAvailability(user_id="ann"), ["acme/ann"]),
        (CommandType.list_tools, ListTools(), ["acme/front", "acme", "acme/front"]),
        (CommandType.resolve_transfer, ResolveTransfer(tool_name="to_ann"), ["acme/front", "acme/ann"]),
        (CommandType.resolve_transfer, ResolveTransfer(tool_name="to_sales"), ["acme/front", "acme/sales"]),
        (CommandType.run_api_request, RunApiRequest(tool_name="order"), ["acme/front", "acme"]),
    ],
)
async def test_a_tool_call_reads_by_id_alone(recorded, command_type, args, reads) -> None:
    repos, queries = recorded
    queries.recording = True
    result = await run(repos, command_type, args)
    queries.recording = False
    # Independent reads of one command run at once, so their order is not fixed.
    seen = sorted((query.command, query.filter["_id"]) for query in queries.seen if list(query.filter) == ["_id"])
    assert len(seen) == len(queries.seen), f"a read by more than _id: {queries.seen}"
    assert seen == sorted(("find", key) for key in reads)
    if isinstance(result, PersonaTools):
        assert [tool.name for tool in result.custom_tools] == ["order", "to_ann", "to_sales"]
