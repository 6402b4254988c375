"""The call registry in MongoDB (database `call_control`).

Races are decided by inserts into unique indexes only (DESIGN.md section 4): a call's start and its
end are one insert each under `_id = call_key(account_id, call_id)`; an action on a call claims
`_id = action_key(account_id, call_id, attempt)`. The one update here, `finish`, is made by the
claimant alone. Every read and write is by `_id` alone, which FerretDB serves from an index (it
scans the collection for any other filter), and every `_id` starts with the account.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from pymongo.asynchronous.database import AsyncDatabase
from switchboard.contracts import utcnow
from switchboard.mongo import DuplicateKeyError, IndexSpec, put_by_id

from call_control_svc.destinations import DestinationRules
from call_control_svc.model import ActionStatus, Call, CallAction, CallEnd, CallRecord, action_key, call_key

CALLS = "calls"
CALL_ENDS = "call_ends"
CALL_ACTIONS = "call_actions"
TRANSFER_RULES = "transfer_rules"

INDEXES = [
    IndexSpec(CALLS, [("account_id", 1), ("call_id", 1)], unique=True, name="account_call"),
    IndexSpec(CALL_ENDS, [("account_id", 1), ("call_id", 1)], unique=True, name="account_call"),
    IndexSpec(
        CALL_ACTIONS, [("account_id", 1), ("call_id", 1), ("attempt", 1)], unique=True, name="account_call_attempt"
    ),
    IndexSpec(TRANSFER_RULES, [("account_id", 1)], unique=True, name="account"),
]


class Calls(Protocol):
    async def record_start(self, call: Call) -> bool: ...
    async def record_end(self, end: CallEnd) -> bool: ...
    async def get(self, account_id: str, call_id: str) -> CallRecord: ...
    async def get_end(self, account_id: str, call_id: str) -> CallEnd | None: ...
    async def claim(self, action: CallAction) -> CallAction | None: ...
    async def finish(self, action: CallAction, status: ActionStatus, failure: str | None = None) -> CallAction: ...


class Rules(Protocol):
    async def get(self, account_id: str) -> DestinationRules: ...
    async def put(self, account_id: str, rules: DestinationRules) -> DestinationRules: ...


def _without_id(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "_id"}


class CallRepository:
    def __init__(self, db: AsyncDatabase) -> None:
        self._calls = db[CALLS]
        self._ends = db[CALL_ENDS]
        self._actions = db[CALL_ACTIONS]

    async def record_start(self, call: Call) -> bool:
        """Register a call; False when it was already registered (a repeated or own event)."""
        try:
            await self._calls.insert_one({"_id": call_key(call.account_id, call.call_id), **call.model_dump()})
            return True
        except DuplicateKeyError:
            return False

    async def record_end(self, end: CallEnd) -> bool:
        """Record that a call ended; False when its end was already recorded (the first report stands)."""
        try:
            await self._ends.insert_one({"_id": call_key(end.account_id, end.call_id), **end.model_dump()})
            return True
        except DuplicateKeyError:
            return False

    async def get(self, account_id: str, call_id: str) -> CallRecord:
        by_id = {"_id": call_key(account_id, call_id)}
        call, end, actions = await asyncio.gather(
            self._calls.find_one(by_id), self._ends.find_one(by_id), self._actions_of(account_id, call_id)
        )
        return CallRecord(
            account_id=account_id,
            call_id=call_id,
            call=Call.model_validate(_without_id(call)) if call else None,
            end=CallEnd.model_validate(_without_id(end)) if end else None,
            actions=actions,
        )

    async def _actions_of(self, account_id: str, call_id: str) -> list[CallAction]:
        """Attempts 1, 2, ... up to the first one not claimed: attempts have no gaps (see `model`)."""
        actions: list[CallAction] = []
        while doc := await self._actions.find_one({"_id": action_key(account_id, call_id, len(actions) + 1)}):
            actions.append(CallAction.model_validate(_without_id(doc)))
        return actions

    async def get_end(self, account_id: str, call_id: str) -> CallEnd | None:
        doc = await self._ends.find_one({"_id": call_key(account_id, call_id)})
        return CallEnd.model_validate(_without_id(doc)) if doc else None

    async def claim(self, action: CallAction) -> CallAction | None:
        """Claim the call's attempt `action.attempt`: None when this caller won, else the winner's action."""
        by_id = {"_id": action_key(action.account_id, action.call_id, action.attempt)}
        try:
            await self._actions.insert_one({**by_id, **action.model_dump()})
            return None
        except DuplicateKeyError:
            winner = await self._actions.find_one(by_id)
            return CallAction.model_validate(_without_id(winner)) if winner else None

    async def finish(self, action: CallAction, status: ActionStatus, failure: str | None = None) -> CallAction:
        """Mark a claimed action done. Only its claimant calls this, so the update races with nobody."""
        finished = action.model_copy(update={"status": status, "failure": failure, "finished_at": utcnow()})
        await self._actions.update_one(
            {"_id": action_key(action.account_id, action.call_id, action.attempt)},
            {"$set": {"status": status.value, "failure": failure, "finished_at": finished.finished_at}},
        )
        return finished


class RulesRepository:
    """Per-account transfer rules under `_id = account_id`; written only through the admin API (no
    concurrent writers to guard)."""

    def __init__(self, db: AsyncDatabase) -> None:
        self._rules = db[TRANSFER_RULES]

    async def get(self, account_id: str) -> DestinationRules:
        doc = await self._rules.find_one({"_id": account_id})
        if doc is None:
            return DestinationRules()
        return DestinationRules.model_validate({k: v for k, v in doc.items() if k in DestinationRules.model_fields})

    async def put(self, account_id: str, rules: DestinationRules) -> DestinationRules:
        document = {"account_id": account_id, **rules.model_dump(), "updated_at": utcnow()}
        await put_by_id(self._rules, account_id, document)
        return rules
