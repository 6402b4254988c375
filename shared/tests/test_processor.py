"""The command-consumer runtime's logic, on the in-memory bus (the Kafka path is in tests/integration)."""

import asyncio
import json
from datetime import timedelta

import pytest
from pymongo.errors import OperationFailure

from switchboard.contracts import CallContext, Command, CommandType, ErrorCode, Topic
from switchboard.contracts.leads import CreateLead, LeadCreated
from switchboard.contracts.persona import Availability, CheckUserAvailability
from switchboard.contracts.call_control import HangupCall, HangupResult
from switchboard.messaging import (
    CommandProcessor,
    NotFound,
    Outcome,
    Refused,
    RequestFailed,
    RequestTimeout,
    after_reply,
    claimed,
)
from switchboard.messaging.idempotency import InMemoryProcessedCommands
from switchboard.messaging.memory import InMemoryBus

CONTEXT = CallContext(account_id="acc-1", persona_id="per-1", call_id="call-1")


LEAD = LeadCreated(lead_id="lead-1", case_id="case-1", lead_existed=False, deduplicable=True)


class Leads:
    """A handler with a side effect (create_lead): the processed-command record guards it."""

    def __init__(self) -> None:
        self.calls = 0

    async def create(self, command: Command[CreateLead]) -> LeadCreated:
        self.calls += 1
        if command.args.name == "ghost":
            raise NotFound("There is no persona 'ghost' in this account.")
        if command.args.name == "boom":
            raise RuntimeError("bug")
        if command.args.name == "locked":
            raise OperationFailure("database is locked (5) (SQLITE_BUSY)", code=1)
        return LEAD


@pytest.fixture
def leads() -> Leads:
    return Leads()


@pytest.fixture
def processor(leads: Leads) -> CommandProcessor:
    return CommandProcessor("leads", {CommandType.create_lead: leads.create}, InMemoryProcessedCommands())


@pytest.fixture
def bus(processor: CommandProcessor) -> InMemoryBus:
    bus = InMemoryBus()
    bus.register(Topic.leads_commands, processor)
    return bus


def command(name: str, timeout: float = 2.0) -> Command[CreateLead]:
    return Command[CreateLead].build(
        CommandType.create_lead,
        CONTEXT,
        CreateLead(name=name, intent="a quote"),
        timeout=timedelta(seconds=timeout),
        reply_to="replies",
    )


async def test_request_returns_the_typed_result(bus: InMemoryBus) -> None:
    result = await bus.request(CommandType.create_lead, CONTEXT, CreateLead(name="Ann", intent="a quote"), timeout=1)
    assert result == LEAD


async def test_a_driver_that_sends_gets_the_reply_while_it_is_stored_and_the_call_returns_after_both(
    leads: Leads,
) -> None:
    class SlowStore(InMemoryProcessedCommands):
        def __init__(self) -> None:
            super().__init__()
            self.release = asyncio.Event()

        async def complete(self, command, reply) -> None:  # type: ignore[no-untyped-def]
            await self.release.wait()
            await super().complete(command, reply)

    store = SlowStore()
    processor = CommandProcessor("leads", {CommandType.create_lead: leads.create}, store)
    sent = []

    async def send(processed) -> None:  # type: ignore[no-untyped-def]
        sent.append(processed.reply)

    value = command("u1").model_dump_json().encode()
    processing = asyncio.create_task(processor.process(value, send=send))
    while not sent:
        await asyncio.sleep(0)
    assert not processing.done(), "process returns only once the reply is stored"
    store.release.set()
    processed = await processing
    assert processed.sent and processed.outcome is Outcome.handled and sent == [processed.reply]
    again = await processor.process(value, send=send)
    assert (again.outcome, again.sent, again.reply) == (Outcome.duplicate, False, processed.reply)
    assert leads.calls == 1


async def test_work_left_for_after_the_reply_runs_once_it_is_sent_and_before_process_returns() -> None:
    order: list[str] = []

    async def announce(name: str) -> None:
        order.append(f"announced {name}")
        if name == "broken":
            raise RuntimeError("broker gone")

    async def create(command: Command[CreateLead]) -> LeadCreated:
        order.append("stored")
        await after_reply(lambda: announce(command.args.name))
        return LEAD

    processor = CommandProcessor("leads", {CommandType.create_lead: create}, InMemoryProcessedCommands())

    async def send(processed) -> None:  # type: ignore[no-untyped-def]
        order.append("replied")

    for name in ("u1", "broken"):
        order.clear()
        processed = await processor.process(command(name).model_dump_json().encode(), send=send)
        assert order == ["stored", "replied", f"announced {name}"]
        assert processed.outcome is Outcome.handled and processed.reply is not None and processed.reply.error is None

    order.clear()
    await after_reply(lambda: announce("outside"))  # no command runtime: the work runs at once
    assert order == ["announced outside"]


