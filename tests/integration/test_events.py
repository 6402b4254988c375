"""Events on the real Kafka: a reader without a group sees every event published after it started."""

import asyncio
from datetime import UTC, datetime

import pytest

from switchboard.contracts import Contract, Topic
from switchboard.contracts.persona import PersonaUpdated, UserDndChanged
from switchboard.messaging import kafka
from switchboard.messaging.events import EventConsumer, KafkaEventPublisher

pytestmark = pytest.mark.integration


async def test_every_groupless_reader_sees_every_event_and_skips_unknown_ones(settings) -> None:
    seen: list[list[Contract]] = [[], []]

    def collect(into: list[Contract]):
        async def handle(event: Contract) -> None:
            into.append(event)

        return handle

    readers = [
        EventConsumer(settings, Topic.persona_events, [PersonaUpdated], collect(seen[i]), group_id=None, client_id=f"r{i}")
        for i in range(2)
    ]
    for reader in readers:
        await reader.start()
    producer = kafka.producer(settings, client_id="events-test")
    await producer.start()
    try:
        publisher = KafkaEventPublisher(settings, producer)
        now = datetime.now(UTC)
        await publisher.publish(Topic.persona_events, UserDndChanged(account_id="a", user_id="u", dnd=True, changed_at=now), key="a")
        for i in range(5):
            await publisher.publish(Topic.persona_events, PersonaUpdated(account_id=f"a{i}", persona_id="p", updated_at=now), key=f"a{i}")
        for _ in range(250):
            if all(len(s) == 5 for s in seen):
                break
            await asyncio.sleep(0.02)
    finally:
        await producer.stop()
        for reader in readers:
            await reader.stop()
    for events in seen:
        assert sorted(e.account_id for e in events) == [f"a{i}" for i in range(5)]


async def test_a_group_reader_skips_the_events_its_own_service_published_and_commits_the_rest(settings) -> None:
    seen: list[Contract] = []

    async def handle(event: Contract) -> None:
        seen.append(event)

    group = f"skip-{datetime.now(UTC).timestamp()}"
    reader = EventConsumer(
        settings, Topic.persona_events, [PersonaUpdated], handle, group_id=group, client_id="own", skip_producer="persona"
    )
    await reader.start()
    producer = kafka.producer(settings, client_id="events-test")
    await producer.start()
    try:
        own = KafkaEventPublisher(settings, producer, source="persona")
        other = KafkaEventPublisher(settings, producer)
        now = datetime.now(UTC)
        await own.publish(Topic.persona_events, PersonaUpdated(account_id="mine", persona_id="p", updated_at=now), key="k")
        await other.publish(Topic.persona_events, PersonaUpdated(account_id="theirs", persona_id="p", updated_at=now), key="k")
        for _ in range(250):
            if seen:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
    finally:
        await producer.stop()
        await reader.stop()
    assert [e.account_id for e in seen] == ["theirs"]

    # Stopping committed what was read, own events included: a new reader of the group starts after
    # them, so the first event it sees is one published after the first reader stopped.
    again: list[Contract] = []

    async def handle_again(event: Contract) -> None:
        again.append(event)

    second = EventConsumer(settings, Topic.persona_events, [PersonaUpdated], handle_again, group_id=group, client_id="own2")
    await second.start()
    producer = kafka.producer(settings, client_id="events-test-2")
    await producer.start()
    try:
        later = PersonaUpdated(account_id="later", persona_id="p", updated_at=datetime.now(UTC))
        await KafkaEventPublisher(settings, producer).publish(Topic.persona_events, later, key="k")
        for _ in range(500):
            if again:
                break
            await asyncio.sleep(0.02)
    finally:
        await producer.stop()
        await second.stop()
    assert [e.account_id for e in again] == ["later"]
