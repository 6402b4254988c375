"""The command and reply envelopes: what travels on a command topic and back on a reply topic.

A command carries its call context, typed `args`, an absolute `deadline` after which nobody may act
on it, and the topic to reply to. A reply carries `correlation_id` (= the command's `command_id`),
and either a result or an error `{code, message}`. W3C trace context travels in Kafka headers, not
in the body.
"""

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, Self, TypeVar
from uuid import uuid4

from pydantic import AwareDatetime, Field, JsonValue

from switchboard.contracts.base import Contract
from switchboard.contracts.types import CommandType

ArgsT = TypeVar("ArgsT", bound=Contract)

IDENTIFIER = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
"""Account, persona and user ids: printable, no spaces or operators, at most 128 characters."""

CALL_ID = r"^[\x21-\x7E]{1,256}$"
"""A call id is whatever the phone system uses (RFC 3261 allows any printable text in a SIP Call-ID,
such as `a84b4c76e66710@pc33.atlanta.example.com`; others use UUIDs or opaque tokens): visible
ASCII, no spaces or control characters, at most 256 characters."""


def new_command_id() -> str:
    return uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class CallContext(Contract):
    """Who is asking, about which call. Every command carries it; every query filters by account."""

    account_id: str = Field(pattern=IDENTIFIER)
    persona_id: str = Field(pattern=IDENTIFIER)
    call_id: str = Field(pattern=CALL_ID)
    caller_id_number: str | None = Field(default=None, max_length=64)
    region: str | None = Field(
        default=None,
        pattern=r"^[A-Z]{2}$",
        description="The account's country (ISO 3166 alpha-2): how national phone numbers are read.",
    )


class Command(Contract, Generic[ArgsT]):
    command_id: str = Field(default_factory=new_command_id, pattern=IDENTIFIER)
    type: CommandType
    account_id: str = Field(pattern=IDENTIFIER)
    persona_id: str = Field(pattern=IDENTIFIER)
    call_id: str = Field(pattern=CALL_ID)
    caller_id_number: str | None = Field(default=None, max_length=64)
    region: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    args: ArgsT
    deadline: AwareDatetime
    reply_to: str = Field(min_length=1, max_length=249)
    sent_at: AwareDatetime = Field(default_factory=utcnow)

    @classmethod
    def build(
        cls,
        type: CommandType,
        context: CallContext,
        args: ArgsT,
        *,
        timeout: timedelta,
        reply_to: str,
        command_id: str | None = None,
    ) -> Self:
        return cls(
            command_id=command_id or new_command_id(),
            type=type,
            args=args,
            deadline=utcnow() + timeout,
            reply_to=reply_to,
            **context.model_dump(),
        )

    @property
    def context(self) -> CallContext:
        return CallContext(
            account_id=self.account_id,
            persona_id=self.persona_id,
            call_id=self.call_id,
            caller_id_number=self.caller_id_number,
            region=self.region,
        )

    def expired(self, now: datetime | None = None) -> bool:
        return (now or utcnow()) >= self.deadline

    def remaining(self, now: datetime | None = None) -> float:
        """Seconds left before the deadline (negative once past it)."""
        return (self.deadline - (now or utcnow())).total_seconds()


class ErrorCode(StrEnum):
    invalid_argument = "invalid_argument"
    not_found = "not_found"
    refused = "refused"
    conflict = "conflict"
    unavailable = "unavailable"
    internal = "internal"


class ErrorInfo(Contract):
    code: ErrorCode
    message: str = Field(min_length=1, max_length=2000)


class Reply(Contract):
    """A service's answer to one command. `result` is the command's typed result, serialised."""

    correlation_id: str
    call_id: str
    type: CommandType
    result: dict[str, JsonValue] | None = None
    error: ErrorInfo | None = None
    replied_at: AwareDatetime = Field(default_factory=utcnow)

    @classmethod
    def success(cls, command: Command[Any], result: Contract) -> Self:
        return cls(
            correlation_id=command.command_id,
            call_id=command.call_id,
            type=command.type,
            result=result.model_dump(mode="json"),
        )

    @classmethod
    def failure(cls, command: Command[Any], code: ErrorCode, message: str) -> Self:
        return cls(
            correlation_id=command.command_id,
            call_id=command.call_id,
            type=command.type,
            error=ErrorInfo(code=code, message=message),
        )
