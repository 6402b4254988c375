"""The global tools of DESIGN.md section 1 and the command each one becomes."""

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
