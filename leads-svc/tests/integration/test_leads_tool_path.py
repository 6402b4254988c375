"""create_lead and the event relay on the real database: every read and delete names one document by
`_id` alone, which FerretDB serves from an index (any other filter reads the whole collection); the
relay's one listing is of the outbox, which holds only the events not sent yet."""

from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial
from typing import Any
from uuid import uuid4

import pytest
from pymongo import AsyncMongoClient

from leads_svc.handlers import create_lead
from leads_svc.outbox import EventRelay, LeadEvents
from leads_svc.repository import (
    CASE_KEYS,
    CASES,
    INDEXES,
    LEAD_KEYS,
    LEADS,
    OUTBOX,
    MongoCases,
    MongoLeads,
    MongoOutbox,
    MongoRelayClaims,
)
from switchboard.contracts import CallContext, Command, CommandType
from switchboard.contracts.leads import CreateLead
from switchboard.messaging.events import RecordingEventPublisher
from switchboard.mongo import ensure_indexes
from switchboard.testing.queries import Query, QueryLog

pytestmark = pytest.mark.integration

ACCOUNT = "acc-path"
RECORDS = (LEADS, CASES)
KEYS = (LEAD_KEYS, CASE_KEYS, OUTBOX)


class Flaky(RecordingEventPublisher):
    """Kafka that takes nothing while `down`."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def publish(self, topic, event, *, key: str) -> None:
        if self.down:
            raise ConnectionError("broker unreachable")
        await super().publish(topic, event, key=key)


class Store:
    def __init__(self, db: Any, queries: QueryLog) -> None:
        self.db = db
        self.queries = queries
        self.publisher = Flaky()
        leads, cases, self.outbox = MongoLeads(db), MongoCases(db), MongoOutbox(db)
        self.events = LeadEvents(self.publisher, self.outbox, leads, cases, timeout=5)
        self.handle = partial(create_lead, leads=leads, cases=cases, events=self.events)
        self.relay = EventRelay(self.events, self.outbox, MongoRelayClaims(db), interval=3600, grace=30)


@pytest.fixture
async def store(infra, isolation) -> AsyncIterator[Store]:
    queries = QueryLog()
    client = AsyncMongoClient(infra.mongo_uri, tz_aware=True, event_listeners=[queries])
    db = client[f"{isolation}_leads_path"]
    await ensure_indexes(db, INDEXES)
    yield Store(db, queries)
    await client.drop_database(db.name)
    await client.close()


def command(caller: str | None = "+14155550123") -> Command[CreateLead]:
    context = CallContext(
        account_id=ACCOUNT, persona_id="per-1", call_id=f"call-{uuid4().hex[:8]}", caller_id_number=caller, region="US"
    )
    arguments = CreateLead(name="Ann Smith", intent="Wants a quote.")
    return Command[CreateLead].build(
        CommandType.create_lead, context, arguments, timeout=timedelta(seconds=15), reply_to="tests"
    )


def assert_by_id_alone(seen: list[Query]) -> None:
    assert seen
    for query in seen:
        assert query.command in ("find", "delete") and query.by_id, query
        assert query.collection in RECORDS + KEYS, query
        if query.collection in KEYS:
            assert query.filter["_id"].startswith(f"{ACCOUNT}/"), query


async def test_first_and_later_calls_and_a_replay_touch_documents_by_id_alone(store) -> None:
    first_call, replayed = command(), command(None)
    store.queries.recording = True
    first = await store.handle(first_call)
    later = await store.handle(command("(415) 555-0123"))
    once = await store.handle(replayed)
    again = await store.handle(replayed)
    assert await store.handle(first_call) == first
    store.queries.recording = False

    assert later.lead_id == first.lead_id and later.lead_existed and again == once
    assert_by_id_alone(store.queries.seen)
    assert len(store.publisher.published) == 5, "two leads and three cases, each announced once"
    assert await store.db[OUTBOX].count_documents({}) == 0
    key = await store.db[LEAD_KEYS].find_one({"_id": f"{ACCOUNT}/+14155550123"})
    assert (key["lead_id"], key["account_id"]) == (first.lead_id, ACCOUNT)
    case_key = await store.db[CASE_KEYS].find_one({"_id": f"{ACCOUNT}/{first_call.command_id}"})
    assert case_key["case_id"] == first.case_id


async def test_a_relay_pass_lists_the_outbox_and_reads_the_rest_by_id(store) -> None:
    store.publisher.down = True
    left = command()
    await store.handle(left)
    await store.handle(command("+14155550100"))
    store.publisher.down = False
    for _ in range(3):
        await store.handle(command("+14155550199"))
    assert await store.db[OUTBOX].count_documents({}) == 2

    store.queries.recording = True
    sent = await store.relay.run_once(now=left.deadline + timedelta(seconds=31))
    store.queries.recording = False

    assert sent == 4 and await store.db[OUTBOX].count_documents({}) == 0
    listings = [(query.command, query.collection) for query in store.queries.seen if not query.by_id]
    assert listings == [("find", OUTBOX)]
    assert_by_id_alone([query for query in store.queries.seen if query.by_id])
