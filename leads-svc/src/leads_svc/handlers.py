"""The command handler of leads-svc: `create_lead`."""

from __future__ import annotations

import asyncio

from leads_svc.model import (
    Caller,
    Identity,
    identify_caller,
    match_key,
    new_case,
    new_id,
    new_lead,
    new_outbox_entry,
    now_ms,
)
from leads_svc.outbox import LeadEvents
from leads_svc.repository import Cases, Leads
from switchboard.contracts import Command
from switchboard.contracts.leads import CreateLead, LeadCreated
from switchboard.messaging import InvalidArgument, Unavailable, after_reply
from switchboard.phone import InvalidPhoneNumber, PhoneNumber, parse_number

OUT_OF_TIME = "The request ran out of time before the lead was recorded; try again in a moment."


async def create_lead(command: Command[CreateLead], *, leads: Leads, cases: Cases, events: LeadEvents) -> LeadCreated:
    """Adds a case to the caller's lead, creating the lead on the caller's first call.

    The lead is the caller number's; when the caller's number is withheld, the callback number's if
    the caller gave one, and in any case the call's: the call key makes every create_lead of one
    call (concurrent ones included) find one lead, and the number key, claimed first, joins a lead the
    number already has.

    The lead key insert decides which of concurrent first calls names the lead; the case key insert,
    keyed by the command id, makes a redelivery find the case it already added. The outbox entry is
    recorded before the lead and case are written, so no event is lost to a crash in between; the
    events go out after the reply (the relay sends them if this process stops first). The
    answer is rebuilt from the stored documents, so a repeat of a command answers what its first run
    answered.
    """
    name = command.args.name.strip()
    intent = command.args.intent.strip()
    if not name:
        raise InvalidArgument("The name is blank; ask the caller for their name and call create_lead again.")
    if not intent:
        raise InvalidArgument("The intent is blank; give in one sentence why the caller is calling.")
    caller = identify_caller(command.caller_id_number, command.region)
    callback = _callback(command.args.callback_number, command.region)
    _in_time(command)
    created_at = now_ms()

    # One after the other: the embedded store has one writer per database, so two inserts at once
    # take as long as two in a row (a read beside an insert does overlap, as below).
    new_lead_id = new_id()
    lead_id, identity = await _claim_lead(command, caller, callback, leads, new_lead_id)
    case_id = await cases.claim(command.account_id, command.command_id, new_id())
    entry = new_outbox_entry(command, lead_id, case_id)

    # A key another command claimed has its lead, unless that command stopped between its inserts:
    # then this command writes the lead, under the id the key names. The lead is written before the
    # case, so a case never names a lead that is not there.
    if lead_id == new_lead_id:
        recorded, lead = await events.expect(entry), None
    else:
        recorded, lead = await asyncio.gather(events.expect(entry), leads.get(command.account_id, lead_id))
    lead_inserted = False
    if lead is None:
        _in_time(command)
        lead, lead_inserted = await leads.add(new_lead(command, lead_id, identity, name, created_at))
    _in_time(command)
    case, case_inserted = await cases.add(new_case(command, case_id, lead.id, name, intent, created_at, callback))
    await after_reply(
        lambda: events.announce(
            entry, recorded=recorded, lead=lead if lead_inserted else None, case=case if case_inserted else None
        )
    )
    return LeadCreated(
        lead_id=lead.id,
        case_id=case.id,
        lead_existed=lead.command_id != command.command_id,
        deduplicable=lead.deduplicable,
        phone_number=lead.phone_e164,
    )


def _callback(text: str | None, region: str | None) -> PhoneNumber | None:
    """The callback number the caller gave; blank is none, anything that is not a number is refused."""
    if text is None or not text.strip():
        return None
    try:
        return parse_number(text, region)
    except InvalidPhoneNumber as e:
        raise InvalidArgument(
            f"callback_number: {e} Ask the caller for the number to call them back on, with its area code "
            "(or in international form, e.g. +14155550123), or leave callback_number out."
        ) from None


async def _claim_lead(
    command: Command[CreateLead], caller: Caller, callback: PhoneNumber | None, leads: Leads, new_lead_id: str
) -> tuple[str, Identity]:
    """The id of the command's lead, and what the lead is recorded with if this command writes it."""
    account_id = command.account_id
    if caller.phone_e164 is not None:
        lead_id = await leads.claim(account_id, caller.phone_e164, new_lead_id)
        return lead_id, Identity(caller.phone_e164, caller.phone_e164, "caller_id", None)
    call_key = match_key(caller, command.call_id)
    proposed = await leads.claim(account_id, callback.e164, new_lead_id) if callback else new_lead_id
    lead_id = await leads.claim(account_id, call_key, proposed)
    if callback is not None and lead_id == proposed:
        return lead_id, Identity(callback.e164, callback.e164, "callback", caller.caller_id)
    # The call's lead was named by another command of this call (without a callback number, or
    # with another one): it is that lead, recorded with no number if this command writes it.
    return lead_id, Identity(call_key, None, None, caller.caller_id)


def _in_time(command: Command[CreateLead]) -> None:
    """Nothing is written after the command's deadline: the agent was told the call failed, and may retry."""
    if command.expired():
        raise Unavailable(OUT_OF_TIME)
