"""Request/reply over Kafka: send a command, wait for the reply with the same correlation id.

Each requester instance owns a reply topic of its own (`gateway.replies.<instance id>`, one
partition) and reads it without a consumer group, so a reply can only reach the replica that asked.
Waiting requests live in a bounded map; each entry is removed when its reply arrives or its
deadline passes, whichever comes first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Protocol, TypeVar
from uuid import uuid4

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from opentelemetry import trace
from pydantic import ValidationError

from switchboard.contracts import OPERATIONS, REPLY_TOPIC_PREFIX, CallContext, Command, CommandType, Contract, Reply
from switchboard.messaging import kafka
from switchboard.messaging.errors import Busy, RequestFailed, RequestTimeout
from switchboard.settings import SwitchboardSettings
from switchboard.telemetry import inject_headers, meter, tracer

log = logging.getLogger(__name__)

ResultT = TypeVar("ResultT", bound=Contract)

_request_duration = meter.create_histogram(
    "switchboard.request.duration", unit="ms", description="Command sent to reply received, as the requester sees it."
)
_request_outcomes = meter.create_counter(
    "switchboard.request.outcomes", description="Requests by outcome: ok, error, timeout, busy."
)


class Requester(Protocol):
    async def request(
        self, type: CommandType, context: CallContext, args: Contract, *, timeout: float, command_id: str | None = None
    ) -> Contract:
        """The typed result, or raises RequestFailed / RequestTimeout / Busy.

        `command_id` names the command when the caller decides it (a repeated tool call sends the
        first call's id again, so the service answers with what it did then); else a new id."""


def build_command(
    command_type: CommandType,
    context: CallContext,
    args: Contract,
    *,
    timeout: float,
    reply_to: str,
    command_id: str | None = None,
) -> Command:
    op = OPERATIONS[command_type]
    if not isinstance(args, op.args):
        raise TypeError(f"{command_type} takes {op.args.__name__}, not {type(args).__name__}")
    return op.command.build(
        command_type, context, args, timeout=timedelta(seconds=timeout), reply_to=reply_to, command_id=command_id
    )


def result_of(command: Command, reply: Reply) -> Contract:
    if reply.error is not None:
        raise RequestFailed(reply.error)
    try:
        return OPERATIONS[command.type].result.model_validate(reply.result or {})
    except ValidationError as e:
        raise RuntimeError(f"reply to {command.type} does not match its result contract: {e}") from e


class KafkaRequester:
    def __init__(
        self,
        settings: SwitchboardSettings,
        *,
        instance_id: str | None = None,
        max_pending: int = 10_000,
        producer: AIOKafkaProducer | None = None,
    ) -> None:
        self._settings = settings
        self.instance_id = instance_id or uuid4().hex[:12]
        self.reply_topic = settings.topic(REPLY_TOPIC_PREFIX + self.instance_id)
        self._max_pending = max_pending
        self._pending: dict[str, asyncio.Future[Reply]] = {}
        self._producer = producer
        self._owns_producer = producer is None
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def start(self) -> None:
        await kafka.ensure_topics(
            self._settings,
            [kafka.TopicSpec(self.reply_topic, 1, {"retention.ms": str(3_600_000)})],
        )
        if self._producer is None:
            self._producer = kafka.producer(self._settings, client_id=f"requester-{self.instance_id}")
            await self._producer.start()
        self._consumer = kafka.consumer(self._settings, group_id=None, client_id=f"requester-{self.instance_id}")
        await self._consumer.start()
        partition = TopicPartition(self.reply_topic, 0)
        self._consumer.assign([partition])
        await self._consumer.seek_to_end(partition)
        await self._consumer.position(partition)
        self._task = asyncio.create_task(self._read_replies(), name=f"replies-{self.instance_id}")

    async def stop(self, *, delete_reply_topic: bool = True) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for future in self._pending.values():
            future.cancel()
        if self._consumer:
            await self._consumer.stop()
        if self._producer and self._owns_producer:
            await self._producer.stop()
        if delete_reply_topic:
            try:
                await kafka.delete_topics(self._settings, [self.reply_topic])
            except KafkaError as e:
                log.warning("could not delete reply topic %s: %s", self.reply_topic, e)

    async def request(
        self, type: CommandType, context: CallContext, args: Contract, *, timeout: float, command_id: str | None = None
    ) -> Contract:
        if len(self._pending) >= self._max_pending:
            _request_outcomes.add(1, {"type": type.value, "outcome": "busy"})
            raise Busy(f"{len(self._pending)} requests are already waiting")
        command = build_command(
            type, context, args, timeout=timeout, reply_to=self.reply_topic, command_id=command_id
        )
        reply = await self.send(command)
        return result_of(command, reply)

    async def send(self, command: Command) -> Reply:
        """Send a built command and wait for its reply (used directly to replay a command id)."""
        assert self._producer is not None, "start() the requester first"
        topic = self._settings.topic(OPERATIONS[command.type].topic)
        # Sends of one command id at once (a replay while the first is unanswered) share one reply:
        # the first reply to arrive answers them all. Each waits through a shield, so one sender
        # giving up does not cancel the reply the others wait for.
        future = self._pending.get(command.command_id)
        first = future is None
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._pending[command.command_id] = future
        started = time.perf_counter()
        outcome = "error"
        try:
            async with asyncio.timeout(max(command.remaining(), 0)):
                with tracer.start_as_current_span(f"{topic} publish", kind=trace.SpanKind.PRODUCER) as span:
                    span.set_attribute("messaging.system", "kafka")
                    span.set_attribute("messaging.destination.name", topic)
                    span.set_attribute("switchboard.command.type", command.type.value)
                    span.set_attribute("switchboard.command.id", command.command_id)
                    headers = inject_headers([("type", command.type.value.encode())])
                    await self._producer.send_and_wait(
                        topic, command.model_dump_json().encode(), key=command.call_id.encode(), headers=headers
                    )
                reply = await asyncio.shield(future)
            outcome = "ok" if reply.error is None else "error"
            return reply
        except TimeoutError:
            outcome = "timeout"
            raise RequestTimeout(f"no reply to {command.type} within its deadline") from None
        finally:
            if first and self._pending.get(command.command_id) is future:
                del self._pending[command.command_id]
            attributes = {"type": command.type.value, "outcome": outcome}
            _request_outcomes.add(1, attributes)
            _request_duration.record((time.perf_counter() - started) * 1000, attributes)

    async def _read_replies(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=200)
            except KafkaError as e:
                log.warning("reading replies failed: %s", e)
                await asyncio.sleep(0.2)
                continue
            for records in batches.values():
                for record in records:
                    self._deliver(record.value)

    def _deliver(self, value: bytes) -> None:
        try:
            reply = Reply.model_validate_json(value)
        except ValidationError:
            log.warning("ignored an undecodable reply on %s", self.reply_topic)
            return
        future = self._pending.get(reply.correlation_id)
        if future is None:
            log.debug("late or duplicate reply %s ignored", reply.correlation_id)
            return
        if not future.done():
            future.set_result(reply)
