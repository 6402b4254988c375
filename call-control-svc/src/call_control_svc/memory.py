"""In-memory adapters with the same contracts as the Mongo repositories and a phone system, for unit tests.

The unique-insert semantics are kept: a claim of an attempt already taken returns the winner.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from switchboard.contracts import utcnow

from call_control_svc.destinations import DestinationRules
from call_control_svc.model import ActionStatus, Call, CallAction, CallEnd, CallRecord, Destination
from call_control_svc.telephony import TelephonyError


class InMemoryCalls:
    def __init__(self) -> None:
        self.calls: dict[tuple[str, str], Call] = {}
        self.ends: dict[tuple[str, str], CallEnd] = {}
        self.actions: dict[tuple[str, str, int], CallAction] = {}

    async def record_start(self, call: Call) -> bool:
        return self.calls.setdefault((call.account_id, call.call_id), call) is call

    async def record_end(self, end: CallEnd) -> bool:
        return self.ends.setdefault((end.account_id, end.call_id), end) is end

    async def get(self, account_id: str, call_id: str) -> CallRecord:
        actions = sorted(
            (a for (acc, cid, _), a in self.actions.items() if (acc, cid) == (account_id, call_id)),
            key=lambda a: a.attempt,
        )
        return CallRecord(
            account_id=account_id,
            call_id=call_id,
            call=self.calls.get((account_id, call_id)),
            end=self.ends.get((account_id, call_id)),
            actions=actions,
        )

    async def get_end(self, account_id: str, call_id: str) -> CallEnd | None:
        return self.ends.get((account_id, call_id))

    async def claim(self, action: CallAction) -> CallAction | None:
        key = (action.account_id, action.call_id, action.attempt)
        winner = self.actions.setdefault(key, action)
        return None if winner is action else winner

    async def finish(self, action: CallAction, status: ActionStatus, failure: str | None = None) -> CallAction:
        finished = action.model_copy(update={"status": status, "failure": failure, "finished_at": utcnow()})
        self.actions[(action.account_id, action.call_id, action.attempt)] = finished
        return finished


class InMemoryRules:
    def __init__(self) -> None:
        self.rules: dict[str, DestinationRules] = {}

    async def get(self, account_id: str) -> DestinationRules:
        return self.rules.get(account_id, DestinationRules())

    async def put(self, account_id: str, rules: DestinationRules) -> DestinationRules:
        self.rules[account_id] = rules
        return rules


@dataclass
class RecordingTelephony:
    """Records what it was asked to do; raises `fail_with` (once per entry) before doing it."""

    transfers: list[tuple[str, Destination]] = field(default_factory=list)
    hangups: list[str] = field(default_factory=list)
    fail_with: list[TelephonyError] = field(default_factory=list)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def transfer(self, call: Call, destination: Destination, *, timeout: float) -> None:
        if self.fail_with:
            raise self.fail_with.pop(0)
        self.transfers.append((call.call_id, destination))

    async def hangup(self, call: Call, *, timeout: float) -> None:
        if self.fail_with:
            raise self.fail_with.pop(0)
        self.hangups.append(call.call_id)
