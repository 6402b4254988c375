"""The command-consumer runtime every service runs: Kafka in, CommandProcessor, reply out.

- Commands of one key (`call_id`) are handled one at a time, in partition order; different calls
  run concurrently, up to `max_in_flight`, after which the runtime stops taking records until one
  finishes (back-pressure). It does not pause the partitions: aiokafka sends no fetch to a broker
  while records fetched from it wait to be taken, so the records wait in the consumer's buffer
  (bounded by the fetch size) and are taken at once when there is room. A paused partition would
  instead be fetched again only after the fetch in flight returns, up to the fetch wait later.
- An offset is committed only once every command before it in its partition has been answered
  (the reply acknowledged by the broker), so a crash redelivers, and the processor's idempotency
  turns the redelivery into the stored reply. Commits are batched: at most one every
  `kafka_commit_interval_ms` while records flow (each is a write to the broker's offsets log), and
  at once when partitions are revoked or the runtime stops.
- Poison messages go to `<topic>.dlq` with the reason in a header, and consumption goes on.
- Trace context is taken from the command's headers and put on the reply's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from opentelemetry import trace
from opentelemetry.metrics import CallbackOptions, Observation

from switchboard.contracts import Topic
from switchboard.contracts.topics import COMMAND_TOPIC_PARTITIONS
from switchboard.messaging import kafka
from switchboard.messaging.processor import CommandProcessor, Outcome, Processed
from switchboard.settings import SwitchboardSettings
from switchboard.telemetry import extract_context, inject_headers, meter, tracer

log = logging.getLogger(__name__)

_command_duration = meter.create_histogram(
    "switchboard.command.duration", unit="ms", description="Time to handle one command in a service."
)
_command_outcomes = meter.create_counter(
    "switchboard.command.outcomes", description="Commands handled, by outcome (handled, failed, expired, ...)."
)
_dead_letters = meter.create_counter(
    "switchboard.consumer.dead_letters", description="Commands set aside on the dead-letter topic, never retried."
)


class _Partition:
    """Offsets of one partition that were dispatched but not finished, for the commit watermark."""

    def __init__(self) -> None:
        self.in_flight: set[int] = set()
        self.next_offset: int | None = None
        self.committed: int | None = None

    def commit_point(self) -> int | None:
        if self.in_flight:
            return min(self.in_flight)
        return self.next_offset


class CommandConsumer:
    def __init__(
        self,
        settings: SwitchboardSettings,
        topic: Topic,
        processor: CommandProcessor,
        *,
        group_id: str | None = None,
        max_in_flight: int = 256,
        session_timeout_ms: int = 10_000,
        producer: AIOKafkaProducer | None = None,
    ) -> None:
        self._settings = settings
        self._topic = settings.topic(topic)
        self._dead_letter_topic = settings.topic(topic.dead_letter)
        self._processor = processor
        self._group_id = group_id or settings.topic(f"{processor.service}.workers")
        self._max_in_flight = max_in_flight
        self._session_timeout_ms = session_timeout_ms
        self._producer = producer
        self._owns_producer = producer is None
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._partitions: dict[TopicPartition, _Partition] = defaultdict(_Partition)
        self._tails: dict[tuple[TopicPartition, bytes], asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._lag: dict[TopicPartition, int] = {}
        self._room = asyncio.Event()
        """Set while fewer than `max_in_flight` commands are being handled."""
        self._room.set()
        self._commit_interval = settings.kafka_commit_interval_ms / 1000
        self._last_commit = 0.0
        self.ready = asyncio.Event()
        meter.create_observable_gauge(
            "switchboard.consumer.lag",
            callbacks=[self._observe_lag],
            description="Records not yet fetched, per partition of a command topic.",
        )
        meter.create_observable_gauge(
            "switchboard.consumer.in_flight",
            callbacks=[lambda _options: [Observation(len(self._tasks), {"service": self._processor.service})]],
            description="Commands this replica is handling now (at most max_in_flight).",
        )

    async def start(self) -> None:
        await kafka.ensure_topics(
            self._settings,
            [
                kafka.TopicSpec(self._topic, COMMAND_TOPIC_PARTITIONS),
                kafka.TopicSpec(self._dead_letter_topic, 1),
            ],
        )
        if self._producer is None:
            self._producer = kafka.producer(self._settings, client_id=f"{self._processor.service}-replies")
            await self._producer.start()
        self._consumer = kafka.consumer(
            self._settings,
            group_id=self._group_id,
            client_id=self._processor.service,
            session_timeout_ms=self._session_timeout_ms,
        )
        self._consumer.subscribe([self._topic], listener=_Rebalance(self))
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=f"{self._processor.service}-consumer")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._drain(set(self._partitions))
        if self._consumer:
            await self._commit()
            await self._consumer.stop()
        if self._producer and self._owns_producer:
            await self._producer.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            await self._room.wait()
            try:
                batches = await self._consumer.getmany(
                    timeout_ms=100, max_records=self._max_in_flight - len(self._tasks)
                )
            except KafkaError as e:
                log.warning("fetch from %s failed: %s", self._topic, e)
                await asyncio.sleep(0.5)
                continue
            if self._consumer.assignment():
                self.ready.set()
            for tp, records in batches.items():
                for record in records:
                    self._dispatch(tp, record)
                highwater = self._consumer.highwater(tp)
                if highwater is not None and records:
                    self._lag[tp] = max(highwater - records[-1].offset - 1, 0)
            self._apply_backpressure()
            now = time.monotonic()
            if now - self._last_commit >= self._commit_interval:
                self._last_commit = now
                await self._commit()

    def _dispatch(self, tp: TopicPartition, record: ConsumerRecord) -> None:
        partition = self._partitions[tp]
        partition.in_flight.add(record.offset)
        partition.next_offset = record.offset + 1
        key = (tp, record.key or b"")
        previous = self._tails.get(key)
        task = asyncio.create_task(self._handle_in_order(previous, tp, record))
        self._tails[key] = task
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if self._tails.get(key) is t:
                del self._tails[key]
            partition.in_flight.discard(record.offset)
            self._apply_backpressure()

        task.add_done_callback(done)

    async def _handle_in_order(
        self, previous: asyncio.Task[None] | None, tp: TopicPartition, record: ConsumerRecord
    ) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        try:
            await self._handle(record)
        except Exception:
            log.exception("unexpected failure handling offset %s of %s", record.offset, tp)

    async def _handle(self, record: ConsumerRecord) -> None:
        started = time.perf_counter()
        parent = extract_context(record.headers)
        with tracer.start_as_current_span(
            f"{self._topic} process", context=parent, kind=trace.SpanKind.CONSUMER
        ) as span:
            span.set_attribute("messaging.system", "kafka")
            span.set_attribute("messaging.destination.name", self._topic)
            span.set_attribute("messaging.kafka.offset", record.offset)
            processed = await self._processor.process(record.value, send=self._send_reply)
            command = processed.command
            if command is not None:
                span.set_attribute("switchboard.command.type", command.type.value)
                span.set_attribute("switchboard.command.id", command.command_id)
                span.set_attribute("switchboard.account_id", command.account_id)
                span.set_attribute("switchboard.call_id", command.call_id)
            span.set_attribute("switchboard.outcome", processed.outcome.value)
            if processed.reply is not None and processed.reply_to and not processed.sent:
                await self._send_reply(processed)
            if processed.dead_letter_reason is not None:
                span.set_status(trace.StatusCode.ERROR, processed.dead_letter_reason[:200])
                await self._dead_letter(record, processed.dead_letter_reason)
        if processed.outcome is Outcome.expired:
            log.info("dropped %s %s: past its deadline", command.type if command else "?", command.command_id if command else "?")
        attributes = {
            "service": self._processor.service,
            "type": command.type.value if command else "unknown",
            "outcome": processed.outcome.value,
        }
        _command_outcomes.add(1, attributes)
        _command_duration.record((time.perf_counter() - started) * 1000, attributes)

    async def _send_reply(self, processed: Processed) -> None:
        assert processed.reply_to is not None and processed.reply is not None
        with tracer.start_as_current_span(f"{processed.reply_to} publish", kind=trace.SpanKind.PRODUCER) as span:
            span.set_attribute("messaging.system", "kafka")
            span.set_attribute("messaging.destination.name", processed.reply_to)
            span.set_attribute("switchboard.command.id", processed.reply.correlation_id)
            await self._publish_reply(processed)

    async def _publish_reply(self, processed: Processed) -> None:
        assert self._producer is not None and processed.reply is not None and processed.command is not None
        headers = inject_headers([("type", b"reply"), ("correlation_id", processed.reply.correlation_id.encode())])
        value = processed.reply.model_dump_json().encode()
        while True:
            try:
                await self._producer.send_and_wait(
                    processed.reply_to, value, key=processed.command.call_id.encode(), headers=headers
                )
                return
            except KafkaError as e:
                if processed.command.expired():
                    log.warning("gave up sending the reply to %s: %s", processed.command.command_id, e)
                    return
                await asyncio.sleep(0.1)

    async def _dead_letter(self, record: ConsumerRecord, reason: str) -> None:
        assert self._producer is not None
        headers = list(record.headers or []) + [
            ("dead_letter_reason", reason[:1000].encode(errors="replace")),
            ("source_topic", self._topic.encode()),
            ("source_offset", str(record.offset).encode()),
        ]
        try:
            await self._producer.send_and_wait(self._dead_letter_topic, record.value, key=record.key, headers=headers)
        except KafkaError:
            log.exception("could not dead-letter offset %s of %s", record.offset, self._topic)
        _dead_letters.add(1, {"service": self._processor.service, "topic": self._topic})
        log.warning("dead-lettered offset %s of %s: %s", record.offset, self._topic, reason[:300])

    def _apply_backpressure(self) -> None:
        if len(self._tasks) >= self._max_in_flight:
            self._room.clear()
        else:
            self._room.set()

    async def _commit(self, only: set[TopicPartition] | None = None) -> None:
        assert self._consumer is not None
        offsets: dict[TopicPartition, int] = {}
        assigned = self._consumer.assignment()
        for tp, partition in self._partitions.items():
            if (only is not None and tp not in only) or tp not in assigned:
                continue
            point = partition.commit_point()
            if point is not None and point != partition.committed:
                offsets[tp] = point
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except KafkaError as e:
            log.warning("commit failed (will retry): %s", e)
            return
        for tp, offset in offsets.items():
            self._partitions[tp].committed = offset

    async def _drain(self, partitions: set[TopicPartition]) -> None:
        pending = [t for (tp, _), t in list(self._tails.items()) if tp in partitions]
        if pending:
            await asyncio.wait(pending)

    def _observe_lag(self, options: CallbackOptions) -> list[Observation]:
        return [
            Observation(lag, {"topic": tp.topic, "partition": tp.partition, "service": self._processor.service})
            for tp, lag in self._lag.items()
        ]


class _Rebalance(ConsumerRebalanceListener):
    """Before partitions move to another replica: finish what was started on them and commit it."""

    def __init__(self, owner: CommandConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        revoked = set(revoked)
        await self._owner._drain(revoked)
        await self._owner._commit(only=revoked)
        for tp in revoked:
            self._owner._partitions.pop(tp, None)
            self._owner._lag.pop(tp, None)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None