async def test_domain_error_becomes_a_failed_request_with_code_and_sentence(bus: InMemoryBus) -> None:
    with pytest.raises(RequestFailed) as failed:
        await bus.request(CommandType.create_lead, CONTEXT, CreateLead(name="ghost", intent="a quote"), timeout=1)
    assert failed.value.error.code is ErrorCode.not_found
    assert "ghost" in failed.value.error.message


async def test_redelivery_returns_the_stored_reply_without_running_the_handler_again(
    processor: CommandProcessor, leads: Leads
) -> None:
    value = command("u1").model_dump_json().encode()
    first = await processor.process(value)
    second = await processor.process(value)
    assert (first.outcome, second.outcome) == (Outcome.handled, Outcome.duplicate)
    assert first.reply == second.reply
    assert leads.calls == 1


async def test_expired_command_is_dropped_before_any_side_effect(processor: CommandProcessor, leads: Leads) -> None:
    processed = await processor.process(command("u1", timeout=-1).model_dump_json().encode())
    assert processed.outcome is Outcome.expired and processed.reply is None
    assert leads.calls == 0


async def test_expired_command_times_out_on_the_bus(bus: InMemoryBus, leads: Leads) -> None:
    with pytest.raises(RequestTimeout):
        await bus.send(command("u1", timeout=-1))
    assert leads.calls == 0


@pytest.mark.parametrize(
    "value",
    [
        b"not json",
        b"{}",
        b'{"type": "persona.nope"}',
        b'{"type": "leads.create_lead"}',
        b'{"type": "persona.check_user_availability"}',  # not this service's
    ],
)
async def test_poison_is_dead_lettered_without_a_reply(processor: CommandProcessor, leads: Leads, value: bytes) -> None:
    processed = await processor.process(value)
    assert processed.outcome is Outcome.poison
    assert processed.reply is None and processed.dead_letter_reason
    assert leads.calls == 0


async def test_invalid_args_in_a_valid_envelope_get_an_invalid_argument_reply(
    processor: CommandProcessor, leads: Leads
) -> None:
    raw = command("u1").model_dump(mode="json")
    raw["args"] = {"name": "", "intent": "a quote"}
    processed = await processor.process(json.dumps(raw).encode())
    assert processed.outcome is Outcome.failed
    assert processed.reply is not None and processed.reply.error is not None
    assert processed.reply.error.code is ErrorCode.invalid_argument
    assert "name" in processed.reply.error.message
    assert leads.calls == 0


async def test_handler_bug_replies_internal_error_and_dead_letters(processor: CommandProcessor) -> None:
    processed = await processor.process(command("boom").model_dump_json().encode())
    assert processed.reply is not None and processed.reply.error is not None
    assert processed.reply.error.code is ErrorCode.internal
    assert "bug" not in processed.reply.error.message
    assert processed.dead_letter_reason and "RuntimeError" in processed.dead_letter_reason


class SlowClaims(InMemoryProcessedCommands):
    async def claim(self, command: Command) -> object:
        stored = await super().claim(command)
        await asyncio.sleep(0.2)
        return stored


async def test_a_claim_that_outlasts_the_deadline_runs_no_handler(leads: Leads) -> None:
    processor = CommandProcessor("leads", {CommandType.create_lead: leads.create}, SlowClaims())
    processed = await processor.process(command("u1", timeout=0.1).model_dump_json().encode())
    assert processed.outcome is Outcome.expired
    assert leads.calls == 0
    assert processed.reply is not None and processed.reply.error is not None
    assert processed.reply.error.code is ErrorCode.unavailable


async def test_a_store_internal_error_replies_unavailable_without_dead_letter(processor: CommandProcessor) -> None:
    processed = await processor.process(command("locked").model_dump_json().encode())
    assert processed.reply is not None and processed.reply.error is not None
    assert processed.reply.error.code is ErrorCode.unavailable
    assert "try again" in processed.reply.error.message
    assert processed.dead_letter_reason is None


async def test_a_command_id_reused_by_another_account_is_refused_without_running_the_handler(
    processor: CommandProcessor, leads: Leads
) -> None:
    first = command("u1")
    await processor.process(first.model_dump_json().encode())
    other = first.model_copy(update={"account_id": "acc-2"})
    processed = await processor.process(other.model_dump_json().encode())
    assert processed.reply is not None and processed.reply.error is not None
    assert processed.reply.error.code is ErrorCode.conflict
    assert leads.calls == 1


