"""The messaging kernel on the real Kafka and the real database (FerretDB natively, or containers)."""

import asyncio
import json
from datetime import timedelta
from uuid import uuid4

import pytest
from aiokafka import TopicPartition
from opentelemetry import trace

from switchboard.contracts import CallContext, Command, CommandType, ErrorCode, Topic
from switchboard.contracts.leads import CreateLead, LeadCreated
from switchboard.messaging import CommandProcessor, NotFound, RequestFailed, RequestTimeout, kafka
from switchboard.messaging.consumer import CommandConsumer
from switchboard.messaging.idempotency import INDEXES, MongoProcessedCommands
from switchboard.messaging.requester import KafkaRequester, build_command
from switchboard.mongo import ensure_indexes

pytestmark = pytest.mark.integration


def context(call_id: str | None = None) -> CallContext:
    return CallContext(account_id="acc-1", persona_id="per-1", call_id=call_id or f"call-{uuid4().hex[:8]}")


class Service:
    """A minimal leads-like service whose one side effect is a document per handled command."""

    def __init__(self, db) -> None:
        self.effects = db["effects"]
        self.trace_ids: list[int] = []

    async def create(self, command: Command[CreateLead]) -> LeadCreated:
        self.trace_ids.append(trace.get_current_span().get_span_context().trace_id)
        if command.args.name == "ghost":
            raise NotFound("There is no persona 'ghost' in this account.")
        await self.effects.insert_one({"command_id": command.command_id, "name": command.args.name})
        return lead(command.args.name)


def lead_command(requester: KafkaRequester, name: str, *, timeout: float = 15) -> Command[CreateLead]:
    """A create_lead command answered on the requester's reply topic, to send (and send again) as is."""
    arguments = CreateLead(name=name, intent="a quote")
    return build_command(
        CommandType.create_lead, context(), arguments, timeout=timeout, reply_to=requester.reply_topic
    )


def lead(name: str) -> LeadCreated:
    return LeadCreated(lead_id=name, case_id=f"case-{name}", lead_existed=False, deduplicable=True)


@pytest.fixture
async def service(settings, database):
    await ensure_indexes(database, INDEXES)
    svc = Service(database)
    processor = CommandProcessor(
        "leads", {CommandType.create_lead: svc.create}, MongoProcessedCommands(database)
    )
    consumer = CommandConsumer(settings, Topic.leads_commands, processor)
    await consumer.start()
    yield svc
    await consumer.stop()


@pytest.fixture
async def requester(settings, service):
    requester = KafkaRequester(settings)
    await requester.start()
    yield requester
    await requester.stop()


async def test_round_trip_returns_the_typed_result(requester, service) -> None:
    result = await requester.request(
        CommandType.create_lead, context(), CreateLead(name="u1", intent="a quote"), timeout=15
    )
    assert result == lead("u1")
    assert await service.effects.count_documents({}) == 1


async def test_business_error_comes_back_as_code_and_sentence(requester) -> None:
    with pytest.raises(RequestFailed) as failed:
        await requester.request(
            CommandType.create_lead, context(), CreateLead(name="ghost", intent="a quote"), timeout=15
        )
    assert failed.value.error.code is ErrorCode.not_found


async def test_redelivered_command_gives_one_side_effect_and_the_same_reply(requester, service) -> None:
    command = lead_command(requester, "u2")
    replies = [await requester.send(command) for _ in range(3)]
    assert replies[0] == replies[1] == replies[2]
    assert await service.effects.count_documents({"command_id": command.command_id}) == 1


async def test_the_same_command_sent_three_times_at_once_gets_three_answers_and_one_side_effect(
    requester, service
) -> None:
    command = lead_command(requester, "u7")
    replies = await asyncio.gather(*(requester.send(command) for _ in range(3)))
    assert replies[0].result is not None and replies[0] == replies[1] == replies[2]
    assert await service.effects.count_documents({"command_id": command.command_id}) == 1
    assert requester.pending == 0


async def test_expired_command_has_no_side_effect(settings, requester, service) -> None:
    command = lead_command(requester, "late", timeout=0.001)
    await asyncio.sleep(0.01)
    with pytest.raises(RequestTimeout):
        await requester.send(command)
    # A later command on the same call is handled, so the expired one was consumed and dropped.
    await requester.request(
        CommandType.create_lead, context(command.call_id), CreateLead(name="u3", intent="a quote"), timeout=15
    )
    assert await service.effects.count_documents({"name": "late"}) == 0


async def test_two_requesters_each_get_only_their_own_replies(settings, service) -> None:
    first, second = KafkaRequester(settings), KafkaRequester(settings)
    await asyncio.gather(first.start(), second.start())
    try:

        async def ask(requester: KafkaRequester, name: str) -> str:
            result = await requester.request(
                CommandType.create_lead, context(), CreateLead(name=name, intent="a quote"), timeout=15
            )
            return result.lead_id

        asked = [(first if i % 2 else second, f"u{i}") for i in range(40)]
        answers = await asyncio.gather(*(ask(r, u) for r, u in asked))
        assert answers == [u for _, u in asked]
        assert first.pending == second.pending == 0
    finally:
        await asyncio.gather(first.stop(), second.stop())


async def test_poison_message_is_dead_lettered_and_the_consumer_goes_on(settings, requester, service) -> None:
    producer = kafka.producer(settings, client_id="poison")
    await producer.start()
    try:
        await producer.send_and_wait(settings.topic(Topic.leads_commands), b"{not json", key=b"call-x")
    finally:
        await producer.stop()
    result = await requester.request(
        CommandType.create_lead, context("call-x"), CreateLead(name="u4", intent="a quote"), timeout=15
    )
    assert result.lead_id == "u4"

    consumer = kafka.consumer(settings, group_id=None, client_id="dlq-reader")
    await consumer.start()
    try:
        tp = TopicPartition(settings.topic(Topic.leads_commands.dead_letter), 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        records = (await consumer.getmany(tp, timeout_ms=5000))[tp]
    finally:
        await consumer.stop()
    assert [r.value for r in records] == [b"{not json"]
    assert dict(records[0].headers)["dead_letter_reason"].startswith(b"undecodable")


async def test_trace_is_continuous_from_requester_to_handler(requester, service, spans) -> None:
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("tool call") as root:
        await requester.request(
            CommandType.create_lead, context(), CreateLead(name="u5", intent="a quote"), timeout=15
        )
    trace_id = root.get_span_context().trace_id
    assert service.trace_ids[-1] == trace_id
    # The service ends its span just after sending the reply, so it may finish a moment later.
    for _ in range(100):
        named = {s.name: s for s in spans.get_finished_spans() if s.context.trace_id == trace_id}
        if any(name.endswith("process") for name in named):
            break
        await asyncio.sleep(0.02)
    publish = next(s for name, s in named.items() if name.endswith("leads.commands publish"))
    process = next(s for name, s in named.items() if name.endswith("leads.commands process"))
    assert publish.parent.span_id == root.get_span_context().span_id
    assert process.parent.span_id == publish.context.span_id
    assert json.dumps(dict(process.attributes)).count("acc-1") == 1
