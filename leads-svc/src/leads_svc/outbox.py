"""`lead.created` and `case.created`: published once per lead and per case, recovered after a crash.

The lead or case document is itself the outbox entry: it is inserted with `event_published=False`.
Whoever inserted it publishes its event right away and then marks it published; a redelivered
command lost both inserts and publishes nothing. If the process dies (or Kafka does not take the
event in time) between the insert and the mark, the record stays unpublished and the relay sends
its event once it is older than the grace period. Delivery is therefore at least once: a
duplicate is possible only when a publish succeeded and its mark did not; the event ids (`lead_id`,
`case_id`) let readers drop it. Events are keyed by `lead_id`, so one lead's events stay in order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import datetime, timedelta

from leads_svc.model import Case, Lead
from leads_svc.repository import Cases, Leads, RelayClaims
from switchboard.contracts import Contract, Topic, utcnow
from switchboard.contracts.leads import CaseCreatedEvent, LeadCreatedEvent
from switchboard.messaging.events import EventPublisher
from switchboard.service import Periodic

log = logging.getLogger(__name__)


def lead_created_event(lead: Lead) -> LeadCreatedEvent:
    return LeadCreatedEvent(
        account_id=lead.account_id,
        lead_id=lead.id,
        call_id=lead.call_id,
        classification=lead.classification,
        created_at=lead.created_at,
    )


def case_created_event(case: Case) -> CaseCreatedEvent:
    return CaseCreatedEvent(
        account_id=case.account_id,
        lead_id=case.lead_id,
        case_id=case.id,
        call_id=case.call_id,
        created_at=case.created_at,
    )


class LeadEvents:
    """Publishes a record's event and marks the record; a failure is logged and left to the relay.

    A failure here never fails the command: the lead and case are stored, and the caller's answer
    must say so.
    """

    def __init__(self, publisher: EventPublisher, leads: Leads, cases: Cases, *, timeout: float) -> None:
        self._publisher = publisher
        self._leads = leads
        self._cases = cases
        self._timeout = timeout

    async def lead_created(self, lead: Lead) -> bool:
        event = lead_created_event(lead)
        if not await self._publish(event, key=lead.id):
            return False
        return await self._mark(self._leads.mark_published(lead.account_id, lead.id), event)

    async def case_created(self, case: Case) -> bool:
        event = case_created_event(case)
        if not await self._publish(event, key=case.lead_id):
            return False
        return await self._mark(self._cases.mark_published(case.account_id, case.id), event)

    async def _publish(self, event: Contract, *, key: str) -> bool:
        try:
            async with asyncio.timeout(self._timeout):
                await self._publisher.publish(Topic.lead_events, event, key=key)
            return True
        except Exception as e:
            log.warning("could not publish %s for lead %s (left to the relay): %r", _name(event), key, e)
            return False

    async def _mark(self, marking: Awaitable[None], event: Contract) -> bool:
        try:
            await marking
            return True
        except Exception as e:
            log.warning("published %s but could not mark it (may be sent again): %r", _name(event), e)
            return False


def _name(event: Contract) -> str:
    return str(getattr(event, "event", type(event).__name__))


class EventRelay(Periodic):
    """Sends the events that their inserter did not get out: after a crash or a Kafka outage.

    Several replicas may run a relay; a claim (an insert into a unique index, keyed by the event and
    a time window of `grace`) lets one of them send each event per window.
    """

    def __init__(
        self,
        events: LeadEvents,
        leads: Leads,
        cases: Cases,
        claims: RelayClaims,
        *,
        interval: float,
        grace: float,
        batch: int = 200,
    ) -> None:
        super().__init__(interval=interval, name="leads-event-relay")
        self._events = events
        self._leads = leads
        self._cases = cases
        self._claims = claims
        self._grace = grace
        self._batch = batch

    async def run_once(self, now: datetime | None = None) -> int:
        """Send what is due; returns how many events went out."""
        now = now or utcnow()
        created_before = now - timedelta(seconds=self._grace)
        window = int(now.timestamp() // self._grace)
        sent = 0
        # Leads first: a lead's event goes out before those of its cases.
        for lead in await self._leads.unpublished(created_before=created_before, limit=self._batch):
            if await self._claims.claim(f"lead.created:{lead.id}:{window}", lead.account_id, now):
                sent += await self._events.lead_created(lead)
        for case in await self._cases.unpublished(created_before=created_before, limit=self._batch):
            if await self._claims.claim(f"case.created:{case.id}:{window}", case.account_id, now):
                sent += await self._events.case_created(case)
        if sent:
            log.info("relay sent %d unpublished lead events", sent)
        return sent
