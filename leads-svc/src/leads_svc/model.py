"""Leads and cases as leads-svc stores them, and how a caller is recognised.

A lead is a caller of an account, recognised by their number in E.164 form; each `create_lead`
adds one case to it. The number is the caller id when it reads as one, else the callback number the
caller gave; a call with neither is recognised by the call itself, so repeated `create_lead` on it
still make one lead. The lead is written once, by the command that created it; whatever changes
from call to call (name as given, intent, classification, summary, notes) lives on the cases.
Nothing on a lead is a counter or a "last case" pointer: those are read from the cases, because an
update is not safe under concurrency on the embedded store (DESIGN.md section 4).

Leads and cases are stored under their public ids (24 hex digits, roughly in creation order, which
the paged admin lists rely on). What makes them unique is a key document per caller and per
command, whose `_id` is `account_key(...)`: the store serves only a filter on `_id` alone from an
index, so every read on the way of a tool call is by `_id`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from bson import ObjectId
from pydantic import BaseModel, ConfigDict, Field

from switchboard.contracts import Command, utcnow
from switchboard.contracts.leads import Classification, CreateLead
from switchboard.phone import InvalidPhoneNumber, PhoneNumber, to_e164


def new_id() -> str:
    """24 hex digits that sort roughly by creation time: the order of the paged admin lists."""
    return str(ObjectId())


def now_ms() -> datetime:
    """Now, at the millisecond precision the database keeps, so a stored time reads back unchanged."""
    now = utcnow()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class Caller:
    """Who called, as far as the call context tells.

    `phone_e164` is set when the caller id reads as a valid phone number of the account's country
    (or an international one): only then can calls be matched to one lead. An unreadable caller id
    (anonymous, an extension, garbage) is kept as given in `caller_id`, for people to read, and the
    lead is not de-duplicable, exactly like a call without a caller id.
    """

    phone_e164: str | None
    caller_id: str | None

    @property
    def deduplicable(self) -> bool:
        return self.phone_e164 is not None


def identify_caller(caller_id_number: str | None, region: str | None) -> Caller:
    text = (caller_id_number or "").strip()
    if not text:
        return Caller(phone_e164=None, caller_id=None)
    try:
        return Caller(phone_e164=to_e164(text, region), caller_id=None)
    except InvalidPhoneNumber:
        return Caller(phone_e164=None, caller_id=text)


def account_key(account_id: str, key: str) -> str:
    """The `_id` of a document that stands for a value unique within an account.

    Account ids never contain `/` (`IDENTIFIER`), so the key is unambiguous, and it starts with the
    account like every key here.
    """
    return f"{account_id}/{key}"


def match_key(caller: Caller, call_id: str) -> str:
    """The value unique per account that decides "same lead".

    A phone number for a de-duplicable caller; otherwise the call, so that every `create_lead` of
    one call (and a redelivery of any of them) finds the call's one lead. E.164 numbers start with
    `+`, so the two never meet.
    """
    return caller.phone_e164 if caller.phone_e164 else f"call:{call_id}"


PhoneSource = Literal["caller_id", "callback"]


@dataclass(frozen=True)
class Identity:
    """What a lead is recorded with: the key it was claimed under and the number it has, if any."""

    match_key: str
    phone_e164: str | None
    phone_source: PhoneSource | None
    caller_id: str | None

    @property
    def deduplicable(self) -> bool:
        return self.phone_e164 is not None


class Document(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    id: str = Field(alias="_id")
    account_id: str

    def document(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)


class Record(Document):
    created_at: datetime


class Lead(Record):
    match_key: str
    phone_e164: str | None
    phone_source: PhoneSource | None = Field(
        default=None, description="Where the number came from: the caller id, or the callback number the caller gave."
    )
    caller_id: str | None
    deduplicable: bool
    name: str
    classification: Classification
    persona_id: str
    call_id: str
    command_id: str = Field(description="The create_lead command that created the lead.")


class Case(Record):
    lead_id: str
    command_id: str
    persona_id: str
    call_id: str
    name: str
    intent: str
    classification: Classification
    summary: str | None
    notes: str | None
    callback_number: str | None = Field(
        default=None, description="The number the caller asked to be called back on, E.164 with `;ext=` if any."
    )


class OutboxEntry(Document):
    """The events a create_lead command may still owe, recorded before it writes its lead or case.

    It names the records, not the events: whoever sends them reads the stored records, so an event
    always says what is stored, and a lead that another command wrote is not announced by this one.
    After `deadline` the command writes nothing more, so its records are final by then.
    """

    command_id: str
    lead_id: str
    case_id: str
    deadline: datetime


def _text(value: str | None) -> str | None:
    stripped = value.strip() if value is not None else None
    return stripped or None


def new_lead(command: Command[CreateLead], lead_id: str, identity: Identity, name: str, created_at: datetime) -> Lead:
    return Lead(
        id=lead_id,
        account_id=command.account_id,
        created_at=created_at,
        match_key=identity.match_key,
        phone_e164=identity.phone_e164,
        phone_source=identity.phone_source,
        caller_id=identity.caller_id,
        deduplicable=identity.deduplicable,
        name=name,
        classification=command.args.classification,
        persona_id=command.persona_id,
        call_id=command.call_id,
        command_id=command.command_id,
    )


def new_case(
    command: Command[CreateLead],
    case_id: str,
    lead_id: str,
    name: str,
    intent: str,
    created_at: datetime,
    callback: PhoneNumber | None = None,
) -> Case:
    args = command.args
    return Case(
        id=case_id,
        account_id=command.account_id,
        created_at=created_at,
        lead_id=lead_id,
        command_id=command.command_id,
        persona_id=command.persona_id,
        call_id=command.call_id,
        name=name,
        intent=intent,
        classification=args.classification,
        summary=_text(args.summary),
        notes=_text(args.notes),
        callback_number=str(callback) if callback else None,
    )


def new_outbox_entry(command: Command[CreateLead], lead_id: str, case_id: str) -> OutboxEntry:
    return OutboxEntry(
        id=account_key(command.account_id, command.command_id),
        account_id=command.account_id,
        command_id=command.command_id,
        lead_id=lead_id,
        case_id=case_id,
        deadline=command.deadline,
    )
