"""create_lead on in-memory repositories: lead or case, idempotency, de-duplication, bad input."""

import asyncio
from functools import partial

import pytest

from leads_svc.handlers import create_lead
from switchboard.contracts import CallContext, CommandType, ErrorCode, Topic
from switchboard.contracts.leads import CaseCreatedEvent, Classification, CreateLead, LeadCreated, LeadCreatedEvent
from switchboard.messaging import CommandProcessor, InvalidArgument, RequestFailed, Unavailable
from switchboard.messaging.idempotency import InMemoryProcessedCommands
from switchboard.messaging.memory import InMemoryBus


@pytest.fixture
def handle(leads, cases, events):
    return partial(create_lead, leads=leads, cases=cases, events=events)


async def test_first_call_creates_the_lead_with_its_first_case(handle, command, leads, cases, outbox, publisher) -> None:
    cmd = command(classification=Classification.customer, summary="  Roof is 40 m2. ", notes="")
    result = await handle(cmd)

    assert result.lead_existed is False and result.deduplicable is True
    lead = leads.by_id[result.lead_id]
    case = cases.by_id[result.case_id]
    assert lead.phone_e164 == "+14155550123" and lead.account_id == "acc-1" and lead.name == "Ann Smith"
    assert lead.classification is Classification.customer
    assert case.lead_id == lead.id and case.command_id == cmd.command_id and case.call_id == cmd.call_id
    assert case.summary == "Roof is 40 m2." and case.notes is None
    assert leads.keys == {"acc-1/+14155550123": lead.id} and cases.keys == {f"acc-1/{cmd.command_id}": case.id}
    assert outbox.by_id == {}, "the events went out, so nothing is left for the relay"
    assert [(t, k, type(e)) for t, k, e in publisher.published] == [
        (Topic.lead_events, lead.id, LeadCreatedEvent),
        (Topic.lead_events, lead.id, CaseCreatedEvent),
    ]


async def test_a_later_call_from_the_same_number_adds_a_case_to_the_same_lead(handle, command, leads, cases, publisher) -> None:
    first = await handle(command("+1 415 555 0123"))
    second = await handle(command("(415) 555-0123", name="Ann", intent="Follows up on the quote."))

    assert second.lead_id == first.lead_id and second.case_id != first.case_id
    assert second.lead_existed is True
    assert len(leads.by_id) == 1 and len(cases.by_id) == 2
    assert cases.by_id[second.case_id].name == "Ann"
    assert [type(e) for _, _, e in publisher.published] == [LeadCreatedEvent, CaseCreatedEvent, CaseCreatedEvent]


async def test_national_numbers_are_read_in_the_accounts_country(handle, command, leads) -> None:
    german = await handle(command("030 123456", region="DE"))
    assert leads.by_id[german.lead_id].phone_e164 == "+4930123456"
    same = await handle(command("+49 30 123456", region="US"))
    assert same.lead_id == german.lead_id


async def test_repeating_a_command_adds_nothing_and_answers_the_same(handle, command, leads, cases, publisher) -> None:
    cmd = command()
    first = await handle(cmd)
    again = await handle(cmd)

    assert again == first
    assert len(leads.by_id) == 1 and len(cases.by_id) == 1
    assert len(publisher.published) == 2


async def test_concurrent_first_calls_make_one_lead(handle, command, leads, cases, publisher) -> None:
    results = await asyncio.gather(*(handle(command()) for _ in range(20)))

    assert len({r.lead_id for r in results}) == 1
    assert len({r.case_id for r in results}) == 20
    assert sorted(r.lead_existed for r in results) == [False] + [True] * 19
    assert len(leads.by_id) == 1 and len(cases.by_id) == 20
    assert sum(isinstance(e, LeadCreatedEvent) for _, _, e in publisher.published) == 1


async def test_the_same_number_in_two_accounts_is_two_leads(handle, command, leads) -> None:
    a = await handle(command(account="acc-a"))
    b = await handle(command(account="acc-b"))
    assert a.lead_id != b.lead_id and not a.lead_existed and not b.lead_existed
    assert {lead.account_id for lead in leads.by_id.values()} == {"acc-a", "acc-b"}


