"""Commands, results and events of contacts-svc."""

from enum import StrEnum

from pydantic import Field

from switchboard.contracts.base import Contract


class ContactSource(StrEnum):
    native = "native"
    google = "google"
    microsoft = "microsoft"


class LookupContact(Contract):
    phone_number: str = Field(
        min_length=1,
        max_length=64,
        description=(
            "The phone number to look up, in any common form: +14155550123, (415) 555-0123, "
            "004915112345678. National forms use the account's country."
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


class ContactLookup(Contract):
    phone_number: str = Field(description="The looked-up number in E.164 form.")
    found: bool
    contacts: list[ContactMatch]
    unavailable_sources: list[ContactSource] = Field(
        default_factory=list, description="Connected sources that did not answer in time."
    )
