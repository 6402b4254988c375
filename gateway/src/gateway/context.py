"""The call context headers of an MCP request, read as real phone systems send them.

`call_id` is whatever the PBX uses (a SIP Call-ID such as `a84b4c76e66710@pc33.atlanta.example.com`,
a UUID, an opaque token): any visible ASCII up to 256 characters. `caller_id_number` is a phone
number, or one of the forms phone systems send for a caller who withholds the number
(`anonymous`, `restricted`, `unavailable`, `private`, an empty value, ...): such a call goes on as a
call with no known number, never a refused request. An `Idempotency-Key` header, where a client
sends one, makes its repeats one effect (`gateway.repeats`). Anything else is a clear 400.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from gateway.model import Caller
from switchboard.contracts.envelope import CALL_ID, IDENTIFIER
from switchboard.phone import is_withheld

ACCOUNT_HEADER = "account_id"
PERSONA_HEADER = "persona_id"
CALL_HEADER = "call_id"
CALLER_NUMBER_HEADER = "caller_id_number"
IDEMPOTENCY_HEADER = "idempotency-key"

MAX_CALL_ID = 256
MAX_IDEMPOTENCY_KEY = 255

_identifier = re.compile(IDENTIFIER)
_call_id = re.compile(CALL_ID)
_phone = re.compile(r"^\+?[0-9()\-. ]{1,64}$")


@dataclass(frozen=True, slots=True)
class BadHeader:
    """Why the call context headers cannot be used, in one sentence for the client."""

    message: str


def caller_number(value: str | None) -> str | None | BadHeader:
    """The caller's number as given, None for a withheld or absent number, or why the value is refused."""
    if is_withheld(value):
        return None
    text = (value or "").strip()
    if text.lower().startswith("tel:"):
        text = text[4:].strip()
    if _phone.match(text) and any(c.isdigit() for c in text):
        return text
    return BadHeader(
        "The caller_id_number header must be a phone number (digits, optionally with +, spaces, dashes, dots or "
        "parentheses) or a withheld form such as 'anonymous'; leave it out when the caller's number is unknown."
    )


def read_caller(headers: Mapping[str, str], *, key_id: str, account_id: str) -> Caller | BadHeader:
    """The request's `Caller`: the key's account and the call context of the headers."""
    persona_id = headers.get(PERSONA_HEADER)
    if not persona_id:
        return BadHeader(f"The {PERSONA_HEADER} header is required.")
    if not _identifier.match(persona_id):
        return BadHeader(
            f"The {PERSONA_HEADER} header is malformed: use 1 to 128 letters, digits or . _ : - "
            "starting with a letter or digit."
        )
    call_id = headers.get(CALL_HEADER)
    if not call_id:
        return BadHeader(f"The {CALL_HEADER} header is required.")
    if len(call_id) > MAX_CALL_ID:
        return BadHeader(f"The {CALL_HEADER} header must be at most {MAX_CALL_ID} characters long.")
    if not _call_id.match(call_id):
        return BadHeader(
            f"The {CALL_HEADER} header must be visible ASCII text (as a SIP Call-ID is), with no spaces or "
            "control characters."
        )
    number = caller_number(headers.get(CALLER_NUMBER_HEADER))
    if isinstance(number, BadHeader):
        return number
    idempotency_key = headers.get(IDEMPOTENCY_HEADER)
    if idempotency_key is not None and not (
        len(idempotency_key) <= MAX_IDEMPOTENCY_KEY and _call_id.match(idempotency_key)
    ):
        return BadHeader(
            f"The Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY} characters of visible ASCII text."
        )
    try:
        return Caller(
            key_id=key_id,
            account_id=account_id,
            persona_id=persona_id,
            call_id=call_id,
            caller_id_number=number,
            idempotency_key=idempotency_key,
        )
    except ValidationError:
        return BadHeader("The call context headers are malformed.")