@pytest.mark.parametrize("caller", [None, "", "   "])
async def test_without_a_caller_number_each_call_is_its_own_lead(handle, command, leads, caller) -> None:
    first = await handle(command(caller))
    second = await handle(command(caller))

    assert first.deduplicable is False and second.deduplicable is False
    assert first.lead_id != second.lead_id and not second.lead_existed
    assert all(lead.phone_e164 is None and lead.caller_id is None for lead in leads.by_id.values())


@pytest.mark.parametrize("caller", ["anonymous", "201", "+1 555", "sip:ann@example.com"])
async def test_an_unreadable_caller_id_is_kept_but_not_matched_on(handle, command, leads, caller) -> None:
    first = await handle(command(caller))
    second = await handle(command(caller))

    assert first.deduplicable is False and first.lead_id != second.lead_id
    assert leads.by_id[first.lead_id].caller_id == caller and leads.by_id[first.lead_id].phone_e164 is None


SIP_CALL = "a84b4c76e66710@pc33.atlanta.example.com/x?y=\"z\""


async def test_two_create_lead_on_one_call_without_a_number_make_one_lead(handle, command, leads, cases) -> None:
    first = await handle(command(None, call_id=SIP_CALL))
    second = await handle(command(None, call_id=SIP_CALL, intent="Also asks about batteries."))

    assert second.lead_id == first.lead_id and second.case_id != first.case_id
    assert (first.lead_existed, second.lead_existed) == (False, True)
    assert first.deduplicable is False and first.phone_number is None
    assert len(leads.by_id) == 1 and len(cases.by_id) == 2
    other_call = await handle(command(None))
    assert other_call.lead_id != first.lead_id


async def test_concurrent_create_lead_on_one_withheld_call_make_one_lead(handle, command, leads, cases) -> None:
    results = await asyncio.gather(*(handle(command(None, call_id=SIP_CALL)) for _ in range(20)))
    assert len({r.lead_id for r in results}) == 1 and len({r.case_id for r in results}) == 20
    assert [r.lead_existed for r in results].count(False) == 1
    assert len(leads.by_id) == 1


async def test_a_withheld_caller_is_recorded_with_the_callback_number_they_give(handle, command, leads, cases) -> None:
    result = await handle(command(None, callback_number="(415) 555-0199"))

    lead = leads.by_id[result.lead_id]
    assert (lead.phone_e164, lead.phone_source, lead.deduplicable) == ("+14155550199", "callback", True)
    assert result.phone_number == "+14155550199" and result.deduplicable
    assert cases.by_id[result.case_id].callback_number == "+14155550199"
    again = await handle(command(None, callback_number="+1 415 555 0199"))
    assert again.lead_id == result.lead_id and again.lead_existed
    calling_from_it = await handle(command("+14155550199"))
    assert calling_from_it.lead_id == result.lead_id, "one lead per (account, number), however it was learnt"


async def test_a_callback_number_with_an_extension_keeps_the_extension_on_the_case(handle, command, leads, cases) -> None:
    result = await handle(command(None, callback_number="+1 415 555 0199 ext 12"))
    assert leads.by_id[result.lead_id].phone_e164 == "+14155550199"
    assert cases.by_id[result.case_id].callback_number == "+14155550199;ext=12"


async def test_a_known_caller_number_decides_the_lead_and_the_callback_is_kept_on_the_case(handle, command, leads, cases) -> None:
    result = await handle(command("+14155550123", callback_number="+14155550199"))
    assert leads.by_id[result.lead_id].phone_e164 == "+14155550123"
    assert leads.by_id[result.lead_id].phone_source == "caller_id"
    assert cases.by_id[result.case_id].callback_number == "+14155550199"


async def test_a_withheld_call_keeps_its_lead_when_the_callback_number_comes_later(handle, command, leads) -> None:
    first = await handle(command(None, call_id=SIP_CALL))
    later = await handle(command(None, call_id=SIP_CALL, callback_number="+14155550199"))
    assert later.lead_id == first.lead_id and later.lead_existed
    assert len(leads.by_id) == 1


@pytest.mark.parametrize("callback", ["", "   "])
async def test_an_empty_callback_number_is_no_callback_number(handle, command, leads, callback) -> None:
    result = await handle(command(None, callback_number=callback))
    assert result.phone_number is None and leads.by_id[result.lead_id].phone_e164 is None


