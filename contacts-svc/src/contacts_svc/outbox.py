"""Contact events reach Kafka at least once, even when Kafka is away at the moment of the change.

A change is written to its contact first; its event is then recorded in the `outbox` collection,
published, and removed from the outbox once Kafka has taken it. An event Kafka did not take within
the publish timeout stays in the outbox (the admin request still succeeds: the change is made) and
the relay, a background task in every replica, sends it once it is older than the grace period.
Relays claim each entry per grace window by an insert into `relay_claims`, so replicas do not all
send it. A duplicate is possible (published, then the removal failed); readers drop it by
`event_id`. Only a crash between the contact write and the outbox insert loses an event.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from uuid import uuid4

from contacts_svc.model import now
from contacts_svc.repository import OutboxRepository
from switchboard.contracts import Contract, Topic
from switchboard.contracts.contacts import CONTACT_EVENTS
from switchboard.messaging.events import EventPublisher, decode_event
from switchboard.service import Periodic
from switchboard.telemetry import record_outbox_depth

log = logging.getLogger(__name__)


def new_event_id() -> str:
    return uuid4().hex


class ContactEvents:
    def __init__(
        self,
        outbox: OutboxRepository,
        publisher: EventPublisher,
        *,
        timeout: float,
        clock: Callable[[], datetime] = now,
    ) -> None:
        self._outbox = outbox
        self._publisher = publisher
        self._timeout = timeout
        self._clock = clock

    async def announce(self, account_id: str, event: Contract) -> None:
        event_id = str(getattr(event, "event_id"))
        await self._outbox.add(event_id, account_id, event.model_dump(mode="json"), self._clock())
        await self.send(account_id, event_id, event)

    async def send(self, account_id: str, event_id: str, event: Contract) -> bool:
        try:
            async with asyncio.timeout(self._timeout):
                await self._publisher.publish(Topic.contact_events, event, key=account_id)
        except Exception as e:
            log.warning("could not publish %s %s of account %s (left to the relay): %s",
                        getattr(event, "event", "?"), event_id, account_id, type(e).__name__)
            return False
        try:
            await self._outbox.remove(account_id, event_id)
        except Exception as e:
            log.warning("published %s but could not clear it from the outbox (may be sent again): %s",
                        event_id, type(e).__name__)
        return True


class EventRelay(Periodic):
    def __init__(
        self,
        events: ContactEvents,
        outbox: OutboxRepository,
        *,
        interval: float,
        grace: float,
        batch: int = 200,
        clock: Callable[[], datetime] = now,
    ) -> None:
        super().__init__(interval=interval, name="contacts-event-relay")
        self._events = events
        self._outbox = outbox
        self._grace = grace
        self._batch = batch
        self._clock = clock

    async def run_once(self, at: datetime | None = None) -> int:
        """Send the events that are due, oldest first; returns how many went out."""
        at = at or self._clock()
        window = int(at.timestamp() // self._grace)
        sent = 0
        due = await self._outbox.due(created_before=at - timedelta(seconds=self._grace), limit=self._batch)
        record_outbox_depth("contacts", len(due))
        for entry in due:
            event = decode_event_payload(entry.payload)
            if event is None:
                log.error("outbox entry %s holds no known contact event; removing it", entry.event_id)
                await self._outbox.remove(entry.account_id, entry.event_id)
                continue
            if await self._outbox.claim(f"{entry.event_id}:{window}", entry.account_id, at):
                sent += await self._events.send(entry.account_id, entry.event_id, event)
        await self._outbox.forget_claims(claimed_before=at - timedelta(seconds=10 * self._grace))
        if sent:
            log.info("relay sent %d contact events", sent)
        return sent


def decode_event_payload(payload: dict) -> Contract | None:
    return decode_event(json.dumps(payload).encode(), CONTACT_EVENTS)
