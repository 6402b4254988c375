"""The persona commands: each takes the command and named dependencies, returns a result or raises a domain error."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from switchboard.contracts import Command
from switchboard.contracts.persona import (
    ApiResponse,
    Availability,
    CheckUserAvailability,
    IsOfficeOpen,
    ListTools,
    OfficeStatus,
    PersonaTools,
    ResolveTransfer,
    RunApiRequest,
    TransferDestination,
)
from switchboard.messaging.errors import InvalidArgument, NotFound, Refused

from persona_svc import templates
from persona_svc.egress import EgressClient, EgressPolicy
from persona_svc.model import (
    Account,
    ApiRequestDefinition,
    CustomTool,
    Persona,
    TransferToQueueDefinition,
    TransferToUserDefinition,
    User,
)
from persona_svc.office_hours import office_status
from persona_svc.repository import Repositories

Clock = Callable[[], datetime]

DEADLINE_MARGIN = 0.25
"""Seconds kept back from the command's deadline for the reply to travel."""


ACCOUNT_NOT_SET_UP = "This account is not set up in Switchboard."


def _no_persona(persona_id: str) -> str:
    return f"No persona {persona_id!r} in this account."


async def _account(repos: Repositories, account_id: str) -> Account:
    account = await repos.accounts.get(account_id=account_id)
    if account is None:
        raise NotFound(ACCOUNT_NOT_SET_UP)
    return account


async def _account_and_persona(repos: Repositories, command: Command) -> tuple[Account, Persona]:
    """Both read at once; a missing account is reported before a missing persona."""
    account, persona = await asyncio.gather(
        repos.accounts.get(account_id=command.account_id),
        repos.personas.get(account_id=command.account_id, persona_id=command.persona_id),
    )
    if account is None:
        raise NotFound(ACCOUNT_NOT_SET_UP)
    if persona is None:
        raise NotFound(_no_persona(command.persona_id))
    return account, persona


async def _tool(repos: Repositories, command: Command, name: str) -> CustomTool:
    tools = await repos.tools.of_persona(command.account_id, command.persona_id)
    tool = next((t for t in tools if t.name == name), None)
    if tool is None:
        raise NotFound(f"This persona has no custom tool named {name!r}.")
    return tool


async def is_office_open(command: Command[IsOfficeOpen], *, repos: Repositories, clock: Clock) -> OfficeStatus:
    account, persona = await _account_and_persona(repos, command)
    if persona.office_hours is None:
        raise NotFound("No office hours are set for this persona, so it is unknown whether the office is open.")
    return office_status(persona.office_hours, account.zone, clock())


async def check_user_availability(
    command: Command[CheckUserAvailability], *, repos: Repositories, clock: Clock
) -> Availability:
    user = await repos.users.get(account_id=command.account_id, user_id=command.args.user_id)
    if user is None:
        raise NotFound(f"There is no user {command.args.user_id!r} in this account.")
    on_dnd = user.on_dnd(clock())
    return Availability(
        user_id=user.user_id,
        name=user.name,
        available=not on_dnd,
        dnd=on_dnd,
        dnd_until=user.dnd_until if on_dnd else None,
    )


async def list_tools(command: Command[ListTools], *, repos: Repositories) -> PersonaTools:
    (account, persona), tools = await asyncio.gather(
        _account_and_persona(repos, command), repos.tools.of_persona(command.account_id, command.persona_id)
    )
    return PersonaTools(
        persona_id=persona.persona_id,
        persona_name=persona.name,
        account_country=account.country,
        account_timezone=account.timezone,
        custom_tools=[tool.spec() for tool in sorted(tools, key=lambda t: t.name)],
    )


def _dnd_refusal(user: User) -> str:
    until = f" until {user.dnd_until.isoformat(timespec='minutes')}" if user.dnd_until else ""
    return (
        f"{user.name} is on Do Not Disturb{until} and is not taking transfers right now; "
        "offer to take a message or transfer elsewhere."
    )


async def resolve_transfer(
    command: Command[ResolveTransfer], *, repos: Repositories, clock: Clock
) -> TransferDestination:
    tool = await _tool(repos, command, command.args.tool_name)
    definition = tool.definition
    if isinstance(definition, TransferToUserDefinition):
        user = await repos.users.get(account_id=command.account_id, user_id=definition.user_id)
        if user is None:
            raise NotFound(f"The colleague the tool {tool.name!r} transfers to no longer exists.")
        if definition.refuse_when_dnd and user.on_dnd(clock()):
            raise Refused(_dnd_refusal(user))
        return TransferDestination(
            destination_number=user.destination, target_kind="user", target_id=user.user_id, target_name=user.name
        )
    if isinstance(definition, TransferToQueueDefinition):
        queue = await repos.queues.get(account_id=command.account_id, queue_id=definition.queue_id)
        if queue is None:
            raise NotFound(f"The queue the tool {tool.name!r} transfers to no longer exists.")
        return TransferDestination(
            destination_number=queue.destination, target_kind="queue", target_id=queue.queue_id, target_name=queue.name
        )
    raise InvalidArgument(f"The tool {tool.name!r} is not a transfer tool.")


async def run_api_request(command: Command[RunApiRequest], *, repos: Repositories, egress: EgressClient) -> ApiResponse:
    tool = await _tool(repos, command, command.args.tool_name)
    definition = tool.definition
    if not isinstance(definition, ApiRequestDefinition):
        raise InvalidArgument(f"The tool {tool.name!r} is not an API Request tool.")
    account = await _account(repos, command.account_id)
    values = templates.bind_variables(definition.variables, command.args.variables)
    request = templates.render(definition, values, command.context)
    timeout = min(definition.timeout_seconds, command.remaining() - DEADLINE_MARGIN)
    return await egress.send(request, EgressPolicy(account.egress_allowlist), timeout=timeout)