async def test_a_command_that_reads_only_keeps_no_record_and_is_answered_afresh_each_time() -> None:
    class CountingClaims(InMemoryProcessedCommands):
        claims = 0

        async def claim(self, command: Command) -> object:
            CountingClaims.claims += 1
            return await super().claim(command)

    answers = iter([True, False])

    async def check(command: Command[CheckUserAvailability]) -> Availability:
        return Availability(user_id=command.args.user_id, name="Ann", available=next(answers), dnd=False)

    processor = CommandProcessor("persona", {CommandType.check_user_availability: check}, CountingClaims())
    value = Command[CheckUserAvailability].build(
        CommandType.check_user_availability,
        CONTEXT,
        CheckUserAvailability(user_id="u1"),
        timeout=timedelta(seconds=2),
        reply_to="replies",
    ).model_dump_json().encode()
    first, second = await processor.process(value), await processor.process(value)
    assert (first.outcome, second.outcome) == (Outcome.handled, Outcome.handled)
    assert [p.reply.result["available"] for p in (first, second) if p.reply and p.reply.result] == [True, False]
    assert CountingClaims.claims == 0


class Hangups:
    """A handler of an operation that claims while reading (hangup_call): it reads, then awaits
    `claimed()` before its write."""

    def __init__(self, *, refuse: bool = False) -> None:
        self.reads = 0
        self.writes = 0
        self.refuse = refuse

    async def hangup(self, command: Command[HangupCall]) -> HangupResult:
        self.reads += 1
        await asyncio.sleep(0.01)
        if self.refuse:
            raise Refused("The call has already ended.")
        await claimed()
        self.writes += 1
        await after_reply(self.announce)
        return HangupResult(ended=True, already_ended=False, message="The call was hung up.")

    announced = 0

    async def announce(self) -> None:
        self.announced += 1


def hangup_command(timeout: float = 2.0) -> Command[HangupCall]:
    return Command[HangupCall].build(
        CommandType.hangup_call, CONTEXT, HangupCall(), timeout=timedelta(seconds=timeout), reply_to="replies"
    )


class GatedClaims(InMemoryProcessedCommands):
    """Claims that count themselves; with `until`, a claim finishes only once that event is set."""

    def __init__(self, delay: float = 0.0, until: asyncio.Event | None = None) -> None:
        super().__init__()
        self.delay = delay
        self.until = until
        self.claims = 0

    async def claim(self, command: Command) -> object:
        self.claims += 1
        await asyncio.sleep(self.delay)
        if self.until is not None:
            await self.until.wait()
        return await super().claim(command)


async def test_a_handler_that_claims_while_reading_reads_during_the_claim_and_writes_after_it() -> None:
    read = asyncio.Event()
    claims = GatedClaims(until=read)  # the claim finishes only after the handler has read
    hangups = Hangups()

    async def hangup(command: Command[HangupCall]) -> HangupResult:
        read.set()
        return await hangups.hangup(command)

    processor = CommandProcessor("call-control", {CommandType.hangup_call: hangup}, claims)
    value = hangup_command().model_dump_json().encode()
    async with asyncio.timeout(2):
        first = await processor.process(value)
    assert first.outcome is Outcome.handled and hangups.writes == 1 and hangups.announced == 1

    # Redelivered twice: the handler may read again, but it stops at the claim; the stored reply answers.
    second, third = await processor.process(value), await processor.process(value)
    assert (second.outcome, third.outcome) == (Outcome.duplicate, Outcome.duplicate)
    assert second.reply == first.reply == third.reply
    assert hangups.writes == 1 and hangups.announced == 1 and claims.claims == 3


async def test_an_answer_given_from_reads_alone_is_stored_and_a_redelivery_gets_it() -> None:
    hangups = Hangups(refuse=True)
    processor = CommandProcessor("call-control", {CommandType.hangup_call: hangups.hangup}, InMemoryProcessedCommands())
    value = hangup_command().model_dump_json().encode()
    first = await processor.process(value)
    hangups.refuse = False  # the data changed meanwhile: the redelivery still answers what the first run did
    second = await processor.process(value)
    assert first.reply is not None and first.reply.error is not None and first.reply.error.code is ErrorCode.refused
    assert second.outcome is Outcome.duplicate and second.reply == first.reply
    assert hangups.writes == 0


async def test_a_claim_that_takes_the_rest_of_the_time_stops_the_handler_before_its_write() -> None:
    hangups = Hangups()
    processor = CommandProcessor("call-control", {CommandType.hangup_call: hangups.hangup}, GatedClaims(delay=0.15))
    processed = await processor.process(hangup_command(timeout=0.1).model_dump_json().encode())
    assert hangups.writes == 0 and hangups.announced == 0
    assert processed.reply is not None and processed.reply.error is not None
    assert processed.reply.error.code is ErrorCode.unavailable


async def test_claimed_outside_a_claiming_command_returns_at_once() -> None:
    await claimed()
