"""Contact events survive a Kafka that does not take them: the outbox keeps them, the relay sends them,
and of several relays only one sends each event (claims are inserts into a unique index)."""

import asyncio
from datetime import timedelta
from uuid import uuid4

import pytest
from aiokafka.errors import KafkaConnectionError

from contacts_svc.model import now
from contacts_svc.outbox import ContactEvents, EventRelay
from contacts_svc.repository import INDEXES, OUTBOX, OutboxRepository
from switchboard.contracts import Topic
from switchboard.contracts.contacts import ContactCreated
from switchboard.messaging.events import RecordingEventPublisher
from switchboard.mongo import ensure_indexes

pytestmark = pytest.mark.integration


class FlakyPublisher(RecordingEventPublisher):
    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def publish(self, topic, event, *, key: str) -> None:
        if self.failures:
            self.failures -= 1
            raise KafkaConnectionError("broker away")
        await super().publish(topic, event, key=key)


@pytest.fixture
async def outbox_db(mongo_client):
    db = mongo_client[f"t{uuid4().hex[:10]}_contacts_outbox"]
    await ensure_indexes(db, INDEXES)
    yield db
    await mongo_client.drop_database(db.name)


def created(account_id: str) -> ContactCreated:
    return ContactCreated(
        event_id=uuid4().hex, account_id=account_id, contact_id="c1", name="Ann", phone_numbers=["+14155550123"], changed_at=now()
    )


async def test_an_event_kafka_did_not_take_is_sent_by_the_relay_later(outbox_db) -> None:
    outbox = OutboxRepository(outbox_db)
    publisher = FlakyPublisher(failures=1)
    events = ContactEvents(outbox, publisher, timeout=1)
    event = created("acc-1")

    await events.announce("acc-1", event)
    assert publisher.published == [] and await outbox_db[OUTBOX].count_documents({}) == 1

    relay = EventRelay(events, outbox, interval=60, grace=30)
    assert await relay.run_once(now()) == 0
    assert await relay.run_once(now() + timedelta(seconds=31)) == 1
    assert publisher.published == [(Topic.contact_events, "acc-1", event)]
    assert await outbox_db[OUTBOX].count_documents({}) == 0


async def test_a_published_event_leaves_nothing_in_the_outbox(outbox_db) -> None:
    outbox = OutboxRepository(outbox_db)
    publisher = FlakyPublisher(failures=0)
    await ContactEvents(outbox, publisher, timeout=1).announce("acc-1", created("acc-1"))
    assert len(publisher.published) == 1 and await outbox_db[OUTBOX].count_documents({}) == 0


async def test_of_several_relays_one_sends_each_due_event(outbox_db) -> None:
    outbox = OutboxRepository(outbox_db)
    publishers = [FlakyPublisher(failures=0) for _ in range(5)]
    for i in range(3):
        event = created(f"acc-{i}")
        await outbox.add(event.event_id, event.account_id, event.model_dump(mode="json"), now() - timedelta(minutes=5))
    relays = [EventRelay(ContactEvents(outbox, p, timeout=1), outbox, interval=60, grace=30) for p in publishers]
    at = now()
    sent = await asyncio.gather(*(r.run_once(at) for r in relays))
    assert sum(sent) == 3
    assert sorted(key for p in publishers for _, key, _ in p.published) == ["acc-0", "acc-1", "acc-2"]
