"""The name of every command type, `<service>.<operation>`."""

from enum import StrEnum


class CommandType(StrEnum):
    transfer_call = "call_control.transfer_call"
    hangup_call = "call_control.hangup_call"

    lookup_contact = "contacts.lookup_contact"

    create_lead = "leads.create_lead"

    is_office_open = "persona.is_office_open"
    check_user_availability = "persona.check_user_availability"
    list_tools = "persona.list_tools"
    resolve_transfer = "persona.resolve_transfer"
    run_api_request = "persona.run_api_request"
