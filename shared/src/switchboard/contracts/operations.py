"""The registry: for each command type, the topic of the service that owns it, its args and its result."""

from dataclasses import dataclass, field

from switchboard.contracts import call_control, contacts, leads, persona
from switchboard.contracts.base import Contract
from switchboard.contracts.envelope import Command
from switchboard.contracts.topics import Topic
from switchboard.contracts.types import CommandType


@dataclass(frozen=True, slots=True)
class Operation:
    type: CommandType
    topic: Topic
    args: type[Contract]
    result: type[Contract]
    reads_only: bool = False
    """The handler answers from data and changes nothing a caller could see twice. Such a command
    keeps no processed-command record: a redelivery or replay is simply answered again, from the
    data as it is then, and a tool call is spared the record's two writes."""
    claims_while_reading: bool = False
    """The handler reads before it writes and awaits `switchboard.messaging.claimed()` before its
    first write, so the runtime claims the command id while the handler reads instead of before it
    starts: a database round trip less on the caller's wait."""
    command: type[Command] = field(init=False)
    """`Command[args]`, made once and held here: pydantic keeps parametrized models only weakly, so
    without this reference the class is collected whenever no such command is alive and rebuilt
    (about 2 ms of CPU) on the next request."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "command", Command[self.args])


OPERATIONS: dict[CommandType, Operation] = {
    op.type: op
    for op in (
        Operation(CommandType.transfer_call, Topic.call_control_commands, call_control.TransferCall, call_control.TransferResult, claims_while_reading=True),
        Operation(CommandType.hangup_call, Topic.call_control_commands, call_control.HangupCall, call_control.HangupResult, claims_while_reading=True),
        Operation(CommandType.lookup_contact, Topic.contacts_commands, contacts.LookupContact, contacts.ContactLookup, reads_only=True),
        Operation(CommandType.create_lead, Topic.leads_commands, leads.CreateLead, leads.LeadCreated),
        Operation(CommandType.is_office_open, Topic.persona_commands, persona.IsOfficeOpen, persona.OfficeStatus, reads_only=True),
        Operation(CommandType.check_user_availability, Topic.persona_commands, persona.CheckUserAvailability, persona.Availability, reads_only=True),
        Operation(CommandType.list_tools, Topic.persona_commands, persona.ListTools, persona.PersonaTools, reads_only=True),
        Operation(CommandType.resolve_transfer, Topic.persona_commands, persona.ResolveTransfer, persona.TransferDestination, reads_only=True),
        Operation(CommandType.run_api_request, Topic.persona_commands, persona.RunApiRequest, persona.ApiResponse),
    )
}


def operations_of(topic: Topic) -> dict[CommandType, Operation]:
    return {t: op for t, op in OPERATIONS.items() if op.topic is topic}
