"""Commands, results and events of call-control-svc."""

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field

from switchboard.contracts.base import Contract, NoArgs
from switchboard.contracts.envelope import CALL_ID, IDENTIFIER


class TargetKind(StrEnum):
    number = "number"
    user = "user"
    queue = "queue"


class TransferTarget(Contract):
    """What a custom transfer tool resolved to (persona-svc), for the record and the model's text."""

    kind: TargetKind
    id: str = Field(pattern=IDENTIFIER)
    name: str = Field(min_length=1, max_length=200)


class TransferCall(Contract):
    destination_number: str = Field(
        min_length=1,
        max_length=64,
        description=(
            "Where to transfer the caller: a phone number in international form (+14155550123), "
            "a national number of the account's country, or an internal extension (2-6 digits). "
            "A number may carry an extension to dial once the line answers: +14155550123 ext 22."
        ),
    )
    target: TransferTarget | None = None


class TransferResult(Contract):
    transfer_id: str
    accepted: bool
    destination: str = Field(description="The normalised destination: E.164 or an extension.")
    destination_kind: Literal["e164", "extension"]
    extension: str | None = Field(
        default=None, description="Digits dialled once the destination answers (an extension behind that number)."
    )
    target: TransferTarget | None = None
    message: str


class HangupCall(NoArgs):
    pass


class HangupResult(Contract):
    ended: bool
    already_ended: bool
    message: str


class CallState(StrEnum):
    ringing = "ringing"
    active = "active"
    transferring = "transferring"
    transferred = "transferred"
    ended = "ended"


class CallStarted(Contract):
    event: Literal["call.started"] = "call.started"
    account_id: str = Field(pattern=IDENTIFIER)
    call_id: str = Field(pattern=CALL_ID)
    persona_id: str | None = Field(default=None, pattern=IDENTIFIER)
    caller_number: str | None = Field(default=None, max_length=64)
    called_number: str | None = Field(default=None, max_length=64)
    channel_id: str | None = Field(
        default=None,
        pattern=IDENTIFIER,
        description="The PBX's own handle on the call (e.g. an Asterisk channel id) when it differs from call_id.",
    )
    started_at: AwareDatetime | None = None


class CallEnded(Contract):
    event: Literal["call.ended"] = "call.ended"
    account_id: str = Field(pattern=IDENTIFIER)
    call_id: str = Field(pattern=CALL_ID)
    reason: str = Field(default="hangup", max_length=100)
    ended_at: AwareDatetime | None = None


class CallTransferred(Contract):
    event: Literal["call.transferred"] = "call.transferred"
    account_id: str
    call_id: str
    transfer_id: str
    destination: str
    extension: str | None = Field(default=None, description="Digits dialled once the destination answered.")
    target: TransferTarget | None = None
    transferred_at: AwareDatetime
