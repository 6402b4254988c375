"""The command-consumer runtime's logic, on the in-memory bus (the Kafka path is in tests/integration)."""

import asyncio
import json
from datetime import timedelta

import pytest
from pymongo.errors import OperationFailure

from switchboard.contracts import CallContext, Command, CommandType, ErrorCode, Topic
from switchboard.contracts.leads import CreateLead, LeadCreated
from switchboard.contracts.persona import Availability, CheckUserAvailability
from switchboard.messaging import CommandProcessor, NotFound, Outcome, RequestFailed, RequestTimeout, after_reply
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
