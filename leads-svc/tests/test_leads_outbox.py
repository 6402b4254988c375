"""Events once per lead and case: what a command did not get out is the relay's, which sends it once.

A crash is played by a repository that raises at the chosen step: nothing after it runs.
"""

import asyncio
from datetime import timedelta
from functools import partial

import pytest

from leads_svc.handlers import create_lead
from leads_svc.model import OutboxEntry
from leads_svc.outbox import EventRelay, LeadEvents
from switchboard.contracts.leads import CaseCreatedEvent, LeadCreatedEvent

GRACE = 30.0


class Crash(Exception):
    """The process died here."""


@pytest.fixture
def flaky_events(failing_publisher, outbox, leads, cases) -> LeadEvents:
    return LeadEvents(failing_publisher, outbox, leads, cases, timeout=1.0)


def relay(events, outbox, claims) -> EventRelay:
    return EventRelay(events, outbox, claims, interval=1.0, grace=GRACE)


def due(command):
    """A moment at which the command's entry, if any is left, is the relay's."""
    return command.deadline + timedelta(seconds=GRACE + 1)


def kinds(publisher) -> list[tuple[type, str]]:
    return [(type(e), k) for _, k, e in publisher.published]


def crash_on(repository, method: str, monkeypatch) -> None:
    async def crash(*args, **kwargs):
        raise Crash(method)

    monkeypatch.setattr(repository, method, crash)


async def test_a_failed_publish_does_not_fail_the_command(command, flaky_events, leads, cases, outbox, failing_publisher) -> None:
    cmd = command()
    result = await create_lead(cmd, leads=leads, cases=cases, events=flaky_events)

    assert result.lead_existed is False and result.lead_id in leads.by_id and result.case_id in cases.by_id
    assert failing_publisher.published == []
    assert list(outbox.by_id.values()) == [
        OutboxEntry(
            id=f"acc-1/{cmd.command_id}",
            account_id="acc-1",
            command_id=cmd.command_id,
            lead_id=result.lead_id,
            case_id=result.case_id,
            deadline=cmd.deadline,
        )
    ]


async def test_the_relay_sends_what_was_left_after_the_deadline_and_grace_once(
    command, flaky_events, leads, cases, outbox, claims, failing_publisher
) -> None:
    cmd = command()
    result = await create_lead(cmd, leads=leads, cases=cases, events=flaky_events)
    failing_publisher.fail = False
    pump = relay(flaky_events, outbox, claims)

    assert await pump.run_once(now=cmd.deadline) == 0, "until its deadline and the grace are past, it is the command's"
    assert await pump.run_once(now=due(cmd)) == 2
    assert await pump.run_once(now=due(cmd)) == 0
    assert await pump.run_once(now=due(cmd) + timedelta(seconds=GRACE)) == 0

    assert kinds(failing_publisher) == [(LeadCreatedEvent, result.lead_id), (CaseCreatedEvent, result.lead_id)]
    event = failing_publisher.published[1][2]
    assert (event.case_id, event.call_id, event.account_id) == (result.case_id, cmd.call_id, "acc-1")
    assert outbox.by_id == {}


async def test_a_relay_that_fails_again_keeps_the_entry_for_the_next_window(
    command, flaky_events, leads, cases, outbox, claims, failing_publisher
) -> None:
    cmd = command()
    await create_lead(cmd, leads=leads, cases=cases, events=flaky_events)
    pump = relay(flaky_events, outbox, claims)

    assert await pump.run_once(now=due(cmd)) == 0 and len(outbox.by_id) == 1
    failing_publisher.fail = False
    assert await pump.run_once(now=due(cmd)) == 0, "claimed for this window already"
    assert await pump.run_once(now=due(cmd) + timedelta(seconds=GRACE)) == 2
    assert outbox.by_id == {}


async def test_two_relays_in_the_same_window_send_an_entry_once(
    command, flaky_events, leads, cases, outbox, claims, failing_publisher
) -> None:
    cmd = command()
    await create_lead(cmd, leads=leads, cases=cases, events=flaky_events)
    failing_publisher.fail = False
    stale = await outbox.due(deadline_before=due(cmd), limit=10)

    class StaleView:
        """A second replica that listed the outbox before the first one removed the entry."""

        async def due(self, *, deadline_before, limit):
            return stale

    first = relay(flaky_events, outbox, claims)
    second = relay(flaky_events, StaleView(), claims)
    assert await first.run_once(now=due(cmd)) == 2
    assert await second.run_once(now=due(cmd)) == 0
    assert len(failing_publisher.published) == 2


