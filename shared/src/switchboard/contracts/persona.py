"""Commands, results and events of persona-svc, including the custom tool definitions the gateway lists."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from switchboard.contracts.base import Contract, NoArgs
from switchboard.contracts.envelope import IDENTIFIER

TOOL_NAME = r"^[a-zA-Z][a-zA-Z0-9_-]{0,63}$"


class IsOfficeOpen(NoArgs):
    pass


class OfficeStatusKind(StrEnum):
    open = "open"
    closed = "closed"
    closed_today = "closed_today"
    open_24h = "open_24h"


OFFICE_STATUS_TEXT: dict[OfficeStatusKind, str] = {
    OfficeStatusKind.open: "Office is currently open",
    OfficeStatusKind.closed: "Office is currently closed",
    OfficeStatusKind.closed_today: "Office is closed today",
    OfficeStatusKind.open_24h: "Office is open 24 hours today",
}


class OfficeStatus(Contract):
    status: OfficeStatusKind
    text: str = Field(description="Exactly one of the four office status sentences.")
    local_time: datetime = Field(description="Now, in the account's timezone.")
    timezone: str
    next_opening: datetime | None = Field(
        default=None, description="When the office next opens (local time), if it is closed now."
    )
    holiday: str | None = Field(default=None, description="The name of today's holiday or closure.")


class CheckUserAvailability(Contract):
    user_id: str = Field(pattern=IDENTIFIER, description="The id of the colleague to check.")


class Availability(Contract):
    user_id: str
    name: str
    available: bool
    dnd: bool
    dnd_until: AwareDatetime | None = None


class ListTools(NoArgs):
    pass


class VariableType(StrEnum):
    text = "text"
    number = "number"
    dropdown = "dropdown"


class ToolVariable(Contract):
    name: str = Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]{0,63}$")
    type: VariableType
    description: str = Field(default="", max_length=1000)
    required: bool = True
    options: list[str] = Field(default_factory=list, description="The allowed values of a dropdown.")


class TransferToUserTool(Contract):
    kind: Literal["transfer_to_user"] = "transfer_to_user"
    name: str = Field(pattern=TOOL_NAME)
    description: str = Field(max_length=2000)


class TransferToQueueTool(Contract):
    kind: Literal["transfer_to_queue"] = "transfer_to_queue"
    name: str = Field(pattern=TOOL_NAME)
    description: str = Field(max_length=2000)


class ApiRequestTool(Contract):
    kind: Literal["api_request"] = "api_request"
    name: str = Field(pattern=TOOL_NAME)
    description: str = Field(max_length=2000)
    variables: list[ToolVariable] = Field(default_factory=list)
    method: str = Field(
        default="POST",
        pattern=r"^[A-Z]{1,16}$",
        description="The HTTP method: GET and HEAD change nothing, any other is a side effect the gateway keeps from repeating.",
    )
    timeout_seconds: float = Field(
        default=10, gt=0, le=30, description="The tool's own timeout: the gateway's deadline for its calls follows it."
    )


CustomToolSpec = Annotated[
    TransferToUserTool | TransferToQueueTool | ApiRequestTool, Field(discriminator="kind")
]
"""What the gateway needs to list a custom tool: never its URL, headers or secrets."""


class PersonaTools(Contract):
    persona_id: str
    persona_name: str
    account_country: str = Field(pattern=r"^[A-Z]{2}$", description="How national phone numbers are read.")
    account_timezone: str
    custom_tools: list[CustomToolSpec]


class ResolveTransfer(Contract):
    tool_name: str = Field(pattern=TOOL_NAME)


class TransferDestination(Contract):
    destination_number: str
    target_kind: Literal["user", "queue"]
    target_id: str
    target_name: str


class RunApiRequest(Contract):
    tool_name: str = Field(pattern=TOOL_NAME)
    variables: dict[str, str | int | float] = Field(default_factory=dict)


class ApiResponse(Contract):
    status_code: int
    ok: bool
    body: str = Field(description="The response body as text, cut to a bounded size.")
    truncated: bool
    content_type: str | None = None


class PersonaUpdated(Contract):
    event: Literal["persona.updated"] = "persona.updated"
    account_id: str
    persona_id: str | None = Field(default=None, description="None: every persona of the account.")
    updated_at: AwareDatetime


class UserDndChanged(Contract):
    event: Literal["user.dnd_changed"] = "user.dnd_changed"
    account_id: str
    user_id: str
    dnd: bool
    dnd_until: AwareDatetime | None = None
    changed_at: AwareDatetime


class UserUpdated(Contract):
    """A user was created, replaced or deleted: what was read of it before may be out of date."""

    event: Literal["user.updated"] = "user.updated"
    account_id: str
    user_id: str
    updated_at: AwareDatetime


class QueueUpdated(Contract):
    """A queue was created, replaced or deleted: what was read of it before may be out of date."""

    event: Literal["queue.updated"] = "queue.updated"
    account_id: str
    queue_id: str
    updated_at: AwareDatetime


PERSONA_EVENTS: tuple[type[Contract], ...] = (PersonaUpdated, UserDndChanged, UserUpdated, QueueUpdated)
"""Every event persona-svc publishes on `Topic.persona_events`, keyed by the account id."""
