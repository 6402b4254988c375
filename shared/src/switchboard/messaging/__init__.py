"""Messaging: request/reply over Kafka, the command-consumer runtime, events, and an in-memory bus."""

from switchboard.messaging.errors import (
    Busy,
    Conflict,
    DomainError,
    InvalidArgument,
    NotFound,
    Refused,
    RequestError,
    RequestFailed,
    RequestTimeout,
    StoreUnavailable,
    Unavailable,
)
from switchboard.messaging.processor import ClaimLost, CommandProcessor, Handler, Outcome, Processed, after_reply, claimed

__all__ = [
    "Busy",
    "ClaimLost",
    "CommandProcessor",
    "Conflict",
    "DomainError",
    "Handler",
    "InvalidArgument",
    "NotFound",
    "Outcome",
    "Processed",
    "Refused",
    "RequestError",
    "RequestFailed",
    "RequestTimeout",
    "StoreUnavailable",
    "Unavailable",
    "after_reply",
    "claimed",
]
