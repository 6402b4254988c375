"""Phone numbers in one form, E.164, for every service that stores or compares them.

National forms are read with the account's country (ISO 3166 alpha-2) as the default region; the
gateway puts that country on every command (`Command.region`).
"""

from __future__ import annotations

import hashlib
import re

import phonenumbers

EXTENSION = re.compile(r"^\d{2,6}$")


class InvalidPhoneNumber(ValueError):
    """The text is not a phone number we can dial; the message says so in one sentence."""


def to_e164(text: str, region: str | None = None) -> str:
    candidate = text.strip()
    if not candidate or len(candidate) > 64:
        raise InvalidPhoneNumber("The phone number is empty or too long.")
    if candidate.startswith("00"):
        candidate = "+" + candidate[2:]
    try:
        parsed = phonenumbers.parse(candidate, (region or "US").upper())
    except phonenumbers.NumberParseException as e:
        raise InvalidPhoneNumber(f"{text!r} is not a phone number.") from e
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber(f"{text!r} is not a valid phone number.")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def is_extension(text: str) -> bool:
    return bool(EXTENSION.match(text.strip()))


def mask(number: str | None) -> str | None:
    """A form safe for logs and telemetry: the last two digits only."""
    if not number:
        return number
    digits = re.sub(r"\D", "", number)
    return f"***{digits[-2:]}" if len(digits) > 2 else "***"


def fingerprint(number: str) -> str:
    """A stable, non-reversible key for correlating a number in telemetry without showing it."""
    return hashlib.sha256(number.encode()).hexdigest()[:16]
