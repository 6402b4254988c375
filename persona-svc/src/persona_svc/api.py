"""The admin REST API (the Portal's back end), `/admin/v1`, behind the admin token.

Every resource is created or replaced by `PUT` on its id, so a seeding script can run twice.
`PUT` answers 201 when it created the resource and 200 when it replaced it. Bodies are validated
before anything is written: a bad value is a 422 whose `detail[].loc` names the field. Every
change publishes an event on `persona.events`: `persona.updated` for accounts, personas, office
hours and tools (what the gateway lists), `user.dnd_changed` for DND, `user.updated` and
`queue.updated` for the rest of users and queues. If an event cannot be published the change is
kept and the answer is 503: repeating the same request publishes it again.

Secret header values of API Request tools are write-only: they are shown as null, and a PUT that
sends null for a secret header keeps the stored value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response, status
from pydantic import AwareDatetime, Field, SecretStr

from switchboard.admin import require_admin
from switchboard.contracts import Contract, Topic
from switchboard.contracts.envelope import IDENTIFIER
from switchboard.contracts.persona import PersonaUpdated, QueueUpdated, UserDndChanged, UserUpdated
from switchboard.messaging.events import EventPublisher
from switchboard.phone import InvalidPhoneNumber, parse_number

from persona_svc.cache import ReadCache
from persona_svc.model import (
    Account,
    AccountFields,
    ApiRequestDefinition,
    ApiRequestFields,
    CustomTool,
    DestinationFields,
    DndFields,
    Holiday,
    Model,
    OfficeHours,
    Persona,
    PersonaFields,
    Queue,
    QueueFields,
    SpecialHours,
    Spans,
    ToolFields,
    TransferToQueueDefinition,
    TransferToUserDefinition,
    User,
    UserFields,
)
from persona_svc.repository import DuplicateName, Repositories

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

AccountId = Annotated[str, Path(pattern=IDENTIFIER, description="The account's id.")]
PersonaId = Annotated[str, Path(pattern=IDENTIFIER, description="The persona's id, unique in its account.")]
ToolId = Annotated[str, Path(pattern=IDENTIFIER, description="The custom tool's id, unique in its persona.")]
UserId = Annotated[str, Path(pattern=IDENTIFIER, description="The user's id, unique in its account.")]
QueueId = Annotated[str, Path(pattern=IDENTIFIER, description="The queue's id, unique in its account.")]
Day = Annotated[date, Path(description="A local date of the account, YYYY-MM-DD.")]


class ToolView(Model):
    account_id: str
    persona_id: str
    tool_id: str
    updated_at: AwareDatetime
    definition: ToolFields = Field(description="The tool as stored; secret header values are null.")


class HolidayFields(Model):
    name: str = Field(min_length=1, max_length=200)


class SpecialHoursFields(Model):
    spans: Spans = Field(default_factory=list, description="The only openings of that date; none: closed.")
    name: str | None = Field(default=None, max_length=200)


def invalid(loc: list[str | int], message: str) -> HTTPException:
    """A 422 in the same shape as FastAPI's own validation errors."""
    return HTTPException(422, detail=[{"loc": ["body", *loc], "msg": message, "type": "value_error"}])


def not_found(message: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=message)


def conflict(message: str) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, detail=message)


def _created(response: Response, created: bool) -> None:
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK


def _view(tool: CustomTool) -> ToolView:
    definition = tool.definition
    shown = definition.without_secrets() if isinstance(definition, ApiRequestDefinition) else definition
    return ToolView(
        account_id=tool.account_id,
        persona_id=tool.persona_id,
        tool_id=tool.tool_id,
        updated_at=tool.updated_at,
        definition=shown,
    )


