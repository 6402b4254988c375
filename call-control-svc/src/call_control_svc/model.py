"""The call registry's domain: calls, their ends, the actions taken on them, and the state derived from those.

State machine (DESIGN.md section 4 forbids deciding it with conditional updates, so no document
holds a mutable `state` that writers race on; the state is derived from insert-only facts):

    call.started ──▶ active ──transfer claimed──▶ transferring ──PBX ok──▶ transferred ──call.ended──▶ ended
                       │  ▲                            │
                       │  └──────── PBX failed ────────┘
                       └──hangup_call / call.ended──────────────────────────────────────────────────▶ ended

- A call is registered by `call.started`; the PBX reports a call once it is connected to the agent,
  so it starts `active` (`ringing` is reserved for a PBX that reports earlier; tools treat it alike).
- Every transfer or hang-up first claims the call's next action attempt by inserting
  `_id = account_id/call_id/attempt` (unique): of concurrent claimants exactly one wins, so one
  action at a time runs per call and a transfer is never carried out twice. An attempt is claimed
  only after the one before it was read, so a call's attempts are 1, 2, ... with no gap.
- The claimant alone then marks its action succeeded or failed (nobody else writes that document).
  A failed transfer leaves the call `active`; a claim whose process died stays `pending` until
  `abandoned_after` past its command's deadline, then it no longer blocks the call.
- `ended` comes from one insert per call into `call_ends` (from the PBX's `call.ended` or from a
  successful hang-up): the first report wins, later ones are harmless duplicates.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal
from uuid import uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from switchboard.contracts.call_control import CallEnded, CallStarted, CallState, TransferTarget

DestinationKind = Literal["e164", "extension"]


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Call(Record):
    account_id: str
    call_id: str
    persona_id: str | None = None
    caller_number: str | None = None
    called_number: str | None = None
    channel_id: str | None = None
    started_at: AwareDatetime

    @classmethod
    def from_event(cls, event: CallStarted, now: datetime) -> Call:
        return cls(
            account_id=event.account_id,
            call_id=event.call_id,
            persona_id=event.persona_id,
            caller_number=event.caller_number,
            called_number=event.called_number,
            channel_id=event.channel_id,
            started_at=event.started_at or now,
        )

    @property
    def pbx_channel(self) -> str:
        """The PBX's handle on this call: its channel id when it reported one, else the call id."""
        return self.channel_id or self.call_id


class EndedBy(StrEnum):
    pbx = "pbx"
    agent = "agent"


class CallEnd(Record):
    account_id: str
    call_id: str
    reason: str
    ended_by: EndedBy
    ended_at: AwareDatetime
    command_id: str | None = None

    @classmethod
    def from_event(cls, event: CallEnded, now: datetime) -> CallEnd:
        return cls(
            account_id=event.account_id,
            call_id=event.call_id,
            reason=event.reason,
            ended_by=EndedBy.pbx,
            ended_at=event.ended_at or now,
        )


class ActionKind(StrEnum):
    transfer = "transfer"
    hangup = "hangup"


class ActionStatus(StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"


class Destination(Record):
    number: str = Field(description="E.164 or an internal extension.")
    kind: DestinationKind
    extension: str | None = Field(
        default=None, description="Digits the phone system dials once the number answers (its extension)."
    )


class CallAction(Record):
    """One claimed attempt to act on a call (stored under `action_key`); `id` is the transfer id told to the model."""

    id: str
    account_id: str
    call_id: str
    attempt: int = Field(ge=1)
    kind: ActionKind
    command_id: str
    deadline: AwareDatetime
    claimed_at: AwareDatetime
    destination: Destination | None = None
    target: TransferTarget | None = None
    status: ActionStatus = ActionStatus.pending
    failure: str | None = None
    finished_at: AwareDatetime | None = None

    @classmethod
    def new(
        cls,
        kind: ActionKind,
        *,
        account_id: str,
        call_id: str,
        attempt: int,
        command_id: str,
        deadline: datetime,
        now: datetime,
        destination: Destination | None = None,
        target: TransferTarget | None = None,
    ) -> CallAction:
        return cls(
            id=uuid4().hex,
            account_id=account_id,
            call_id=call_id,
            attempt=attempt,
            kind=kind,
            command_id=command_id,
            deadline=deadline,
            claimed_at=now,
            destination=destination,
            target=target,
        )

    def in_progress(self, now: datetime, abandoned_after: timedelta) -> bool:
        return self.status is ActionStatus.pending and now < self.deadline + abandoned_after


class CallRecord(Record):
    """Everything known about one call of one account; `call` is None when its start was never reported."""

    account_id: str
    call_id: str
    call: Call | None = None
    end: CallEnd | None = None
    actions: list[CallAction] = Field(default_factory=list)

    def state(self, now: datetime, abandoned_after: timedelta) -> CallState:
        if self.end is not None or self._succeeded(ActionKind.hangup) is not None:
            return CallState.ended
        if self._succeeded(ActionKind.transfer) is not None:
            return CallState.transferred
        running = self.running_action(now, abandoned_after)
        if running is not None and running.kind is ActionKind.transfer:
            return CallState.transferring
        return CallState.active

    def running_action(self, now: datetime, abandoned_after: timedelta) -> CallAction | None:
        return next((a for a in reversed(self.actions) if a.in_progress(now, abandoned_after)), None)

    def completed_transfer(self) -> CallAction | None:
        return self._succeeded(ActionKind.transfer)

    def next_attempt(self) -> int:
        return max((a.attempt for a in self.actions), default=0) + 1

    def _succeeded(self, kind: ActionKind) -> CallAction | None:
        return next((a for a in self.actions if a.kind is kind and a.status is ActionStatus.succeeded), None)


class CallPolicy(Record):
    """What the handlers need from settings, and nothing else."""

    default_region: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    abandoned_after: timedelta = timedelta(seconds=30)


def call_key(account_id: str, call_id: str) -> str:
    """The `_id` of the documents one per call: its start, its end, its simulated channel.

    FerretDB (SQLite) serves only a filter on `_id` alone from an index and scans the collection for
    any other, so the documents read on every tool call are found by `_id`. Account ids never contain
    `/` (`IDENTIFIER`), so the account ends at the first `/` and the rest is the call id, whatever it
    holds (a SIP Call-ID may contain `/`, `@`, `?`, quotes ...); the key starts with the account like
    every key here.
    """
    return f"{account_id}/{call_id}"


def action_key(account_id: str, call_id: str, attempt: int) -> str:
    """The `_id` of a call's action attempt: inserting it is the claim, and it is found by `_id` alone.

    The attempt is the digits after the last `/`, so a call id containing `/` stays unambiguous.
    """
    return f"{call_key(account_id, call_id)}/{attempt}"
