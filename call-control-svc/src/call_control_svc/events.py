"""The facts call-control announces on `Topic.call_events`, keyed by call id.

Announcing happens after the fact is stored, and a broker that does not take the event within a
bounded time never turns a transfer that happened into a failed tool call: the database record is
the source of truth, the event a notification. Inside a tool call the announcement waits until the
reply is sent (`after_reply`): the caller on the line does not wait for it. Call-control reads `call.events` itself, and its own
events are harmless there: each one repeats an insert that already happened.
"""

from __future__ import annotations

import asyncio
import logging

from switchboard.contracts import Contract, Topic, utcnow
from switchboard.contracts.call_control import CallEnded, CallStarted, CallTransferred
from switchboard.messaging import after_reply
from switchboard.messaging.events import EventPublisher

from call_control_svc.model import CallAction, CallEnd

log = logging.getLogger(__name__)


class CallFacts:
    def __init__(self, publisher: EventPublisher, *, timeout: float = 2.0) -> None:
        self._publisher = publisher
        self._timeout = timeout

    async def reported(self, event: CallStarted | CallEnded) -> None:
        """Put a lifecycle event the PBX reported over HTTP on the topic, for everyone else who reads it."""
        await self._announce(event)

    async def ended(self, end: CallEnd) -> None:
        await self._announce(
            CallEnded(account_id=end.account_id, call_id=end.call_id, reason=end.reason, ended_at=end.ended_at)
        )

    async def transferred(self, action: CallAction) -> None:
        assert action.destination is not None
        await self._announce(
            CallTransferred(
                account_id=action.account_id,
                call_id=action.call_id,
                transfer_id=action.id,
                destination=action.destination.number,
                extension=action.destination.extension,
                target=action.target,
                transferred_at=action.finished_at or utcnow(),
            )
        )

    async def _announce(self, event: Contract) -> None:
        await after_reply(lambda: self._publish(event))

    async def _publish(self, event: Contract) -> None:
        call_id = event.call_id
        try:
            async with asyncio.timeout(self._timeout):
                await self._publisher.publish(Topic.call_events, event, key=call_id)
        except Exception as e:
            log.warning("could not announce %s for call %s: %s", event.event, call_id, type(e).__name__)
