"""The one interface call-control drives a phone system through, whatever carries the call.

Implementations: `simulated.SimulatedPbx` (the embedded default) and `ari.AriTelephony` (Asterisk).
An adapter raises `TelephonyError` for everything that went wrong on the phone system's side; the
handlers turn it into a sentence for the model and put the call back to active.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from call_control_svc.model import Call, Destination


class TelephonyFailure(StrEnum):
    gone = "gone"
    """The phone system no longer has the call (the caller hung up)."""
    rejected = "rejected"
    """The phone system refused the destination."""
    not_controllable = "not_controllable"
    """The call is in a state in which the phone system does not let Switchboard act on it."""
    unavailable = "unavailable"
    """The phone system could not be reached, failed, or refused Switchboard's credentials."""


class TelephonyError(Exception):
    def __init__(self, failure: TelephonyFailure, detail: str) -> None:
        super().__init__(f"{failure}: {detail}")
        self.failure = failure
        self.detail = detail


class Telephony(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def transfer(self, call: Call, destination: Destination, *, timeout: float) -> None:
        """Blind-transfer the caller to the destination; returns once the phone system accepted it."""

    async def hangup(self, call: Call, *, timeout: float) -> None:
        """End the call for the caller."""