@pytest.mark.parametrize("callback", ["anonymous", "call me later", "555", "+1 555"])
async def test_a_callback_number_that_is_not_a_number_is_refused_with_nothing_stored(
    handle, command, leads, cases, publisher, callback
) -> None:
    with pytest.raises(InvalidArgument, match="callback_number") as raised:
        await handle(command(None, callback_number=callback))
    assert "Ask the caller" in str(raised.value)
    assert not leads.by_id and not leads.keys and not cases.by_id and not publisher.published


async def test_a_repeated_command_without_a_caller_number_finds_its_own_lead(handle, command, leads, cases) -> None:
    cmd = command(None)
    assert await handle(cmd) == await handle(cmd)
    assert len(leads.by_id) == 1 and len(cases.by_id) == 1


@pytest.mark.parametrize(("field", "value"), [("name", "   "), ("intent", "\n\t ")])
async def test_blank_name_or_intent_is_refused_before_anything_is_stored(handle, command, leads, cases, publisher, field, value) -> None:
    with pytest.raises(InvalidArgument, match=field):
        await handle(command(**{field: value}))
    assert not leads.by_id and not cases.by_id and not publisher.published


async def test_a_command_past_its_deadline_stores_nothing(handle, command, leads, cases, publisher) -> None:
    late = command()
    late = late.model_copy(update={"deadline": late.sent_at})
    with pytest.raises(Unavailable, match="try again"):
        await handle(late)
    assert not leads.by_id and not cases.by_id and not publisher.published


async def test_only_the_documented_fields_are_stored(handle, command, leads, cases) -> None:
    result = await handle(command(summary="s", notes="n"))
    assert set(leads.by_id[result.lead_id].document()) == {
        "_id", "account_id", "created_at", "match_key", "phone_e164", "phone_source", "caller_id",
        "deduplicable", "name", "classification", "persona_id", "call_id", "command_id",
    }  # fmt: skip
    assert set(cases.by_id[result.case_id].document()) == {
        "_id", "account_id", "created_at", "lead_id", "command_id", "persona_id", "call_id",
        "name", "intent", "classification", "summary", "notes", "callback_number",
    }  # fmt: skip


async def test_a_caller_whose_first_command_stopped_before_writing_the_lead_gets_it_now(
    handle, command, leads, cases, publisher
) -> None:
    """The first command claimed the caller's key and died: the next one writes the lead under that id."""
    orphan_id = await leads.claim("acc-1", "+14155550123", "0" * 24)
    result = await handle(command())

    assert result.lead_id == orphan_id and result.lead_existed is False
    assert leads.by_id[orphan_id].command_id == cases.by_id[result.case_id].command_id
    assert [(k, type(e)) for _, k, e in publisher.published] == [(orphan_id, LeadCreatedEvent), (orphan_id, CaseCreatedEvent)]
    again = await handle(command())
    assert again.lead_id == orphan_id and again.lead_existed is True and len(leads.by_id) == 1


@pytest.fixture
def bus(handle) -> InMemoryBus:
    bus = InMemoryBus()
    processor = CommandProcessor("leads", {CommandType.create_lead: handle}, InMemoryProcessedCommands())
    bus.register(Topic.leads_commands, processor)
    return bus


CONTEXT = CallContext(account_id="acc-1", persona_id="per-1", call_id="call-1", caller_id_number="+14155550123")


async def test_through_the_command_runtime_the_result_is_typed(bus) -> None:
    result = await bus.request(CommandType.create_lead, CONTEXT, CreateLead(name="Ann", intent="Quote."), timeout=2)
    assert isinstance(result, LeadCreated) and result.deduplicable


async def test_through_the_command_runtime_a_blank_name_is_an_invalid_argument(bus, leads) -> None:
    with pytest.raises(RequestFailed) as failure:
        await bus.request(CommandType.create_lead, CONTEXT, CreateLead(name=" ", intent="Quote."), timeout=2)
    assert failure.value.error.code is ErrorCode.invalid_argument
    assert "name" in failure.value.error.message and not leads.by_id
