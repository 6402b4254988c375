"""Tool results as the model reads them: one or two plain sentences, plus the structured result."""

from __future__ import annotations

from datetime import datetime

import mcp_types as types

from switchboard.contracts import Contract
from switchboard.contracts.call_control import HangupResult, TransferResult
from switchboard.contracts.contacts import ContactLookup, ContactMatch
from switchboard.contracts.leads import LeadCreated
from switchboard.contracts.persona import OFFICE_STATUS_TEXT, ApiResponse, Availability, OfficeStatus

BUSY = "The phone system is handling too many requests right now; try again in a moment."
UNEXPECTED = "This tool failed unexpectedly; carry on without it or try again later."
IDEMPOTENCY_CONFLICT = (
    "This Idempotency-Key was already used for a different tool call; send a new key for a new request."
)
REPEAT_NOTE = "(The same request was made moments ago; this is its result, and it was not carried out again.)"


def unavailable(tool_name: str) -> str:
    return f"{tool_name} is temporarily unavailable; try again in a moment, or carry on without it."


def error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=message)], is_error=True)


def success(result: Contract, *, repeat: bool = False) -> types.CallToolResult:
    text, failed = describe(result)
    structured = result.model_dump(mode="json")
    if repeat:
        text = f"{text} {REPEAT_NOTE}"
        structured["repeat"] = True
    return types.CallToolResult(
        content=[types.TextContent(text=text)],
        structured_content=structured,
        is_error=failed,
    )


def describe(result: Contract) -> tuple[str, bool]:
    """The text for the model, and whether the result is a failure it must act on."""
    match result:
        case OfficeStatus():
            return OFFICE_STATUS_TEXT[result.status], False
        case TransferResult():
            return result.message, not result.accepted
        case HangupResult():
            return result.message, False
        case ContactLookup():
            return _contacts(result), False
        case Availability():
            return _availability(result), False
        case LeadCreated():
            return _lead(result), False
        case ApiResponse():
            return _api_response(result), not result.ok
    return result.model_dump_json(), False


def _contacts(lookup: ContactLookup) -> str:
    missing = ""
    if lookup.unavailable_sources:
        names = ", ".join(source.value for source in lookup.unavailable_sources)
        missing = f" (not checked, did not answer in time: {names})"
    if not lookup.found or not lookup.contacts:
        return f"No contact found for {lookup.phone_number}{missing}."
    people = "; ".join(_contact(match) for match in lookup.contacts)
    return f"Found {len(lookup.contacts)} contact(s) for {lookup.phone_number}: {people}{missing}."


def _contact(match: ContactMatch) -> str:
    parts = [match.name]
    if match.company:
        parts.append(f"of {match.company}")
    numbers = ", ".join(f"{p.number} ({p.label})" if p.label else p.number for p in match.phone_numbers)
    if numbers:
        parts.append(f"phone {numbers}")
    if match.email:
        parts.append(f"email {match.email}")
    parts.append(f"source {match.source.value}")
    return ", ".join(parts)


def _availability(availability: Availability) -> str:
    if availability.available:
        return f"{availability.name} is available to take a call."
    if availability.dnd and availability.dnd_until:
        until = _time(availability.dnd_until)
        return f"{availability.name} is on Do Not Disturb until {until} and cannot take a call now."
    if availability.dnd:
        return f"{availability.name} is on Do Not Disturb and cannot take a call now."
    return f"{availability.name} is not available to take a call now."


def _lead(lead: LeadCreated) -> str:
    if lead.lead_existed:
        return f"This caller already had a lead ({lead.lead_id}); case {lead.case_id} was added to it."
    return f"Lead {lead.lead_id} recorded with case {lead.case_id}."


def _api_response(response: ApiResponse) -> str:
    cut = " (cut short)" if response.truncated else ""
    if response.ok:
        return f"The request succeeded (HTTP {response.status_code}). Response{cut}: {response.body}"
    return f"The request failed with HTTP {response.status_code}. Response{cut}: {response.body}"


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M %Z").strip()
