"""`lead.created` and `case.created`: published once per lead and per case, recovered after a crash.

A create_lead command records an outbox entry (keyed by its account and command id, naming its lead
and case ids) before it writes the lead or the case, publishes the events of the records it inserted
and then removes the entry. A redelivered command inserts nothing and publishes nothing. If the
process dies, or Kafka does not take an event in time, the entry stays: the relay, a background task
in every replica, lists the outbox once the command's deadline is more than the grace period past
(the command writes nothing after its deadline, so its records are final by then), reads the lead
and case by `_id` and sends the events of those that exist: the lead's only when this command wrote
it. An entry whose command died before its inserts names no record of its own and is dropped. The
outbox holds only the events not sent yet, so a pass costs what is waiting, not all leads ever made.

Delivery is at least once: a duplicate is possible when events went out and their entry was not
removed; the event ids (`lead_id`, `case_id`) let readers drop it. Events are keyed by `lead_id`,
so one lead's events stay in order.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from leads_svc.model import Case, Lead, OutboxEntry
from leads_svc.repository import Cases, Leads, Outbox, RelayClaims
from switchboard.contracts import Contract, Topic, utcnow
from switchboard.contracts.leads import CaseCreatedEvent, LeadCreatedEvent
from switchboard.messaging.events import EventPublisher
from switchboard.service import Periodic
from switchboard.telemetry import record_outbox_depth

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
    """The outbox of create_lead commands: recorded before the writes, cleared once the events are out.

    A failure to publish never fails the command: the lead and case are stored, and the caller's
    answer must say so. It is logged and left to the relay.
    """

    def __init__(
        self, publisher: EventPublisher, outbox: Outbox, leads: Leads, cases: Cases, *, timeout: float
    ) -> None:
        self._publisher = publisher
        self._outbox = outbox
        self._leads = leads
        self._cases = cases
        self._timeout = timeout

    async def expect(self, entry: OutboxEntry) -> bool:
        """Record the entry before its command writes a lead or case; True when this call recorded it."""
        return await self._outbox.add(entry)

    async def announce(self, entry: OutboxEntry, *, recorded: bool, lead: Lead | None, case: Case | None) -> int:
        """Publish the events of the lead and case this command inserted (None: it did not insert it).

        The entry is removed only when this run recorded it: one that was there already is an
        earlier run's, which stopped before it was done, and stays for the relay.
        """
        owed: list[Contract] = [lead_created_event(lead)] if lead is not None else []
        if case is not None:
            owed.append(case_created_event(case))
        sent = await self._publish(owed, entry.lead_id)
        if recorded and sent == len(owed):
            await self._remove(entry)
        return sent

    async def resend(self, entry: OutboxEntry) -> int:
        """Publish what the entry's command stored, from the stored lead and case; then remove the entry."""
        lead = await self._leads.get(entry.account_id, entry.lead_id)
        case = await self._cases.get(entry.account_id, entry.case_id)
        # A lead that another command wrote (this one claimed the key and died) is that command's to announce.
        owed: list[Contract] = (
            [lead_created_event(lead)] if lead is not None and lead.command_id == entry.command_id else []
        )
        if case is not None:
            owed.append(case_created_event(case))
        sent = await self._publish(owed, entry.lead_id)
        if sent == len(owed):
            await self._remove(entry)
        return sent

    async def _publish(self, events: list[Contract], lead_id: str) -> int:
        """Publish in order, stopping at the first failure (a case's event never before its lead's)."""
        for sent, event in enumerate(events):
            try:
                async with asyncio.timeout(self._timeout):
                    await self._publisher.publish(Topic.lead_events, event, key=lead_id)
            except Exception as e:
                log.warning("could not publish %s for lead %s (left to the relay): %r", _name(event), lead_id, e)
                return sent
        return len(events)

    async def _remove(self, entry: OutboxEntry) -> None:
        try:
            await self._outbox.remove(entry)
        except Exception as e:
            log.warning("published the events of %s but could not remove its entry (may be sent again): %r",
                        entry.id, e)


def _name(event: Contract) -> str:
    return str(getattr(event, "event", type(event).__name__))


class EventRelay(Periodic):
    """Sends the events that their command did not get out: after a crash or a Kafka outage.

    Several replicas may run a relay; a claim (an insert into a unique index, keyed by the entry and
    a time window of `grace`) lets one of them send each entry per window.
    """

    def __init__(
        self,
        events: LeadEvents,
        outbox: Outbox,
        claims: RelayClaims,
        *,
        interval: float,
        grace: float,
        batch: int = 200,
    ) -> None:
        super().__init__(interval=interval, name="leads-event-relay")
        self._events = events
        self._outbox = outbox
        self._claims = claims
        self._grace = grace
        self._batch = batch

    async def run_once(self, now: datetime | None = None) -> int:
        """Send what is due, oldest command first; returns how many events went out."""
        now = now or utcnow()
        window = int(now.timestamp() // self._grace)
        sent = 0
        due = await self._outbox.due(deadline_before=now - timedelta(seconds=self._grace), limit=self._batch)
        record_outbox_depth("leads", len(due))
        for entry in due:
            if await self._claims.claim(f"{entry.id}:{window}", entry.account_id, now):
                sent += await self._events.resend(entry)
        if sent:
            log.info("relay sent %d unpublished lead events", sent)
        return sent
