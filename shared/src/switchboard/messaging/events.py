"""Domain events (facts) on `<domain>.events` topics: publishing them, and reading them.

An event is a frozen contract with a literal `event` field naming it; a reader is given the models
it understands and skips (and logs) anything else, so a new event type never stops an old reader.
"""

from __future__ import annotations

import asyncio
import json
import logging
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


class KafkaEventPublisher:
    def __init__(self, settings: SwitchboardSettings, producer: AIOKafkaProducer) -> None:
        self._settings = settings
        self._producer = producer

    async def publish(self, topic: Topic, event: Contract, *, key: str) -> None:
        headers = inject_headers([("event", str(getattr(event, "event", type(event).__name__)).encode())])
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
    """Reads one events topic and calls `handler` for each event it understands, in order.

    With a `group_id`, replicas share the work (each event handled once in the group); without one,
    this instance reads every partition from the end (each replica sees every event: cache
    invalidation).
    """

    def __init__(
        self,
        settings: SwitchboardSettings,
        topic: Topic,
        models: Sequence[type[Contract]],
        handler: EventHandler,
        *,
        group_id: str | None,
        client_id: str,
    ) -> None:
        self._settings = settings
        self._topic = settings.topic(topic)
        self._models = models
        self._handler = handler
        self._group_id = settings.topic(group_id) if group_id else None
        self._client_id = client_id
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await kafka.ensure_topics(self._settings, [kafka.TopicSpec(self._topic, EVENT_TOPIC_PARTITIONS)])
        if self._group_id:
            self._consumer = kafka.consumer(
                self._settings,
                self._topic,
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
            partitions = [TopicPartition(self._topic, p) for p in await kafka.partitions_of(self._settings, self._topic)]
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
            await self._consumer.stop()

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
                    event = decode_event(record.value, self._models)
                    if event is None:
                        log.info("skipped an event on %s that this reader does not know", self._topic)
                        continue
                    with tracer.start_as_current_span(
                        f"{self._topic} process", context=extract_context(record.headers)
                    ):
                        try:
                            await self._handler(event)
                        except Exception:
                            log.exception("event handler failed on %s offset %s", tp, record.offset)
                if self._group_id and records:
                    try:
                        await self._consumer.commit({tp: records[-1].offset + 1})
                    except KafkaError as e:
                        log.warning("event commit failed: %s", e)
