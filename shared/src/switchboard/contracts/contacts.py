"""Commands, results and events of contacts-svc."""

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field

from switchboard.contracts.base import Contract
from switchboard.contracts.envelope import IDENTIFIER


class ContactSource(StrEnum):
    native = "native"
    google = "google"
    microsoft = "microsoft"


class LookupContact(Contract):
    phone_number: str = Field(
        max_length=64,
        description=(
            "The phone number to look up, in any common form: +14155550123, (415) 555-0123, "
            "004915112345678. National forms use the account's country. When the caller's number is "
            "withheld (anonymous, restricted, empty), there is nothing to look up: ask the caller for it."
        ),
    )


class ContactPhone(Contract):
    number: str = Field(description="E.164 form.")
    label: str | None = None


class ContactMatch(Contract):
    name: str
    company: str | None = None
    email: str | None = None
    phone_numbers: list[ContactPhone]
    source: ContactSource
    also_in: list[ContactSource] = Field(
        default_factory=list, description="Other sources that hold the same person under the same name."
    )


class ContactLookup(Contract):
    phone_number: str = Field(description="The looked-up number in E.164 form.")
    found: bool
    contacts: list[ContactMatch]
    unavailable_sources: list[ContactSource] = Field(
        default_factory=list, description="Connected sources that did not answer in time."
    )


class ContactCreated(Contract):
    """A native contact was created (admin API or import)."""

    event: Literal["contact.created"] = "contact.created"
    event_id: str = Field(pattern=IDENTIFIER, description="Unique per change: a redelivered event has the same id.")
    account_id: str = Field(pattern=IDENTIFIER)
    contact_id: str = Field(pattern=IDENTIFIER)
    name: str
    phone_numbers: list[str] = Field(description="Its numbers, E.164.")
    changed_at: AwareDatetime


class ContactUpdated(Contract):
    """A native contact was changed; both number sets are given so readers can drop what they derived from the old ones."""

    event: Literal["contact.updated"] = "contact.updated"
    event_id: str = Field(pattern=IDENTIFIER, description="Unique per change: a redelivered event has the same id.")
    account_id: str = Field(pattern=IDENTIFIER)
    contact_id: str = Field(pattern=IDENTIFIER)
    name: str
    phone_numbers: list[str] = Field(description="Its numbers now, E.164.")
    previous_phone_numbers: list[str] = Field(description="Its numbers before the change, E.164.")
    changed_at: AwareDatetime


class ContactDeleted(Contract):
    event: Literal["contact.deleted"] = "contact.deleted"
    event_id: str = Field(pattern=IDENTIFIER, description="Unique per change: a redelivered event has the same id.")
    account_id: str = Field(pattern=IDENTIFIER)
    contact_id: str = Field(pattern=IDENTIFIER)
    phone_numbers: list[str] = Field(description="The numbers it had, E.164.")
    changed_at: AwareDatetime


class ContactSourceConnected(Contract):
    """An account connected (or reconnected) an external address book."""

    event: Literal["contact_source.connected"] = "contact_source.connected"
    event_id: str = Field(pattern=IDENTIFIER, description="Unique per change: a redelivered event has the same id.")
    account_id: str = Field(pattern=IDENTIFIER)
    source: ContactSource
    changed_at: AwareDatetime


class ContactSourceDisconnected(Contract):
    event: Literal["contact_source.disconnected"] = "contact_source.disconnected"
    event_id: str = Field(pattern=IDENTIFIER, description="Unique per change: a redelivered event has the same id.")
    account_id: str = Field(pattern=IDENTIFIER)
    source: ContactSource
    changed_at: AwareDatetime


CONTACT_EVENTS: tuple[type[Contract], ...] = (
    ContactCreated,
    ContactUpdated,
    ContactDeleted,
    ContactSourceConnected,
    ContactSourceDisconnected,
)
"""Every event contacts-svc publishes on `Topic.contact_events`, keyed by the account id; delivery is
at least once, so readers that must not apply one twice drop repeated `event_id`s."""
