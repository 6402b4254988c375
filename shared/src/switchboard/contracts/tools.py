"""The global tools of DESIGN.md section 1, the command each one becomes, and what the model reads about it.

The descriptions are part of the public contract: they are what an AI agent reads when it decides
whether and how to call a tool, so every MCP gateway replica must list the same words.
"""

from dataclasses import dataclass
from enum import StrEnum

from switchboard.contracts.types import CommandType


class GlobalTool(StrEnum):
    transfer_call = "transfer_call"
    is_office_open = "is_office_open"
    lookup_contact = "lookup_contact"
    check_user_availability = "check_user_availability"
    create_lead = "create_lead"
    hangup_call = "hangup_call"


GLOBAL_TOOL_COMMANDS: dict[GlobalTool, CommandType] = {
    GlobalTool.transfer_call: CommandType.transfer_call,
    GlobalTool.is_office_open: CommandType.is_office_open,
    GlobalTool.lookup_contact: CommandType.lookup_contact,
    GlobalTool.check_user_availability: CommandType.check_user_availability,
    GlobalTool.create_lead: CommandType.create_lead,
    GlobalTool.hangup_call: CommandType.hangup_call,
}


@dataclass(frozen=True, slots=True)
class ToolPresentation:
    """How a tool is shown to the model: a title, a description, and MCP behaviour hints."""

    title: str
    description: str
    read_only: bool
    destructive: bool
    idempotent: bool = False
    open_world: bool = False


GLOBAL_TOOL_PRESENTATION: dict[GlobalTool, ToolPresentation] = {
    GlobalTool.transfer_call: ToolPresentation(
        title="Transfer the call",
        description=(
            "Transfer the caller you are speaking with to another phone number or internal extension. "
            "A number may carry an extension to dial once the line answers (+14155550123 ext 22); the "
            "result says when it will be dialled. Use it only when the caller asked for it or it is clearly "
            "the next step, and tell the caller before you transfer. Once the transfer is accepted the call "
            "leaves you: do not keep talking."
        ),
        read_only=False,
        destructive=True,
        open_world=True,
    ),
    GlobalTool.is_office_open: ToolPresentation(
        title="Is the office open?",
        description=(
            "Check whether the office is open right now, in the account's timezone, taking today's opening "
            "hours and holidays into account. Answers with one sentence (for example 'Office is currently "
            "open') plus the local time and, when closed, the next opening time."
        ),
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    GlobalTool.lookup_contact: ToolPresentation(
        title="Look up a contact",
        description=(
            "Find who a phone number belongs to in the account's contacts (its own address book and any "
            "connected Google or Microsoft contacts). Use it with the caller's number to greet a known "
            "caller by name, or with a number the caller mentions. When the caller's number is withheld "
            "(anonymous, restricted, unavailable) there is nothing to look up until the caller tells you a number."
        ),
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    GlobalTool.check_user_availability: ToolPresentation(
        title="Check a colleague's availability",
        description=(
            "Check whether a colleague can take a call now: whether they are on Do Not Disturb, and until "
            "when. Use it before offering to transfer the caller to that person."
        ),
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    GlobalTool.create_lead: ToolPresentation(
        title="Record a lead",
        description=(
            "Record the caller as a lead with their name and why they are calling, so the team can follow "
            "up. Call it once per call, after you know the caller's name and intent; calling it again on the "
            "same call does not create a second lead. When the caller's number is withheld, ask for a number "
            "to call them back on and pass it as callback_number."
        ),
        read_only=False,
        destructive=False,
        idempotent=True,
    ),
    GlobalTool.hangup_call: ToolPresentation(
        title="Hang up",
        description=(
            "End the call. Use it only after saying goodbye, when the conversation is over or the caller "
            "asked to end it. The caller is disconnected at once."
        ),
        read_only=False,
        destructive=True,
        idempotent=True,
    ),
}
