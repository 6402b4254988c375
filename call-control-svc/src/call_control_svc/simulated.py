"""The simulated PBX: the embedded default phone system for local runs, demos and tests.

It keeps its channels and a log of what it was asked to do in the service's database (so every
replica sees the same phone system), and it is driven from outside through the HTTP API in
`api.py`: start a call, let the caller hang up, read what the PBX did.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, Field
from pymongo.asynchronous.database import AsyncDatabase
from switchboard.contracts import utcnow
from switchboard.mongo import DuplicateKeyError, IndexSpec

from call_control_svc.model import Call, Destination, Record, call_key
from call_control_svc.telephony import TelephonyError, TelephonyFailure

CHANNELS = "pbx_channels"
ACTIONS = "pbx_actions"

INDEXES = [
    IndexSpec(CHANNELS, [("account_id", 1), ("call_id", 1)], unique=True, name="account_call"),
    IndexSpec(CHANNELS, [("account_id", 1), ("started_at", -1)], name="account_started"),
    IndexSpec(ACTIONS, [("account_id", 1), ("call_id", 1), ("at", 1)], name="account_call_at"),
]


class ChannelState(StrEnum):
    up = "up"
    transferred = "transferred"
    hung_up = "hung_up"


class PbxAction(Record):
    action: Literal["transfer", "hangup"]
    by: Literal["agent", "caller"]
    destination: str | None = None
    destination_kind: str | None = None
    extension: str | None = Field(
        default=None, description="The digits the phone system dialled once the destination answered."
    )
    at: AwareDatetime


class SimulatedCall(Record):
    account_id: str
    call_id: str
    persona_id: str | None = None
    caller_number: str | None = None
    called_number: str | None = None
    state: ChannelState
    started_at: AwareDatetime
    actions: list[PbxAction] = Field(default_factory=list)


class SimulatedPbx:
    def __init__(self, db: AsyncDatabase, *, rejected_destinations: Iterable[str] = ()) -> None:
        self._channels = db[CHANNELS]
        self._actions = db[ACTIONS]
        self._rejected = frozenset(rejected_destinations)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def transfer(self, call: Call, destination: Destination, *, timeout: float) -> None:
        until = time.monotonic() + timeout
        channel = await self._channel_for(call)
        if channel["state"] == ChannelState.hung_up:
            raise TelephonyError(TelephonyFailure.gone, "Channel not found")
        if channel["state"] == ChannelState.transferred:
            raise TelephonyError(TelephonyFailure.not_controllable, "Channel already left the application")
        if destination.number in self._rejected:
            raise TelephonyError(TelephonyFailure.rejected, f"No route to {destination.kind} destination")
        _in_time(until)
        await self._log(call.account_id, call.call_id, "transfer", "agent", destination)
        await self._set_state(call.account_id, call.call_id, ChannelState.transferred)

    async def hangup(self, call: Call, *, timeout: float) -> None:
        until = time.monotonic() + timeout
        channel = await self._channel_for(call)
        if channel["state"] != ChannelState.up:
            raise TelephonyError(TelephonyFailure.gone, "Channel not found")
        _in_time(until)
        await self._log(call.account_id, call.call_id, "hangup", "agent")
        await self._set_state(call.account_id, call.call_id, ChannelState.hung_up)

    async def place_call(
        self,
        *,
        account_id: str,
        call_id: str,
        persona_id: str,
        caller_number: str | None,
        called_number: str | None,
    ) -> SimulatedCall | None:
        """Ring the agent with a new call; None when a call with this id already exists in the account."""
        channel = {
            "_id": call_key(account_id, call_id),
            "account_id": account_id,
            "call_id": call_id,
            "persona_id": persona_id,
            "caller_number": caller_number,
            "called_number": called_number,
            "state": ChannelState.up.value,
            "started_at": utcnow(),
        }
        try:
            await self._channels.insert_one(channel)
        except DuplicateKeyError:
            return None
        return SimulatedCall.model_validate(channel)

    async def caller_hangs_up(self, account_id: str, call_id: str) -> tuple[SimulatedCall, bool] | None:
        """The caller puts the phone down: the call and whether it was still connected, or None if unknown."""
        channel = await self._channels.find_one({"_id": call_key(account_id, call_id)})
        if channel is None:
            return None
        connected = channel["state"] != ChannelState.hung_up
        if connected:
            await self._log(account_id, call_id, "hangup", "caller")
            await self._set_state(account_id, call_id, ChannelState.hung_up)
        current = await self.get(account_id, call_id)
        assert current is not None
        return current, connected

    async def get(self, account_id: str, call_id: str) -> SimulatedCall | None:
        channel = await self._channels.find_one({"_id": call_key(account_id, call_id)})
        if channel is None:
            return None
        actions = [
            PbxAction.model_validate(doc)
            async for doc in self._actions.find({"account_id": account_id, "call_id": call_id}).sort("at", 1)
        ]
        return SimulatedCall.model_validate({**channel, "actions": actions})

    async def list(self, account_id: str, *, limit: int) -> list[SimulatedCall]:
        cursor = self._channels.find({"account_id": account_id}).sort("started_at", -1).limit(limit)
        return [SimulatedCall.model_validate(doc) async for doc in cursor]

    async def _channel_for(self, call: Call) -> dict[str, Any]:
        """The call's channel; a call the PBX reported by event or webhook is adopted on first use."""
        by_id = {"_id": call_key(call.account_id, call.call_id)}
        channel = await self._channels.find_one(by_id)
        if channel is not None:
            return channel
        adopted = {
            **by_id,
            "account_id": call.account_id,
            "call_id": call.call_id,
            "persona_id": call.persona_id,
            "caller_number": call.caller_number,
            "called_number": call.called_number,
            "state": ChannelState.up.value,
            "started_at": call.started_at,
        }
        try:
            await self._channels.insert_one(adopted)
        except DuplicateKeyError:
            return await self._channels.find_one(by_id) or adopted
        return adopted

    async def _log(
        self, account_id: str, call_id: str, action: str, by: str, destination: Destination | None = None
    ) -> None:
        await self._actions.insert_one(
            {
                "account_id": account_id,
                "call_id": call_id,
                "action": action,
                "by": by,
                "destination": destination.number if destination else None,
                "destination_kind": destination.kind if destination else None,
                "extension": destination.extension if destination else None,
                "at": utcnow(),
            }
        )

    async def _set_state(self, account_id: str, call_id: str, state: ChannelState) -> None:
        fields: dict[str, Any] = {"state": state.value}
        if state is ChannelState.hung_up:
            fields["ended_at"] = utcnow()
        await self._channels.update_one({"_id": call_key(account_id, call_id)}, {"$set": fields})


def _in_time(until: float) -> None:
    """A phone system asked with a timeout does nothing once it has passed (its reads can be slow
    when the database is): the caller was already told the action failed."""
    if time.monotonic() >= until:
        raise TelephonyError(
            TelephonyFailure.unavailable, "the phone system did not answer in time; try again in a moment"
        )
