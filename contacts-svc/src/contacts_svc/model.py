"""The domain of contacts-svc: native contacts, connected address books, and how numbers are read."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import phonenumbers
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr, field_validator

from switchboard.contracts import utcnow
from switchboard.contracts.contacts import ContactMatch, ContactPhone, ContactSource
from switchboard.contracts.envelope import IDENTIFIER
from switchboard.phone import InvalidPhoneNumber, to_e164

REGION = r"^[A-Z]{2}$"
MAX_PHONES = 20
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,253}$")


def now() -> datetime:
    """The current time at the store's precision (milliseconds), so what is returned is what is stored."""
    current = utcnow()
    return current.replace(microsecond=current.microsecond // 1000 * 1000)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def is_international(text: str) -> bool:
    candidate = text.strip()
    return candidate.startswith("+") or candidate.startswith("00")


def normalise_number(text: str, region: str | None) -> str:
    """E.164 for `text`; national forms need `region` (the account's country), international ones do not."""
    if region is None and not is_international(text):
        raise InvalidPhoneNumber(
            f"{text!r} has no country code and no country is known to read it with; "
            "give it in international form (+14155550123)."
        )
    return to_e164(text, region)


class PhoneEntry(Frozen):
    number: str = Field(description="E.164.")
    label: str | None = Field(default=None, max_length=50)


class Contact(Frozen):
    """A native contact as stored: every number already in E.164."""

    account_id: str = Field(pattern=IDENTIFIER)
    contact_id: str = Field(pattern=IDENTIFIER)
    name: str = Field(min_length=1, max_length=200)
    company: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    phones: list[PhoneEntry] = Field(max_length=MAX_PHONES)
    created_at: AwareDatetime
    updated_at: AwareDatetime

    @property
    def numbers(self) -> list[str]:
        return list(dict.fromkeys(p.number for p in self.phones))

    def same_content(self, other: Contact) -> bool:
        return (self.name, self.company, self.email, self.phones) == (
            other.name,
            other.company,
            other.email,
            other.phones,
        )

    def as_match(self) -> ContactMatch:
        return ContactMatch(
            name=self.name,
            company=self.company,
            email=self.email,
            phone_numbers=[ContactPhone(number=p.number, label=p.label) for p in self.phones],
            source=ContactSource.native,
        )


class PhoneInput(Frozen):
    number: str = Field(min_length=1, max_length=64, description="Any common form; national forms use the region.")
    label: str | None = Field(default=None, max_length=50, description="mobile, work, home, ...")


class ContactInput(Frozen):
    """What an admin write or one imported row gives for a contact; numbers not yet normalised."""

    name: str = Field(min_length=1, max_length=200)
    company: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    phone_numbers: list[PhoneInput] = Field(min_length=1, max_length=MAX_PHONES)

    @field_validator("name", "company", "email", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        if isinstance(value, str):
            value = " ".join(value.split())
            return value or None
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not EMAIL.match(value):
            raise ValueError("not an email address")
        return value


class InvalidContact(ValueError):
    """One sentence saying what is wrong with a contact's input."""


def normalise_phones(phones: list[PhoneInput], region: str | None) -> list[PhoneEntry]:
    """E.164 entries, in input order, without repeats; the first bad number fails the whole contact."""
    entries: dict[str, PhoneEntry] = {}
    for position, phone in enumerate(phones, start=1):
        try:
            number = normalise_number(phone.number, region)
        except InvalidPhoneNumber as e:
            raise InvalidContact(f"Phone number {position}: {e}") from e
        label = " ".join(phone.label.split()).lower() if phone.label and phone.label.strip() else None
        entries.setdefault(number, PhoneEntry(number=number, label=label))
    return list(entries.values())


class SourceStatus(StrEnum):
    connected = "connected"
    reauthorization_required = "reauthorization_required"


CONNECTABLE = (ContactSource.google, ContactSource.microsoft)


class SourceConnection(Frozen):
    """An account's link to an external address book. Tokens are secrets: never logged, never returned."""

    account_id: str = Field(pattern=IDENTIFIER)
    source: ContactSource
    refresh_token: SecretStr
    access_token: SecretStr | None = None
    access_token_expires_at: AwareDatetime | None = None
    status: SourceStatus = SourceStatus.connected
    last_error: str | None = None
    connected_at: AwareDatetime

    def usable_token(self, now: datetime, *, leeway: timedelta = timedelta(seconds=60)) -> SecretStr | None:
        if self.access_token is None or self.access_token_expires_at is None:
            return None
        return self.access_token if self.access_token_expires_at - leeway > now else None


@dataclass(frozen=True)
class AccessToken:
    value: SecretStr
    expires_at: datetime
    refresh_token: SecretStr | None = None
    """Set when the provider rotated the refresh token."""


def valid_region(region: str | None) -> str | None:
    """The region in upper case, or raises ValueError when libphonenumber does not know it."""
    if region is None:
        return None
    code = region.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{region!r} is not a country code libphonenumber knows (ISO 3166 alpha-2, e.g. US, DE).")
    return code
