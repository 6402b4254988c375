"""Events once per lead and case: a failed publish is left to the relay, which sends it once."""

import asyncio
from datetime import timedelta
from functools import partial

import pytest

from leads_svc.handlers import create_lead
from leads_svc.outbox import EventRelay, LeadEvents
from switchboard.contracts import utcnow
from switchboard.contracts.leads import CaseCreatedEvent, LeadCreatedEvent

GRACE = 30.0


@pytest.fixture
def flaky_events(failing_publisher, leads, cases) -> LeadEvents:
    return LeadEvents(failing_publisher, leads, cases, timeout=1.0)


def relay(events, leads, cases, claims) -> EventRelay:
    return EventRelay(events, leads, cases, claims, interval=1.0, grace=GRACE)


async def test_a_failed_publish_does_not_fail_the_command(command, flaky_events, leads, cases, failing_publisher) -> None:
    result = await create_lead(command(), leads=leads, cases=cases, events=flaky_events)

    assert result.lead_existed is False
    assert not leads.by_id[result.lead_id].event_published
    assert not cases.by_id[result.case_id].event_published
    assert failing_publisher.published == []


async def test_the_relay_sends_what_was_left_after_the_grace_period_once(
    command, flaky_events, leads, cases, claims, failing_publisher
) -> None:
    result = await create_lead(command(), leads=leads, cases=cases, events=flaky_events)
    failing_publisher.fail = False
    later = utcnow() + timedelta(seconds=GRACE + 1)
    pump = relay(flaky_events, leads, cases, claims)

    assert await pump.run_once(now=utcnow()) == 0, "records younger than the grace period belong to their handler"
    assert await pump.run_once(now=later) == 2
    assert await pump.run_once(now=later) == 0
    assert await pump.run_once(now=later + timedelta(seconds=GRACE)) == 0

    assert [(type(e), k) for _, k, e in failing_publisher.published] == [
        (LeadCreatedEvent, result.lead_id),
        (CaseCreatedEvent, result.lead_id),
    ]
    event = failing_publisher.published[1][2]
    assert (event.case_id, event.call_id, event.account_id) == (result.case_id, cases.by_id[result.case_id].call_id, "acc-1")


async def test_two_relays_in_the_same_window_send_an_event_once(
    command, flaky_events, leads, cases, claims, failing_publisher
) -> None:
    await create_lead(command(), leads=leads, cases=cases, events=flaky_events)
    failing_publisher.fail = False
    later = utcnow() + timedelta(seconds=GRACE + 1)
    stale_leads = await leads.unpublished(created_before=later, limit=10)

    class StaleView:
        """A second replica that listed the records before the first one marked them."""

        async def unpublished(self, *, created_before, limit):
            return stale_leads

    first = relay(flaky_events, leads, cases, claims)
    second = relay(flaky_events, StaleView(), cases, claims)
    assert await first.run_once(now=later) == 2
    assert await second.run_once(now=later) == 0
    assert len(failing_publisher.published) == 2


async def test_a_redelivered_command_publishes_nothing_more(command, events, leads, cases, publisher) -> None:
    cmd = command()
    await create_lead(cmd, leads=leads, cases=cases, events=events)
    await create_lead(cmd, leads=leads, cases=cases, events=events)
    assert len(publisher.published) == 2


async def test_a_publish_that_hangs_is_cut_off_and_left_to_the_relay(command, leads, cases) -> None:
    class HangingPublisher:
        async def publish(self, topic, event, *, key):
            await asyncio.Event().wait()

    events = LeadEvents(HangingPublisher(), leads, cases, timeout=0.05)
    handle = partial(create_lead, leads=leads, cases=cases, events=events)
    result = await handle(command())
    assert not leads.by_id[result.lead_id].event_published
