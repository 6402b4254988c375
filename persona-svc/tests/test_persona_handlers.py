"""The persona commands through the same CommandProcessor the Kafka runtime drives, on in-memory stores."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from switchboard.contracts import CallContext, CommandType, ErrorCode, Topic
from switchboard.contracts.persona import (
    ApiResponse,
    ApiRequestTool,
    Availability,
    CheckUserAvailability,
    IsOfficeOpen,
    ListTools,
    OfficeStatus,
    PersonaTools,
    ResolveTransfer,
    RunApiRequest,
    TransferDestination,
    TransferToQueueTool,
    TransferToUserTool,
)
from switchboard.messaging import CommandProcessor, RequestFailed
from switchboard.messaging.idempotency import InMemoryProcessedCommands
from switchboard.messaging.memory import InMemoryBus
from switchboard.messaging.requester import build_command

from persona_svc.bootstrap import command_handlers
from persona_svc.cache import ReadCache, cached_repositories
from persona_svc.egress import EgressPolicy
from persona_svc.model import (
    Account,
    ApiRequestDefinition,
    CustomTool,
    EgressRule,
    OfficeHours,
    Persona,
    Queue,
    Span,
    TransferToQueueDefinition,
    TransferToUserDefinition,
    User,
    Weekday,
)
from persona_svc.repository import Repositories, memory_repositories
from persona_svc.templates import RenderedRequest

NOW = datetime(2026, 3, 9, 14, 30, tzinfo=UTC)  # Monday 09:30 in New York
CONTEXT = CallContext(account_id="acme", persona_id="front-desk", call_id="call-1", caller_id_number="+14155550123")


@dataclass
class FakeEgress:
    sent: list[tuple[RenderedRequest, EgressPolicy, float]] = field(default_factory=list)

    async def send(self, request: RenderedRequest, policy: EgressPolicy, *, timeout: float) -> ApiResponse:
        self.sent.append((request, policy, timeout))
        return ApiResponse(
            status_code=200, ok=True, body='{"status": "shipped"}', truncated=False, content_type="application/json"
        )


def tool(persona_id: str, tool_id: str, definition, account_id: str = "acme") -> CustomTool:
    return CustomTool(
        account_id=account_id, persona_id=persona_id, tool_id=tool_id, definition=definition, updated_at=NOW
    )


async def seed(repos: Repositories) -> None:
    await repos.accounts.put(
        Account(
            account_id="acme",
            name="Acme",
            timezone="America/New_York",
            country="US",
            updated_at=NOW,
            egress_allowlist=[EgressRule(host="crm.acme.internal")],
        )
    )
    await repos.accounts.put(
        Account(account_id="other", name="Other", timezone="Europe/Berlin", country="DE", updated_at=NOW)
    )
    hours = OfficeHours(weekly={Weekday.monday: [Span(start="09:00", end="17:00")]})
    await repos.personas.put(
        Persona(account_id="acme", persona_id="front-desk", name="Front desk", office_hours=hours, updated_at=NOW)
    )
    await repos.personas.put(Persona(account_id="acme", persona_id="no-hours", name="Night line", updated_at=NOW))
    await repos.personas.put(Persona(account_id="other", persona_id="theirs", name="Theirs", updated_at=NOW))
    await repos.users.put(User(account_id="acme", user_id="ann", name="Ann", extension="201", updated_at=NOW))
    await repos.users.put(
        User(
            account_id="acme",
            user_id="bob",
            name="Bob",
            number="+14155550100",
            dnd=True,
            dnd_until=NOW + timedelta(hours=2),
            updated_at=NOW,
        )
    )
    await repos.users.put(User(account_id="other", user_id="eve", name="Eve", extension="300", updated_at=NOW))
    await repos.queues.put(Queue(account_id="acme", queue_id="sales", name="Sales", extension="500", updated_at=NOW))
    await repos.tools.put(
        tool(
            "front-desk",
            "t1",
            TransferToUserDefinition(
                name="transfer_to_bob", description="Bob, billing.", user_id="bob", refuse_when_dnd=True
            ),
        )
    )
    await repos.tools.put(
        tool(
            "front-desk",
            "t2",
            TransferToUserDefinition(name="transfer_to_ann", description="Ann, support.", user_id="ann"),
        )
    )
    await repos.tools.put(
        tool(
            "front-desk",
            "t3",
            TransferToQueueDefinition(name="sales_queue", description="Sales team.", queue_id="sales"),
        )
    )
    await repos.tools.put(
        tool("front-desk", "t4", TransferToUserDefinition(name="bob_anyway", description="Bob, urgent.", user_id="bob"))
    )
    await repos.tools.put(
        tool(
            "front-desk",
            "t5",
            ApiRequestDefinition(
                name="order_status",
                description="Look up an order.",
                url="https://crm.acme.internal/orders/{{order_id}}?caller={{caller_id_number}}",
                variables=[{"name": "order_id", "type": "text"}],
                headers=[{"name": "Authorization", "value": "Bearer s3cret", "secret": True}],
                timeout_seconds=8,
            ),
        )
    )


@pytest.fixture(params=["database", "cache"])
async def env(request):
    """Every test twice: on the stores, and through the read cache the service puts before them
    (whose own writes drop what it cached, as the admin API's do)."""
    repos = memory_repositories()
    await seed(repos)
    egress = FakeEgress()
    clock = lambda: NOW  # noqa: E731
    read = repos if request.param == "database" else cached_repositories(repos, ReadCache(60, 100))
    bus = InMemoryBus()
    bus.register(
        Topic.persona_commands,
        CommandProcessor("persona", command_handlers(read, egress, clock), InMemoryProcessedCommands()),
    )
    return bus, read, egress


async def ask(bus: InMemoryBus, type: CommandType, args, context: CallContext = CONTEXT, timeout: float = 5):
    return await bus.request(type, context, args, timeout=timeout)


async def fails(bus: InMemoryBus, type: CommandType, args, context: CallContext = CONTEXT) -> tuple[ErrorCode, str]:
    with pytest.raises(RequestFailed) as error:
        await ask(bus, type, args, context)
    return error.value.error.code, error.value.error.message


async def test_is_office_open_in_the_accounts_timezone(env) -> None:
    bus, _, _ = env
    status = await ask(bus, CommandType.is_office_open, IsOfficeOpen())
    assert isinstance(status, OfficeStatus)
    assert (status.text, status.timezone) == ("Office is currently open", "America/New_York")
    assert status.local_time.isoformat() == "2026-03-09T10:30:00-04:00"


async def test_is_office_open_without_office_hours_or_persona(env) -> None:
    bus, _, _ = env
    code, message = await fails(
        bus, CommandType.is_office_open, IsOfficeOpen(), CONTEXT.model_copy(update={"persona_id": "no-hours"})
    )
    assert code == ErrorCode.not_found and "No office hours are set" in message
    code, _ = await fails(
        bus, CommandType.is_office_open, IsOfficeOpen(), CONTEXT.model_copy(update={"persona_id": "theirs"})
    )
    assert code == ErrorCode.not_found


async def test_check_user_availability(env) -> None:
    bus, _, _ = env
    ann = await ask(bus, CommandType.check_user_availability, CheckUserAvailability(user_id="ann"))
    assert ann == Availability(user_id="ann", name="Ann", available=True, dnd=False)
    bob = await ask(bus, CommandType.check_user_availability, CheckUserAvailability(user_id="bob"))
    assert (bob.available, bob.dnd, bob.dnd_until) == (False, True, NOW + timedelta(hours=2))


async def test_dnd_that_has_run_out_is_available(env) -> None:
    bus, repos, _ = env
    bob = await repos.users.get(account_id="acme", user_id="bob")
    await repos.users.put(bob.model_copy(update={"dnd_until": NOW - timedelta(minutes=1)}))
    result = await ask(bus, CommandType.check_user_availability, CheckUserAvailability(user_id="bob"))
    assert (result.available, result.dnd, result.dnd_until) == (True, False, None)


@pytest.mark.parametrize("user_id", ["nobody", "eve"])
async def test_unknown_user_or_a_user_of_another_account_is_no_such_user(env, user_id: str) -> None:
    bus, _, _ = env
    code, message = await fails(bus, CommandType.check_user_availability, CheckUserAvailability(user_id=user_id))
    assert code == ErrorCode.not_found and message == f"There is no user {user_id!r} in this account."


async def test_list_tools_in_a_deterministic_order_without_secrets(env) -> None:
    bus, _, _ = env
    tools = await ask(bus, CommandType.list_tools, ListTools())
    assert isinstance(tools, PersonaTools)
    assert (tools.persona_name, tools.account_country, tools.account_timezone) == (
        "Front desk",
        "US",
        "America/New_York",
    )
    assert [t.name for t in tools.custom_tools] == [
        "bob_anyway",
        "order_status",
        "sales_queue",
        "transfer_to_ann",
        "transfer_to_bob",
    ]
    assert isinstance(tools.custom_tools[2], TransferToQueueTool) and isinstance(
        tools.custom_tools[3], TransferToUserTool
    )
    api = tools.custom_tools[1]
    assert isinstance(api, ApiRequestTool) and [v.name for v in api.variables] == ["order_id"]
    assert "s3cret" not in tools.model_dump_json() and "crm.acme" not in tools.model_dump_json()


async def test_list_tools_refuses_a_persona_of_another_account(env) -> None:
    bus, _, _ = env
    code, message = await fails(
        bus, CommandType.list_tools, ListTools(), CONTEXT.model_copy(update={"persona_id": "theirs"})
    )
    assert code == ErrorCode.not_found and message == "No persona 'theirs' in this account."


async def test_resolve_transfer_to_a_user_and_a_queue(env) -> None:
    bus, _, _ = env
    ann = await ask(bus, CommandType.resolve_transfer, ResolveTransfer(tool_name="transfer_to_ann"))
    assert ann == TransferDestination(destination_number="201", target_kind="user", target_id="ann", target_name="Ann")
    queue = await ask(bus, CommandType.resolve_transfer, ResolveTransfer(tool_name="sales_queue"))
    assert queue == TransferDestination(
        destination_number="500", target_kind="queue", target_id="sales", target_name="Sales"
    )
    bob = await ask(bus, CommandType.resolve_transfer, ResolveTransfer(tool_name="bob_anyway"))
    assert bob.destination_number == "+14155550100"


async def test_resolve_transfer_refuses_a_user_on_dnd_when_configured(env) -> None:
    bus, _, _ = env
    code, message = await fails(bus, CommandType.resolve_transfer, ResolveTransfer(tool_name="transfer_to_bob"))
    assert code == ErrorCode.refused
    assert message == (
        "Bob is on Do Not Disturb until 2026-03-09T16:30+00:00 and is not taking transfers right now; "
        "offer to take a message or transfer elsewhere."
    )


async def test_resolve_transfer_errors(env) -> None:
    bus, repos, _ = env
    code, message = await fails(bus, CommandType.resolve_transfer, ResolveTransfer(tool_name="nope"))
    assert (code, message) == (ErrorCode.not_found, "This persona has no custom tool named 'nope'.")
    code, _ = await fails(bus, CommandType.resolve_transfer, ResolveTransfer(tool_name="order_status"))
    assert code == ErrorCode.invalid_argument
    await repos.users.delete(account_id="acme", user_id="ann")
    code, message = await fails(bus, CommandType.resolve_transfer, ResolveTransfer(tool_name="transfer_to_ann"))
    assert code == ErrorCode.not_found and "no longer exists" in message


async def test_a_custom_tool_is_found_by_its_current_name_in_its_own_persona(env) -> None:
    bus, repos, _ = env
    renamed = TransferToQueueDefinition(name="queue_sales", description="Sales team.", queue_id="sales")
    await repos.tools.put(tool("front-desk", "t3", renamed))
    code, _ = await fails(bus, CommandType.resolve_transfer, ResolveTransfer(tool_name="sales_queue"))
    assert code == ErrorCode.not_found
    assert (await ask(bus, CommandType.resolve_transfer, ResolveTransfer(tool_name="queue_sales"))).target_id == "sales"
    elsewhere = CONTEXT.model_copy(update={"persona_id": "no-hours"})
    code, _ = await fails(bus, CommandType.resolve_transfer, ResolveTransfer(tool_name="queue_sales"), elsewhere)
    assert code == ErrorCode.not_found
    await repos.tools.delete(account_id="acme", persona_id="front-desk", tool_id="t3")
    code, _ = await fails(bus, CommandType.resolve_transfer, ResolveTransfer(tool_name="queue_sales"))
    assert code == ErrorCode.not_found


async def test_run_api_request_fills_the_templates_and_uses_the_accounts_allowlist(env) -> None:
    bus, _, egress = env
    result = await ask(
        bus, CommandType.run_api_request, RunApiRequest(tool_name="order_status", variables={"order_id": "A/1"})
    )
    assert result.ok and result.body == '{"status": "shipped"}'
    [(request, policy, timeout)] = egress.sent
    assert str(request.url) == "https://crm.acme.internal/orders/A%2F1?caller=%2B14155550123"
    assert request.headers == [("Authorization", "Bearer s3cret")]
    assert policy.allowlist == [EgressRule(host="crm.acme.internal")]
    assert 4 < timeout <= 4.75  # bounded by the command's 5 s deadline, not the tool's 8 s


async def test_run_api_request_checks_variables_before_any_request(env) -> None:
    bus, _, egress = env
    code, message = await fails(bus, CommandType.run_api_request, RunApiRequest(tool_name="order_status", variables={}))
    assert (code, message) == (ErrorCode.invalid_argument, "The variable 'order_id' is required.")
    code, _ = await fails(bus, CommandType.run_api_request, RunApiRequest(tool_name="transfer_to_ann"))
    assert code == ErrorCode.invalid_argument
    assert egress.sent == []


async def test_a_redelivered_command_runs_the_request_once(env) -> None:
    bus, _, egress = env
    command = build_command(
        CommandType.run_api_request,
        CONTEXT,
        RunApiRequest(tool_name="order_status", variables={"order_id": "1"}),
        timeout=5,
        reply_to="r",
    )
    first, second = await bus.send(command), await bus.send(command)
    assert first == second and len(egress.sent) == 1