def admin_router(
    repos: Repositories,
    events: EventPublisher,
    *,
    token: SecretStr | None,
    clock: Clock,
    cache: ReadCache | None = None,
) -> APIRouter:
    """`cache` is this replica's read cache of the command handlers: a change drops its account there
    before it is announced, so this replica answers with the change at once."""
    router = APIRouter(prefix="/admin/v1", dependencies=[require_admin(token)], tags=["admin"])

    async def announce(account_id: str, event: Contract) -> None:
        if cache is not None:
            cache.forget_account(account_id)
        try:
            await events.publish(Topic.persona_events, event, key=account_id)
        except Exception:
            log.exception("could not publish %s for account %s", type(event).__name__, account_id)
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                detail="The change was saved but could not be announced; repeat the request.",
            ) from None

    async def persona_changed(account_id: str, persona_id: str | None) -> None:
        await announce(account_id, PersonaUpdated(account_id=account_id, persona_id=persona_id, updated_at=clock()))

    async def user_changed(account_id: str, user_id: str) -> None:
        await announce(account_id, UserUpdated(account_id=account_id, user_id=user_id, updated_at=clock()))

    async def queue_changed(account_id: str, queue_id: str) -> None:
        await announce(account_id, QueueUpdated(account_id=account_id, queue_id=queue_id, updated_at=clock()))

    async def account_of(account_id: str) -> Account:
        account = await repos.accounts.get(account_id=account_id)
        if account is None:
            raise not_found(f"No account {account_id!r}.")
        return account

    async def persona_of(account_id: str, persona_id: str) -> Persona:
        persona = await repos.personas.get(account_id=account_id, persona_id=persona_id)
        if persona is None:
            raise not_found(f"No persona {persona_id!r} in account {account_id!r}.")
        return persona

    async def tools_using(account_id: str, field: str, target_id: str) -> list[CustomTool]:
        return [t for t in await repos.tools.list(account_id) if getattr(t.definition, field, None) == target_id]

    def destination(fields: DestinationFields, account: Account) -> dict[str, Any]:
        values = fields.model_dump()
        if fields.number is not None:
            try:
                values["number"] = str(parse_number(fields.number, account.country))  # keeps `;ext=` if any
            except InvalidPhoneNumber as e:
                raise invalid(["number"], str(e)) from None
        return values

    # Accounts

    @router.get("/accounts", response_model=list[Account], summary="List every account")
    async def list_accounts() -> list[Account]:
        return await repos.accounts.list_all()

    @router.get("/accounts/{account_id}", response_model=Account, responses={404: {}})
    async def get_account(account_id: AccountId) -> Account:
        return await account_of(account_id)

    @router.put("/accounts/{account_id}", response_model=Account, responses={201: {"model": Account}})
    async def put_account(account_id: AccountId, body: AccountFields, response: Response) -> Account:
        account = Account(**body.model_dump(), account_id=account_id, updated_at=clock())
        _created(response, await repos.accounts.put(account))
        await persona_changed(account_id, None)
        return account

    @router.delete("/accounts/{account_id}", status_code=204, responses={404: {}})
    async def delete_account(account_id: AccountId) -> None:
        await account_of(account_id)
        for store in (repos.tools, repos.personas, repos.users, repos.queues):
            await store.delete_all(account_id)
        await repos.accounts.delete(account_id=account_id)
        await persona_changed(account_id, None)

    # Personas and their office hours

    @router.get("/accounts/{account_id}/personas", response_model=list[Persona])
    async def list_personas(account_id: AccountId) -> list[Persona]:
        await account_of(account_id)
        return await repos.personas.list(account_id)

    @router.get("/accounts/{account_id}/personas/{persona_id}", response_model=Persona, responses={404: {}})
    async def get_persona(account_id: AccountId, persona_id: PersonaId) -> Persona:
        return await persona_of(account_id, persona_id)

    @router.put(
        "/accounts/{account_id}/personas/{persona_id}", response_model=Persona, responses={201: {"model": Persona}}
    )
    async def put_persona(
        account_id: AccountId, persona_id: PersonaId, body: PersonaFields, response: Response
    ) -> Persona:
        await account_of(account_id)
        persona = Persona(**body.model_dump(), account_id=account_id, persona_id=persona_id, updated_at=clock())
        _created(response, await repos.personas.put(persona))
        await persona_changed(account_id, persona_id)
        return persona

    @router.delete("/accounts/{account_id}/personas/{persona_id}", status_code=204, responses={404: {}})
    async def delete_persona(account_id: AccountId, persona_id: PersonaId) -> None:
        await persona_of(account_id, persona_id)
        await repos.tools.delete_all(account_id, persona_id=persona_id)
        await repos.personas.delete(account_id=account_id, persona_id=persona_id)
        await persona_changed(account_id, persona_id)

    async def save_hours(persona: Persona, hours: OfficeHours | None) -> None:
        await repos.personas.put(persona.model_copy(update={"office_hours": hours, "updated_at": clock()}))
        await persona_changed(persona.account_id, persona.persona_id)

    def with_exception(hours: OfficeHours | None, day: date, item: Holiday | SpecialHours | None) -> OfficeHours:
        hours = hours or OfficeHours()
        holidays = [h for h in hours.holidays if h.date != day]
        special = [s for s in hours.special_hours if s.date != day]
        if isinstance(item, Holiday):
            holidays.append(item)
        elif isinstance(item, SpecialHours):
            special.append(item)
        return OfficeHours(
            weekly=hours.weekly,
            holidays=sorted(holidays, key=lambda h: h.date),
            special_hours=sorted(special, key=lambda s: s.date),
        )

    hours_path = "/accounts/{account_id}/personas/{persona_id}/office-hours"

    @router.get(hours_path, response_model=OfficeHours, responses={404: {}})
    async def get_office_hours(account_id: AccountId, persona_id: PersonaId) -> OfficeHours:
        persona = await persona_of(account_id, persona_id)
        if persona.office_hours is None:
            raise not_found(f"Persona {persona_id!r} has no office hours.")
        return persona.office_hours

    @router.put(hours_path, response_model=OfficeHours)
    async def put_office_hours(account_id: AccountId, persona_id: PersonaId, body: OfficeHours) -> OfficeHours:
        await save_hours(await persona_of(account_id, persona_id), body)
        return body

    @router.delete(hours_path, status_code=204)
    async def delete_office_hours(account_id: AccountId, persona_id: PersonaId) -> None:
        await save_hours(await persona_of(account_id, persona_id), None)

    @router.put(
        hours_path + "/holidays/{day}",
        response_model=OfficeHours,
        summary="Close a date (replaces special hours on it)",
    )
    async def put_holiday(account_id: AccountId, persona_id: PersonaId, day: Day, body: HolidayFields) -> OfficeHours:
        persona = await persona_of(account_id, persona_id)
        hours = with_exception(persona.office_hours, day, Holiday(date=day, name=body.name))
        await save_hours(persona, hours)
        return hours

    @router.put(
        hours_path + "/special-hours/{day}", response_model=OfficeHours, summary="Set the only openings of a date"
    )
    async def put_special_hours(
        account_id: AccountId, persona_id: PersonaId, day: Day, body: SpecialHoursFields
    ) -> OfficeHours:
        persona = await persona_of(account_id, persona_id)
        item = SpecialHours(date=day, spans=body.spans, name=body.name)
        hours = with_exception(persona.office_hours, day, item)
        await save_hours(persona, hours)
        return hours

    async def delete_exception(account_id: str, persona_id: str, day: date, kind: type) -> OfficeHours:
        persona = await persona_of(account_id, persona_id)
        hours = persona.office_hours
        if hours is None or not isinstance(hours.exception_on(day), kind):
            raise not_found(f"No {'holiday' if kind is Holiday else 'special hours'} on {day}.")
        hours = with_exception(hours, day, None)
        await save_hours(persona, hours)
        return hours

    @router.delete(hours_path + "/holidays/{day}", response_model=OfficeHours, responses={404: {}})
    async def delete_holiday(account_id: AccountId, persona_id: PersonaId, day: Day) -> OfficeHours:
        return await delete_exception(account_id, persona_id, day, Holiday)

    @router.delete(hours_path + "/special-hours/{day}", response_model=OfficeHours, responses={404: {}})
    async def delete_special_hours(account_id: AccountId, persona_id: PersonaId, day: Day) -> OfficeHours:
        return await delete_exception(account_id, persona_id, day, SpecialHours)

    # Custom tools

    tools_path = "/accounts/{account_id}/personas/{persona_id}/tools"

    @router.get(tools_path, response_model=list[ToolView])
    async def list_custom_tools(account_id: AccountId, persona_id: PersonaId) -> list[ToolView]:
        await persona_of(account_id, persona_id)
        return [_view(t) for t in await repos.tools.list(account_id, persona_id=persona_id)]

    @router.get(tools_path + "/{tool_id}", response_model=ToolView, responses={404: {}})
    async def get_custom_tool(account_id: AccountId, persona_id: PersonaId, tool_id: ToolId) -> ToolView:
        tool = await repos.tools.get(account_id=account_id, persona_id=persona_id, tool_id=tool_id)
        if tool is None:
            raise not_found(f"No tool {tool_id!r} in persona {persona_id!r}.")
        return _view(tool)

    async def stored_definition(
        account_id: str,
        persona_id: str,
        tool_id: str,
        body: TransferToUserDefinition | TransferToQueueDefinition | ApiRequestFields,
    ) -> TransferToUserDefinition | TransferToQueueDefinition | ApiRequestDefinition:
        if isinstance(body, TransferToUserDefinition):
            if await repos.users.get(account_id=account_id, user_id=body.user_id) is None:
                raise invalid(["user_id"], f"no user {body.user_id!r} in this account")
            return body
        if isinstance(body, TransferToQueueDefinition):
            if await repos.queues.get(account_id=account_id, queue_id=body.queue_id) is None:
                raise invalid(["queue_id"], f"no queue {body.queue_id!r} in this account")
            return body
        existing = await repos.tools.get(account_id=account_id, persona_id=persona_id, tool_id=tool_id)
        stored = {}
        if existing is not None and isinstance(existing.definition, ApiRequestDefinition):
            stored = {h.name.lower(): h.value for h in existing.definition.headers if h.secret}
        headers = []
        for index, header in enumerate(body.headers):
            value = header.value
            if value is None and header.secret:
                value = stored.get(header.name.lower())
            if value is None:
                raise invalid(["headers", index, "value"], f"header {header.name!r} needs a value")
            headers.append(header.model_copy(update={"value": value}))
        return ApiRequestDefinition.model_validate({**body.model_dump(), "headers": [h.model_dump() for h in headers]})

    @router.put(tools_path + "/{tool_id}", response_model=ToolView, responses={201: {"model": ToolView}, 409: {}})
    async def put_custom_tool(
        account_id: AccountId, persona_id: PersonaId, tool_id: ToolId, body: ToolFields, response: Response
    ) -> ToolView:
        await persona_of(account_id, persona_id)
        definition = await stored_definition(account_id, persona_id, tool_id, body)
        tool = CustomTool(
            account_id=account_id, persona_id=persona_id, tool_id=tool_id, definition=definition, updated_at=clock()
        )
        try:
            created = await repos.tools.put(tool)
        except DuplicateName:
            raise conflict(f"Persona {persona_id!r} already has another tool named {tool.name!r}.") from None
        _created(response, created)
        await persona_changed(account_id, persona_id)
        return _view(tool)

    @router.delete(tools_path + "/{tool_id}", status_code=204, responses={404: {}})
    async def delete_custom_tool(account_id: AccountId, persona_id: PersonaId, tool_id: ToolId) -> None:
        if not await repos.tools.delete(account_id=account_id, persona_id=persona_id, tool_id=tool_id):
            raise not_found(f"No tool {tool_id!r} in persona {persona_id!r}.")
        await persona_changed(account_id, persona_id)

    # Users and their DND

    @router.get("/accounts/{account_id}/users", response_model=list[User])
    async def list_users(account_id: AccountId) -> list[User]:
        await account_of(account_id)
        return await repos.users.list(account_id)

    @router.get("/accounts/{account_id}/users/{user_id}", response_model=User, responses={404: {}})
    async def get_user(account_id: AccountId, user_id: UserId) -> User:
        user = await repos.users.get(account_id=account_id, user_id=user_id)
        if user is None:
            raise not_found(f"No user {user_id!r} in account {account_id!r}.")
        return user

    @router.put(
        "/accounts/{account_id}/users/{user_id}",
        response_model=User,
        responses={201: {"model": User}},
        summary="Create or replace a user (the DND setting is kept; change it with PUT .../dnd)",
    )
    async def put_user(account_id: AccountId, user_id: UserId, body: UserFields, response: Response) -> User:
        account = await account_of(account_id)
        existing = await repos.users.get(account_id=account_id, user_id=user_id)
        dnd = {"dnd": existing.dnd, "dnd_until": existing.dnd_until} if existing else {}
        user = User(**destination(body, account), **dnd, account_id=account_id, user_id=user_id, updated_at=clock())
        _created(response, await repos.users.put(user))
        await user_changed(account_id, user_id)
        return user

    @router.put("/accounts/{account_id}/users/{user_id}/dnd", response_model=User, responses={404: {}})
    async def put_dnd(account_id: AccountId, user_id: UserId, body: DndFields) -> User:
        user = await get_user(account_id, user_id)
        now = clock()
        if body.until is not None and body.until <= now:
            raise invalid(["until"], "must be in the future")
        user = user.model_copy(update={"dnd": body.dnd, "dnd_until": body.until, "updated_at": now})
        await repos.users.put(user)
        await announce(
            account_id,
            UserDndChanged(account_id=account_id, user_id=user_id, dnd=body.dnd, dnd_until=body.until, changed_at=now),
        )
        return user

    @router.delete("/accounts/{account_id}/users/{user_id}", status_code=204, responses={404: {}, 409: {}})
    async def delete_user(account_id: AccountId, user_id: UserId) -> None:
        await get_user(account_id, user_id)
        using = await tools_using(account_id, "user_id", user_id)
        if using:
            names = ", ".join(sorted(f"{t.persona_id}/{t.name}" for t in using))
            raise conflict(f"User {user_id!r} is the target of transfer tools ({names}); change or delete them first.")
        await repos.users.delete(account_id=account_id, user_id=user_id)
        await user_changed(account_id, user_id)

    # Queues

    @router.get("/accounts/{account_id}/queues", response_model=list[Queue])
    async def list_queues(account_id: AccountId) -> list[Queue]:
        await account_of(account_id)
        return await repos.queues.list(account_id)

    @router.get("/accounts/{account_id}/queues/{queue_id}", response_model=Queue, responses={404: {}})
    async def get_queue(account_id: AccountId, queue_id: QueueId) -> Queue:
        queue = await repos.queues.get(account_id=account_id, queue_id=queue_id)
        if queue is None:
            raise not_found(f"No queue {queue_id!r} in account {account_id!r}.")
        return queue

    @router.put("/accounts/{account_id}/queues/{queue_id}", response_model=Queue, responses={201: {"model": Queue}})
    async def put_queue(account_id: AccountId, queue_id: QueueId, body: QueueFields, response: Response) -> Queue:
        account = await account_of(account_id)
        queue = Queue(**destination(body, account), account_id=account_id, queue_id=queue_id, updated_at=clock())
        _created(response, await repos.queues.put(queue))
        await queue_changed(account_id, queue_id)
        return queue

    @router.delete("/accounts/{account_id}/queues/{queue_id}", status_code=204, responses={404: {}, 409: {}})
    async def delete_queue(account_id: AccountId, queue_id: QueueId) -> None:
        await get_queue(account_id, queue_id)
        using = await tools_using(account_id, "queue_id", queue_id)
        if using:
            names = ", ".join(sorted(f"{t.persona_id}/{t.name}" for t in using))
            raise conflict(
                f"Queue {queue_id!r} is the target of transfer tools ({names}); change or delete them first."
            )
        await repos.queues.delete(account_id=account_id, queue_id=queue_id)
        await queue_changed(account_id, queue_id)

    return router
