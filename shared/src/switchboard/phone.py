"""Phone numbers in one form, E.164, for every service that stores or compares them.

National forms are read with the account's country (ISO 3166 alpha-2) as the default region; the
gateway puts that country on every command (`Command.region`).

A number may carry an extension to dial once the line answers: `+1 415 555 0123 ext 5`,
`4155550123x12`, `tel:+14155550123;ext=22`, `+14155550123,,22`. `parse_number` keeps it;
`to_e164` is for matching and storing a line, where the extension does not matter.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import phonenumbers

EXTENSION = re.compile(r"^\d{2,6}$")

WITHHELD_FORMS = frozenset(
    {
        "anonymous",
        "anonymous@anonymous.invalid",
        "sip:anonymous@anonymous.invalid",
        "restricted",
        "unavailable",
        "not available",
        "unknown",
        "private",
        "withheld",
        "blocked",
        "out of area",
        "p",
        "o",
    }
)
"""What phone systems send, in any letter case, for a caller whose number is not given
("p" and "o" are how caller-id delivery abbreviates "private" and "out of area")."""


class InvalidPhoneNumber(ValueError):
    """The text is not a phone number we can dial; the message says so in one sentence."""


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """A dialable number: the line in E.164 form, and the extension to dial once it answers, if any."""

    e164: str
    extension: str | None = None

    def __str__(self) -> str:
        """RFC 3966 style, the form a person and a phone system both read: `+14155550123;ext=22`."""
        return f"{self.e164};ext={self.extension}" if self.extension else self.e164


def parse_number(text: str, region: str | None = None) -> PhoneNumber:
    """The number and its extension, or InvalidPhoneNumber when the text is not a valid number."""
    candidate = text.strip()
    if not candidate or len(candidate) > 64:
        raise InvalidPhoneNumber("The phone number is empty or too long.")
    if candidate.lower().startswith("tel:"):
        candidate = candidate[4:].strip()
    if candidate.startswith("00"):
        candidate = "+" + candidate[2:]
    try:
        parsed = phonenumbers.parse(candidate, (region or "US").upper())
    except phonenumbers.NumberParseException as e:
        raise InvalidPhoneNumber(f"{text!r} is not a phone number.") from e
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber(f"{text!r} is not a valid phone number.")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return PhoneNumber(e164=e164, extension=parsed.extension or None)


def to_e164(text: str, region: str | None = None) -> str:
    """The line of a number in E.164 form; an extension, if the text carries one, is not part of it."""
    return parse_number(text, region).e164


def is_extension(text: str) -> bool:
    return bool(EXTENSION.match(text.strip()))


def is_withheld(text: str | None) -> bool:
    """True for no value, a blank one, or a form phone systems send for a withheld number."""
    value = (text or "").strip().lower()
    return not value or value in WITHHELD_FORMS


def mask(number: str | None) -> str | None:
    """A form safe for logs and telemetry: the last two digits only."""
    if not number:
        return number
    digits = re.sub(r"\D", "", number)
    return f"***{digits[-2:]}" if len(digits) > 2 else "***"


def fingerprint(number: str) -> str:
    """A stable, non-reversible key for correlating a number in telemetry without showing it."""
    return hashlib.sha256(number.encode()).hexdigest()[:16]