async def test_a_redelivered_command_publishes_nothing_more(command, events, leads, cases, outbox, publisher) -> None:
    cmd = command()
    await create_lead(cmd, leads=leads, cases=cases, events=events)
    await create_lead(cmd, leads=leads, cases=cases, events=events)
    assert len(publisher.published) == 2
    assert outbox.by_id == {}


async def test_a_publish_that_hangs_is_cut_off_and_left_to_the_relay(command, leads, cases, outbox) -> None:
    class HangingPublisher:
        async def publish(self, topic, event, *, key):
            await asyncio.Event().wait()

    events = LeadEvents(HangingPublisher(), outbox, leads, cases, timeout=0.05)
    handle = partial(create_lead, leads=leads, cases=cases, events=events)
    result = await handle(command())
    assert [(e.lead_id, e.case_id) for e in outbox.by_id.values()] == [(result.lead_id, result.case_id)]


async def test_a_command_that_died_before_its_inserts_leaves_nothing_to_send(
    command, events, leads, cases, outbox, claims, publisher, monkeypatch
) -> None:
    cmd = command()
    crash_on(leads, "add", monkeypatch)
    with pytest.raises(Crash):
        await create_lead(cmd, leads=leads, cases=cases, events=events)
    assert len(outbox.by_id) == 1 and not leads.by_id and not cases.by_id

    assert await relay(events, outbox, claims).run_once(now=due(cmd)) == 0
    assert outbox.by_id == {} and publisher.published == []


async def test_a_command_that_died_between_the_lead_and_the_case_gets_its_lead_event_from_the_relay(
    command, events, leads, cases, outbox, claims, publisher, monkeypatch
) -> None:
    cmd = command()
    crash_on(cases, "add", monkeypatch)
    with pytest.raises(Crash):
        await create_lead(cmd, leads=leads, cases=cases, events=events)
    (lead,) = leads.by_id.values()

    assert await relay(events, outbox, claims).run_once(now=due(cmd)) == 1
    assert kinds(publisher) == [(LeadCreatedEvent, lead.id)] and outbox.by_id == {}


async def test_a_lead_written_by_the_next_caller_is_announced_once(
    command, events, leads, cases, outbox, claims, publisher, monkeypatch
) -> None:
    """The first command claimed the caller's key and died; the second writes and announces the lead."""
    first = command()
    with monkeypatch.context() as patch:
        crash_on(leads, "add", patch)
        with pytest.raises(Crash):
            await create_lead(first, leads=leads, cases=cases, events=events)
    second = await create_lead(command(), leads=leads, cases=cases, events=events)

    assert await relay(events, outbox, claims).run_once(now=due(first)) == 0, "the first command wrote nothing"
    assert kinds(publisher) == [(LeadCreatedEvent, second.lead_id), (CaseCreatedEvent, second.lead_id)]
    assert outbox.by_id == {}


async def test_a_rerun_of_a_command_that_died_before_publishing_leaves_its_events_to_the_relay(
    command, flaky_events, leads, cases, outbox, claims, failing_publisher
) -> None:
    cmd = command()
    first = await create_lead(cmd, leads=leads, cases=cases, events=flaky_events)
    failing_publisher.fail = False
    again = await create_lead(cmd, leads=leads, cases=cases, events=flaky_events)

    assert again == first and failing_publisher.published == [] and len(outbox.by_id) == 1
    assert await relay(flaky_events, outbox, claims).run_once(now=due(cmd)) == 2


async def test_events_that_went_out_while_their_entry_stayed_are_sent_again(
    command, events, leads, cases, outbox, claims, publisher, monkeypatch
) -> None:
    """At least once: the only duplicate is after a failure to remove the entry."""
    cmd = command()
    with monkeypatch.context() as patch:
        crash_on(outbox, "remove", patch)
        await create_lead(cmd, leads=leads, cases=cases, events=events)
    assert await relay(events, outbox, claims).run_once(now=due(cmd)) == 2
    assert [type(e) for _, _, e in publisher.published] == [LeadCreatedEvent, CaseCreatedEvent] * 2
    assert outbox.by_id == {}
