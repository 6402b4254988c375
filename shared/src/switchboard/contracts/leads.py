"""Commands, results and events of leads-svc."""

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field

from switchboard.contracts.base import Contract


class Classification(StrEnum):
    lead = "lead"
    customer = "customer"
    spam = "spam"
    other = "other"


class CreateLead(Contract):
    name: str = Field(min_length=1, max_length=200, description="The caller's name as they gave it.")
    intent: str = Field(
        min_length=1, max_length=1000, description="Why the caller is calling, in one sentence."
    )
    classification: Classification = Field(
        default=Classification.lead,
        description="lead (a prospect), customer (already a customer), spam, or other.",
    )
    summary: str | None = Field(
        default=None, max_length=4000, description="A short summary of the conversation so far."
    )
    notes: str | None = Field(default=None, max_length=4000, description="Anything else worth keeping.")
    callback_number: str | None = Field(
        default=None,
        max_length=64,
        description=(
            "The number the caller asks to be called back on, as they said it (+14155550123, "
            "(415) 555-0123, with an extension if any). Ask for it when the caller's number is withheld; "
            "leave it out when the caller gives none."
        ),
    )


class LeadCreated(Contract):
    lead_id: str
    case_id: str
    lead_existed: bool = Field(description="True when this caller already had a lead; a new case was added.")
    deduplicable: bool = Field(
        description="False when the lead has no number (no caller number, no callback number) to match later calls on."
    )
    phone_number: str | None = Field(
        default=None,
        description="The lead's number (E.164): the caller's, or the callback number when the caller's was withheld.",
    )


class LeadCreatedEvent(Contract):
    event: Literal["lead.created"] = "lead.created"
    account_id: str
    lead_id: str
    call_id: str
    classification: Classification
    created_at: AwareDatetime


class CaseCreatedEvent(Contract):
    event: Literal["case.created"] = "case.created"
    account_id: str
    lead_id: str
    case_id: str
    call_id: str
    created_at: AwareDatetime
