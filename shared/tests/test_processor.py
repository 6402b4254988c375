"""The command-consumer runtime's logic, on the in-memory bus (the Kafka path is in tests/integration)."""

import asyncio
import json
from datetime import timedelta

import pytest
from pymongo.errors import OperationFailure

from switchboard.contracts import CallContext, Command, CommandType, ErrorCode, Topic
from switchboard.contracts.persona import Availability, CheckUserAvailability
from switchboard.messaging import CommandProcessor, NotFound, Outcome, RequestFailed, RequestTimeout
from switchboard.messaging.idempotency import InMemoryProcessedCommands
from switchboard.messaging.memory import InMemoryBus

CONTEXT = CallContext(account_id="acc-1", persona_id="per-1", call_id="call-1")


class Users:
    def __init__(self) -> None:
        self.calls = 0

    async def check(self, command: Command[CheckUserAvailability]) -> Availability:
        self.calls += 1
        if command.args.user_id == "ghost":
            raise NotFound("There is no user 'ghost' in this account.")
        if command.args.user_id == "boom":
            raise RuntimeError("bug")
        if command.args.user_id == "locked":
            raise OperationFailure("database is locked (5) (SQLITE_BUSY)", code=1)
        return Availability(user_id=command.args.user_id, name="Ann", available=True, dnd=False)


@pytest.fixture
def users() -> Users:
    return Users()


@pytest.fixture
def processor(users: Users) -> CommandProcessor:
    return CommandProcessor("persona", {CommandType.check_user_availability: users.check}, InMemoryProcessedCommands())


@pytest.fixture
def bus(processor: CommandProcessor) -> InMemoryBus:
    bus = InMemoryBus()
    bus.register(Topic.persona_commands, processor)
    return bus


def command(user_id: str, timeout: float = 2.0) -> Command[CheckUserAvailability]:
    return Command[CheckUserAvailability].build(
        CommandType.check_user_availability,
        CONTEXT,
        CheckUserAvailability(user_id=user_id),
        timeout=timedelta(seconds=timeout),
        reply_to="replies",
    )


async def test_request_returns_the_typed_result(bus: InMemoryBus) -> None:
    result = await bus.request(CommandType.check_user_availability, CONTEXT, CheckUserAvailability(user_id="u1"), timeout=1)
    assert result == Availability(user_id="u1", name="Ann", available=True, dnd=False)


async def test_a_driver_that_sends_gets_the_reply_while_it_is_stored_and_the_call_returns_after_both(
    users: Users,
) -> None:
    class SlowStore(InMemoryProcessedCommands):
        def __init__(self) -> None:
            super().__init__()
            self.release = asyncio.Event()

        async def complete(self, command, reply) -> None:  # type: ignore[no-untyped-def]
            await self.release.wait()
            await super().complete(command, reply)

    store = SlowStore()
    processor = CommandProcessor("persona", {CommandType.check_user_availability: users.check}, store)
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
    assert users.calls == 1


async def test_domain_error_becomes_a_failed_request_with_code_and_sentence(bus: InMemoryBus) -> None:
    with pytest.raises(RequestFailed) as failed:
        await bus.request(CommandType.check_user_availability, CONTEXT, CheckUserAvailability(user_id="ghost"), timeout=1)
    assert failed.value.error.code is ErrorCode.not_found
    assert "ghost" in failed.value.error.message


async def test_redelivery_returns_the_stored_reply_without_running_the_handler_again(
    processor: CommandProcessor, users: Users
) -> None:
    value = command("u1").model_dump_json().encode()
    first = await processor.process(value)
    second = await processor.process(value)
    assert (first.outcome, second.outcome) == (Outcome.handled, Outcome.duplicate)
    assert first.reply == second.reply
    assert users.calls == 1


async def test_expired_command_is_dropped_before_any_side_effect(processor: CommandProcessor, users: Users) -> None:
    processed = await processor.process(command("u1", timeout=-1).model_dump_json().encode())
    assert processed.outcome is Outcome.expired and processed.reply is None
    assert users.calls == 0


async def test_expired_command_times_out_on_the_bus(bus: InMemoryBus, users: Users) -> None:
    with pytest.raises(RequestTimeout):
        await bus.send(command("u1", timeout=-1))
    assert users.calls == 0


@pytest.mark.parametrize(
    "value",
    [
        b"not json",
        b"{}",
        b'{"type": "persona.nope"}',
        b'{"type": "leads.create_lead"}',
        b'{"type": "persona.check_user_availability"}',
    ],
)
async def test_poison_is_dead_lettered_without_a_reply(processor: CommandProcessor, users: Users, value: bytes) -> None:
    processed = await processor.process(value)
    assert processed.outcome is Outcome.poison
    assert processed.reply is None and processed.dead_letter_reason
    assert users.calls == 0


async def test_invalid_args_in_a_valid_envelope_get_an_invalid_argument_reply(
    processor: CommandProcessor, users: Users
) -> None:
    raw = command("u1").model_dump(mode="json")
    raw["args"] = {"user_id": "has space"}
    processed = await processor.process(json.dumps(raw).encode())
    assert processed.outcome is Outcome.failed
    assert processed.reply is not None and processed.reply.error is not None
    assert processed.reply.error.code is ErrorCode.invalid_argument
    assert "user_id" in processed.reply.error.message
    assert users.calls == 0


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


async def test_a_claim_that_outlasts_the_deadline_runs_no_handler(users: Users) -> None:
    processor = CommandProcessor("persona", {CommandType.check_user_availability: users.check}, SlowClaims())
    processed = await processor.process(command("u1", timeout=0.1).model_dump_json().encode())
    assert processed.outcome is Outcome.expired
    assert users.calls == 0
    assert processed.reply is not None and processed.reply.error is not None
    assert processed.reply.error.code is ErrorCode.unavailable


async def test_a_store_internal_error_replies_unavailable_without_dead_letter(processor: CommandProcessor) -> None:
    processed = await processor.process(command("locked").model_dump_json().encode())
    assert processed.reply is not None and processed.reply.error is not None
    assert processed.reply.error.code is ErrorCode.unavailable
    assert "try again" in processed.reply.error.message
    assert processed.dead_letter_reason is None


async def test_a_command_id_reused_by_another_account_is_refused_without_running_the_handler(
    processor: CommandProcessor, users: Users
) -> None:
    first = command("u1")
    await processor.process(first.model_dump_json().encode())
    other = first.model_copy(update={"account_id": "acc-2"})
    processed = await processor.process(other.model_dump_json().encode())
    assert processed.reply is not None and processed.reply.error is not None
    assert processed.reply.error.code is ErrorCode.conflict
    assert users.calls == 1
