"""Command handlers of contacts-svc: `(command, dependencies) -> result`, or a domain error."""

from __future__ import annotations

from typing import Protocol

from contacts_svc.lookup import ContactFinder
from contacts_svc.model import normalise_number
from switchboard.contracts import Command
from switchboard.contracts.contacts import ContactLookup, LookupContact
from switchboard.messaging import InvalidArgument, NotFound, Unavailable
from switchboard.phone import InvalidPhoneNumber, is_withheld

WITHHELD = (
    "There is no number to look up: the caller's number is withheld (or none was given). "
    "Ask the caller for their phone number if you need it, then look that number up."
)


class Regions(Protocol):
    async def region(self, account_id: str) -> str | None: ...


async def lookup_contact(
    command: Command[LookupContact], *, finder: ContactFinder, regions: Regions, reply_margin: float
) -> ContactLookup:
    if is_withheld(command.args.phone_number):
        raise NotFound(WITHHELD)
    region = command.region or await regions.region(command.account_id)
    try:
        e164 = normalise_number(command.args.phone_number, region)
    except InvalidPhoneNumber as e:
        raise InvalidArgument(f"{e} Ask the caller to say the number again, with its country code.") from None
    budget = command.remaining() - reply_margin
    if budget <= 0:
        raise Unavailable("There was no time left to look the number up; try again.")
    return await finder.find(command.account_id, e164, region, budget=budget)
