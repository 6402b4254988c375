"""Where a call may be transferred: normalising a destination and applying the account's rules.

Every refusal is a domain error whose sentence the model reads, raised before anything is written.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import PhoneNumberType, shortnumberinfo
from pydantic import BaseModel, ConfigDict, Field, field_validator
from switchboard.messaging import InvalidArgument, Refused
from switchboard.phone import InvalidPhoneNumber, is_extension, parse_number

from call_control_svc.model import Destination

E164_PREFIX = re.compile(r"^\+[1-9]\d{0,14}$")


class DestinationRules(BaseModel):
    """One account's transfer rules. The defaults guard against toll fraud without blocking ordinary transfers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    allow_international: bool = Field(
        default=False, description="Allow transfers to numbers outside the account's country."
    )
    block_premium_rate: bool = Field(default=True, description="Refuse numbers the numbering plan marks premium-rate.")
    forbidden_prefixes: list[str] = Field(
        default_factory=list,
        max_length=200,
        description='E.164 prefixes never to transfer to, e.g. "+1900" or "+44871".',
    )
    allow_extensions: bool = Field(default=True, description="Allow transfers to internal extensions (2-6 digits).")

    @field_validator("forbidden_prefixes")
    @classmethod
    def _prefixes_are_e164(cls, prefixes: list[str]) -> list[str]:
        bad = [p for p in prefixes if not E164_PREFIX.match(p)]
        if bad:
            raise ValueError(f"each forbidden prefix must be + and 1 to 15 digits; not {bad[:5]}")
        return sorted(set(prefixes))


def resolve_destination(text: str, region: str, rules: DestinationRules) -> Destination:
    """The normalised destination, or raises InvalidArgument (unreadable) / Refused (forbidden here)."""
    candidate = text.strip()
    if shortnumberinfo.is_emergency_number(candidate, region):
        raise Refused(
            f"{candidate} is an emergency number; calls cannot be transferred to emergency services. "
            "Tell the caller to hang up and dial it themselves if they need help."
        )
    if is_extension(candidate):
        if not rules.allow_extensions:
            raise Refused("This account does not allow transfers to internal extensions; use a full phone number.")
        return Destination(number=candidate, kind="extension")
    try:
        number = parse_number(candidate, region)
    except InvalidPhoneNumber as e:
        raise InvalidArgument(
            f"{e} Give a phone number with its area code (or in international form, e.g. +14155550123), "
            "optionally followed by an extension in digits (+14155550123 ext 22), "
            "or an internal extension of 2 to 6 digits."
        ) from None
    _check_rules(number.e164, region, rules)
    return Destination(number=number.e164, kind="e164", extension=number.extension)


def _check_rules(number: str, region: str, rules: DestinationRules) -> None:
    parsed = phonenumbers.parse(number)
    prefix = next((p for p in rules.forbidden_prefixes if number.startswith(p)), None)
    if prefix is not None:
        raise Refused(f"This account does not allow transfers to numbers starting with {prefix}.")
    if rules.block_premium_rate and phonenumbers.number_type(parsed) == PhoneNumberType.PREMIUM_RATE:
        raise Refused(
            f"{number} is a premium-rate number; this account does not allow transfers to premium-rate numbers."
        )
    number_region = phonenumbers.region_code_for_number(parsed)
    if not rules.allow_international and number_region != region:
        raise Refused(
            f"{number} is outside the account's country ({region}); this account does not allow "
            "international transfers."
        )
