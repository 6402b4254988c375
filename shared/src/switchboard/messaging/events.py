"""Domain events (facts) on `<domain>.events` topics: publishing them, and reading them.

An event is a frozen contract with a literal `event` field naming it; a reader is given the models
it understands and skips (and logs) anything else, so a new event type never stops an old reader.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from switchboard.contracts import Contract, Topic
from switchboard.contracts.topics import EVENT_TOPIC_PARTITIONS
from switchboard.messaging import kafka
from switchboard.settings import SwitchboardSettings
from switchboard.telemetry import extract_context, inject_headers, tracer

log = logging.getLogger(__name__)

EventHandler = Callable[[Contract], Awaitable[None]]

# How long an idle event reader's fetch waits at the broker (Kafka's own default): an event that
# arrives meanwhile is answered at once, so this only sets how often an idle reader polls.
EVENT_FETCH_MAX_WAIT_MS = 500


class EventPublisher(Protocol):
    async def publish(self, topic: Topic, event: Contract, *, key: str) -> None: ...


PRODUCER_HEADER = "producer"
"""Names the service that published an event, so that its own readers can skip what it already applied."""


class KafkaEventPublisher:
    def __init__(self, settings: SwitchboardSettings, producer: AIOKafkaProducer, *, source: str | None = None) -> None:
        self._settings = settings
        self._producer = producer
        self._source = [(PRODUCER_HEADER, source.encode())] if source else []

    async def publish(self, topic: Topic, event: Contract, *, key: str) -> None:
        headers = inject_headers([("event", str(getattr(event, "event", type(event).__name__)).encode()), *self._source])
        await self._producer.send_and_wait(
            self._settings.topic(topic), event.model_dump_json().encode(), key=key.encode(), headers=headers
        )


class RecordingEventPublisher:
    """Keeps published events in a list, for unit tests."""

    def __init__(self) -> None:
        self.published: list[tuple[Topic, str, Contract]] = []

    async def publish(self, topic: Topic, event: Contract, *, key: str) -> None:
        self.published.append((topic, key, event))


async def ensure_event_topics(settings: SwitchboardSettings, *topics: Topic) -> None:
    await kafka.ensure_topics(settings, [kafka.TopicSpec(settings.topic(t), EVENT_TOPIC_PARTITIONS) for t in topics])


def decode_event(value: bytes, models: Sequence[type[Contract]]) -> Contract | None:
    try:
        raw = json.loads(value)
        name = raw.get("event")
    except (ValueError, AttributeError):
        return None
    for model in models:
        if model.model_fields["event"].default == name:
            try:
                return model.model_validate(raw)
            except ValidationError as e:
                log.warning("invalid %s event skipped: %s", name, e.errors()[:2])
                return None
    return None


class EventConsumer:
    """Reads one events topic (or a few) and calls `handler` for each event it understands, in order.

    With a `group_id`, replicas share the work (each event handled once in the group) and offsets
    are committed at most every `kafka_commit_interval_ms` (and on stop: the handlers are
    idempotent, so a crash or a rebalance only repeats a few); without one, this instance reads
    every partition from the end (each replica sees every event: cache invalidation).

    `skip_producer` names a service whose own events this reader passes over: a service that
    applied a fact before announcing it need not apply it again when it reads it back.
    """

    def __init__(
        self,
        settings: SwitchboardSettings,
        topic: Topic | Sequence[Topic],
        models: Sequence[type[Contract]],
        handler: EventHandler,
        *,
        group_id: str | None,
        client_id: str,
        skip_producer: str | None = None,
    ) -> None:
        self._settings = settings
        self._skip = (PRODUCER_HEADER, skip_producer.encode()) if skip_producer else None
        self._commit_interval = settings.kafka_commit_interval_ms / 1000
        self._last_commit = 0.0
        self._uncommitted: dict[TopicPartition, int] = {}
        self._topics = [settings.topic(t) for t in ([topic] if isinstance(topic, Topic) else topic)]
        self._topic = ", ".join(self._topics)
        self._models = models
        self._handler = handler
        self._group_id = settings.topic(group_id) if group_id else None
        self._client_id = client_id
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await kafka.ensure_topics(self._settings, [kafka.TopicSpec(t, EVENT_TOPIC_PARTITIONS) for t in self._topics])
        if self._group_id:
            self._consumer = kafka.consumer(
                self._settings,
                *self._topics,
                group_id=self._group_id,
                client_id=self._client_id,
                fetch_max_wait_ms=EVENT_FETCH_MAX_WAIT_MS,
            )
            await self._consumer.start()
        else:
            self._consumer = kafka.consumer(
                self._settings, group_id=None, client_id=self._client_id, fetch_max_wait_ms=EVENT_FETCH_MAX_WAIT_MS
            )
            await self._consumer.start()
            partitions = [
                TopicPartition(t, p) for t in self._topics for p in await kafka.partitions_of(self._settings, t)
            ]
            self._consumer.assign(partitions)
            await self._consumer.seek_to_end(*partitions)
            for tp in partitions:
                await self._consumer.position(tp)
        self._task = asyncio.create_task(self._run(), name=f"events-{self._topic}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer:
            await self._commit()
            await self._consumer.stop()

    async def _commit(self) -> None:
        assert self._consumer is not None
        if not self._uncommitted:
            return
        offsets, self._uncommitted = self._uncommitted, {}
        try:
            await self._consumer.commit(offsets)
        except KafkaError as e:
            log.warning("event commit failed: %s", e)

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=200)
            except KafkaError as e:
                log.warning("reading %s failed: %s", self._topic, e)
                await asyncio.sleep(0.5)
                continue
            for tp, records in batches.items():
                for record in records:
                    if self._skip is not None and self._skip in (record.headers or ()):
                        continue
                    event = decode_event(record.value, self._models)
                    if event is None:
                        # A topic carries every fact of its domain and a reader takes the few it
                        # needs (the gateway's catalog reads persona.events for tool changes only).
                        log.debug("skipped an event on %s that this reader does not take", self._topic)
                        continue
                    with tracer.start_as_current_span(
                        f"{tp.topic} process", context=extract_context(record.headers)
                    ):
                        try:
                            await self._handler(event)
                        except Exception:
                            log.exception("event handler failed on %s offset %s", tp, record.offset)
                if self._group_id and records:
                    self._uncommitted[tp] = records[-1].offset + 1
            now = time.monotonic()
            if self._uncommitted and now - self._last_commit >= self._commit_interval:
                self._last_commit = now
                await self._commit()
