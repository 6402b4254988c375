"""leads-svc on the real Kafka and FerretDB: one lead per number under concurrency, one case per
command, tenant isolation, clear errors with nothing stored, and each event published once."""

import asyncio
import json
from datetime import timedelta
from functools import partial
from uuid import uuid4

import httpx
import pytest
from aiokafka import TopicPartition
from pydantic import ConfigDict

from leads_svc.bootstrap import create_service
from leads_svc.handlers import create_lead
from leads_svc.model import new_id
from leads_svc.outbox import EventRelay, LeadEvents
from leads_svc.repository import CASES, LEADS, OUTBOX, MongoCases, MongoLeads, MongoOutbox, MongoRelayClaims
from leads_svc.settings import LeadsSettings
from switchboard.contracts import CallContext, Command, CommandType, Contract, ErrorCode, Topic, utcnow
from switchboard.contracts.leads import CreateLead, LeadCreated
from switchboard.contracts.topics import EVENT_TOPIC_PARTITIONS
from switchboard.messaging import RequestFailed, kafka
from switchboard.messaging.requester import KafkaRequester, build_command

pytestmark = pytest.mark.integration

NUMBER = "+14155550123"
TOKEN = "integration-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class LooseArgs(Contract):
    """Arguments as a careless or hostile producer sends them: anything goes on the wire."""

    model_config = ConfigDict(extra="allow")


def context(account: str = "acc-1", caller: str | None = NUMBER, region: str | None = "US") -> CallContext:
    return CallContext(
        account_id=account, persona_id="per-1", call_id=f"call-{uuid4().hex[:10]}", caller_id_number=caller, region=region
    )


def args(**overrides) -> CreateLead:
    return CreateLead(**{"name": "Ann Smith", "intent": "Wants a quote for solar panels.", **overrides})


@pytest.fixture
async def leads_service(settings, isolation, mongo_client):
    service_settings = LeadsSettings(
        **settings.model_dump(), mongo_database=f"{isolation}_leads", admin_token=TOKEN, relay_interval=3600
    )
    service = create_service(service_settings)
    await service.start(serve_http=False)
    try:
        await service.wait_ready()
        yield service
    finally:
        await service.stop()
        await mongo_client.drop_database(f"{isolation}_leads")


@pytest.fixture
async def requester(settings, leads_service):
    requester = KafkaRequester(settings)
    await requester.start()
    yield requester
    await requester.stop()


@pytest.fixture
def db(leads_service):
    return leads_service.runtime.db


@pytest.fixture
async def http(leads_service):
    transport = httpx.ASGITransport(app=leads_service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://leads-svc") as client:
        yield client


async def request(requester: KafkaRequester, ctx: CallContext, arguments: CreateLead) -> LeadCreated:
    result = await requester.request(CommandType.create_lead, ctx, arguments, timeout=20)
    assert isinstance(result, LeadCreated)
    return result


async def published_events(settings) -> list[tuple[str, dict]]:
    """Every (key, event) on the lead events topic so far, read up to its end offsets."""
    topic = settings.topic(Topic.lead_events)
    consumer = kafka.consumer(settings, group_id=None, client_id="leads-test-events")
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(EVENT_TOPIC_PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        events: list[tuple[str, dict]] = []
        async with asyncio.timeout(20):
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    events += [(r.key.decode(), json.loads(r.value)) for r in records]
        return events
    finally:
        await consumer.stop()


def of_kind(events: list[tuple[str, dict]], kind: str) -> list[dict]:
    return [event for _, event in events if event["event"] == kind]


async def test_twenty_concurrent_calls_from_one_number_make_one_lead_and_twenty_cases(
    settings, requester, db, http
) -> None:
    forms = [NUMBER, "(415) 555-0123", "+1 415-555-0123", "415.555.0123"]
    results = await asyncio.gather(
        *(request(requester, context(caller=forms[i % len(forms)]), args(summary=f"call {i}")) for i in range(20))
    )

    lead_ids = {r.lead_id for r in results}
    assert len(lead_ids) == 1
    lead_id = lead_ids.pop()
    assert len({r.case_id for r in results}) == 20
    assert sorted(r.lead_existed for r in results) == [False] + [True] * 19
    assert all(r.deduplicable for r in results)
    assert await db[LEADS].count_documents({"account_id": "acc-1"}) == 1
    assert await db[CASES].count_documents({"account_id": "acc-1", "lead_id": lead_id}) == 20

    events = await published_events(settings)
    assert [e["lead_id"] for e in of_kind(events, "lead.created")] == [lead_id]
    assert sorted(e["case_id"] for e in of_kind(events, "case.created")) == sorted(r.case_id for r in results)
    assert {key for key, _ in events} == {lead_id}

    body = (await http.get(f"/v1/accounts/acc-1/leads/{lead_id}", headers=AUTH)).json()
    assert body["lead"]["case_count"] == 20 and body["lead"]["phone_e164"] == NUMBER
    assert len(body["cases"]["items"]) == 20


async def test_twenty_concurrent_handler_runs_on_the_store_make_one_lead(leads_service, db) -> None:
    """The same race without the consumer in between: every handler hits the store at once."""
    runtime = leads_service.runtime
    leads, cases, outbox = MongoLeads(db), MongoCases(db), MongoOutbox(db)
    events = LeadEvents(runtime.events, outbox, leads, cases, timeout=5)
    handle = partial(create_lead, leads=leads, cases=cases, events=events)
    commands = [
        Command[CreateLead].build(CommandType.create_lead, context(), args(), timeout=timedelta(seconds=20), reply_to="r")
        for _ in range(20)
    ]
    results = await asyncio.gather(*(handle(c) for c in commands))

    assert len({r.lead_id for r in results}) == 1 and len({r.case_id for r in results}) == 20
    assert [r.lead_existed for r in results].count(False) == 1
    assert await db[LEADS].count_documents({"account_id": "acc-1"}) == 1
    assert await db[CASES].count_documents({"account_id": "acc-1"}) == 20

    again = await asyncio.gather(*(handle(c) for c in commands))
    assert again == results
    assert await db[CASES].count_documents({"account_id": "acc-1"}) == 20
    assert await db[OUTBOX].count_documents({}) == 0
    relay = EventRelay(events, outbox, MongoRelayClaims(db), interval=3600, grace=30)
    assert await relay.run_once(now=utcnow() + timedelta(hours=1)) == 0, "every event went out with its command"


async def test_a_redelivered_command_adds_no_case_and_gets_the_same_reply(settings, requester, db) -> None:
    command = build_command(CommandType.create_lead, context(), args(), timeout=20, reply_to=requester.reply_topic)
    replies = [await requester.send(command) for _ in range(3)]

    assert replies[0].error is None and replies[0] == replies[1] == replies[2]
    assert await db[CASES].count_documents({"account_id": "acc-1", "command_id": command.command_id}) == 1
    assert await db[LEADS].count_documents({"account_id": "acc-1"}) == 1
    events = await published_events(settings)
    assert len(of_kind(events, "lead.created")) == 1 and len(of_kind(events, "case.created")) == 1


async def test_the_same_number_in_two_accounts_is_two_leads(requester, db, http) -> None:
    a = await request(requester, context("acc-a"), args())
    b = await request(requester, context("acc-b"), args())
    again_a = await request(requester, context("acc-a"), args())

    assert a.lead_id != b.lead_id and not a.lead_existed and not b.lead_existed
    assert again_a.lead_id == a.lead_id and again_a.lead_existed
    assert await db[LEADS].count_documents({"account_id": "acc-a"}) == 1
    assert await db[LEADS].count_documents({"account_id": "acc-b"}) == 1
    assert await db[CASES].count_documents({"account_id": "acc-b"}) == 1

    listed = (await http.get("/v1/accounts/acc-b/leads", headers=AUTH)).json()
    assert [lead["id"] for lead in listed["items"]] == [b.lead_id]
    assert (await http.get(f"/v1/accounts/acc-b/leads/{a.lead_id}", headers=AUTH)).status_code == 404


@pytest.mark.parametrize("caller", [None, "anonymous"])
async def test_a_call_without_a_usable_number_gets_a_lead_that_is_not_deduplicable(requester, db, http, caller) -> None:
    first = await request(requester, context(caller=caller), args())
    second = await request(requester, context(caller=caller), args())

    assert not first.deduplicable and not second.deduplicable
    assert first.lead_id != second.lead_id and not second.lead_existed
    stored = await db[LEADS].find_one({"account_id": "acc-1", "_id": first.lead_id})
    assert stored["deduplicable"] is False and stored["phone_e164"] is None and stored["caller_id"] == caller
    body = (await http.get(f"/v1/accounts/acc-1/leads/{first.lead_id}", headers=AUTH)).json()
    assert body["lead"]["deduplicable"] is False and body["lead"]["case_count"] == 1


@pytest.mark.parametrize(
    ("raw_args", "field"),
    [
        ({"name": "Ann", "intent": "Quote.", "classification": "vip"}, "classification"),
        ({"name": "A" * 201, "intent": "Quote."}, "name"),
        ({"name": "Ann", "intent": "Q" * 1001}, "intent"),
        ({"name": "Ann", "intent": "Quote.", "notes": "n" * 4001}, "notes"),
        ({"name": "Ann", "intent": "Quote.", "summary": "s" * 4001}, "summary"),
        ({"name": "Ann"}, "intent"),
        ({"name": "Ann", "intent": "Quote.", "owner": "admin", "lead_id": "x"}, "owner"),
        ({"name": "   ", "intent": "Quote."}, "name"),
    ],
)
async def test_bad_arguments_are_clear_errors_and_nothing_is_stored(settings, requester, db, raw_args, field) -> None:
    ctx = context()
    command = Command[LooseArgs].build(
        CommandType.create_lead, ctx, LooseArgs(**raw_args), timeout=timedelta(seconds=20), reply_to=requester.reply_topic
    )
    reply = await requester.send(command)

    assert reply.result is None and reply.error is not None
    assert reply.error.code is ErrorCode.invalid_argument and field in reply.error.message
    assert await db[LEADS].count_documents({"account_id": "acc-1"}) == 0
    assert await db[CASES].count_documents({"account_id": "acc-1"}) == 0
    assert await published_events(settings) == []
    with pytest.raises(RequestFailed):
        await requester.request(CommandType.create_lead, ctx, args(name=" "), timeout=20)


class Unreachable:
    """Kafka as a handler sees it when the process dies before its publish: nothing goes out."""

    async def publish(self, topic, event, *, key) -> None:
        raise ConnectionError("broker unreachable")


async def test_events_left_by_a_crash_are_sent_once_by_the_relay(settings, leads_service, db) -> None:
    """A handler whose events did not go out after its inserts: the relay of one replica takes over."""
    runtime = leads_service.runtime
    leads, cases, outbox = MongoLeads(db), MongoCases(db), MongoOutbox(db)
    command = Command[CreateLead].build(
        CommandType.create_lead, context(), args(), timeout=timedelta(seconds=20), reply_to="r"
    )
    dead = LeadEvents(Unreachable(), outbox, leads, cases, timeout=5)
    result = await create_lead(command, leads=leads, cases=cases, events=dead)
    assert await published_events(settings) == []
    assert [doc["_id"] async for doc in db[OUTBOX].find()] == [f"acc-1/{command.command_id}"]

    events = LeadEvents(runtime.events, outbox, leads, cases, timeout=5)
    relays = [EventRelay(events, outbox, MongoRelayClaims(db), interval=3600, grace=30) for _ in range(2)]
    assert await relays[0].run_once(now=command.deadline) == 0, "the command's own until its deadline and grace"
    later = command.deadline + timedelta(seconds=31)
    assert [await relay.run_once(now=later) for relay in relays] == [2, 0]
    assert await relays[0].run_once(now=later + timedelta(seconds=60)) == 0

    published = await published_events(settings)
    key = result.lead_id
    assert [(k, e["event"]) for k, e in published] == [(key, "lead.created"), (key, "case.created")]
    assert published[1][1]["case_id"] == result.case_id
    assert published[0][1]["created_at"] == published[1][1]["created_at"]
    assert await db[OUTBOX].count_documents({}) == 0


async def test_concurrent_calls_after_a_first_call_died_between_its_inserts_make_one_lead(
    settings, leads_service, db
) -> None:
    """The dead call claimed the caller's key only; of the next twenty, one writes the lead under it."""
    leads, cases, outbox = MongoLeads(db), MongoCases(db), MongoOutbox(db)
    orphan_id = await leads.claim("acc-1", NUMBER, new_id())
    handle = partial(
        create_lead, leads=leads, cases=cases, events=LeadEvents(leads_service.runtime.events, outbox, leads, cases, timeout=5)
    )
    commands = [
        Command[CreateLead].build(CommandType.create_lead, context(), args(), timeout=timedelta(seconds=20), reply_to="r")
        for _ in range(20)
    ]
    results = await asyncio.gather(*(handle(c) for c in commands))

    assert {r.lead_id for r in results} == {orphan_id}
    assert [r.lead_existed for r in results].count(False) == 1
    assert await db[LEADS].count_documents({"account_id": "acc-1"}) == 1
    assert await db[CASES].count_documents({"account_id": "acc-1"}) == 20
    events = await published_events(settings)
    assert [e["lead_id"] for e in of_kind(events, "lead.created")] == [orphan_id]
    assert len(of_kind(events, "case.created")) == 20
    assert await db[OUTBOX].count_documents({}) == 0


async def test_the_admin_api_is_served_with_health_and_refuses_without_the_token(requester, http) -> None:
    result = await request(requester, context(), args())
    assert (await http.get("/healthz")).json() == {"status": "ok", "service": "leads"}
    assert (await http.get("/readyz")).status_code == 200
    assert (await http.get("/v1/accounts/acc-1/leads")).status_code == 401
    listed = (await http.get("/v1/accounts/acc-1/leads", params={"phone": "(415) 555-0123", "region": "US"}, headers=AUTH)).json()
    assert [lead["id"] for lead in listed["items"]] == [result.lead_id]


SIP_CALL = "a84b4c76e66710@pc33.atlanta.example.com"


def withheld_call(account: str = "acc-1", call_id: str | None = None) -> CallContext:
    return CallContext(
        account_id=account,
        persona_id="per-1",
        call_id=call_id or f"{uuid4().hex}@pc33.atlanta.example.com/x?y=\"z\"",
        caller_id_number=None,
        region="US",
    )


async def test_twenty_concurrent_create_lead_on_one_withheld_call_make_one_lead(settings, requester, db, http) -> None:
    ctx = withheld_call()
    results = await asyncio.gather(*(request(requester, ctx, args(summary=f"try {i}")) for i in range(20)))

    lead_ids = {r.lead_id for r in results}
    assert len(lead_ids) == 1 and len({r.case_id for r in results}) == 20
    assert [r.lead_existed for r in results].count(False) == 1
    assert all(not r.deduplicable and r.phone_number is None for r in results)
    assert await db[LEADS].count_documents({"account_id": "acc-1"}) == 1
    stored = await db[LEADS].find_one({"_id": lead_ids.pop()})
    assert stored["call_id"] == ctx.call_id and stored["phone_e164"] is None
    events = await published_events(settings)
    assert len(of_kind(events, "lead.created")) == 1 and len(of_kind(events, "case.created")) == 20


async def test_twenty_concurrent_handler_runs_on_one_withheld_call_make_one_lead_on_the_store(leads_service, db) -> None:
    leads, cases, outbox = MongoLeads(db), MongoCases(db), MongoOutbox(db)
    handle = partial(
        create_lead, leads=leads, cases=cases, events=LeadEvents(leads_service.runtime.events, outbox, leads, cases, timeout=5)
    )
    ctx = withheld_call(call_id=SIP_CALL)
    commands = [
        Command[CreateLead].build(CommandType.create_lead, ctx, args(), timeout=timedelta(seconds=20), reply_to="r")
        for _ in range(20)
    ]
    results = await asyncio.gather(*(handle(c) for c in commands))

    assert len({r.lead_id for r in results}) == 1
    assert await db[LEADS].count_documents({"account_id": "acc-1"}) == 1
    assert await db[CASES].count_documents({"account_id": "acc-1"}) == 20
    assert await asyncio.gather(*(handle(c) for c in commands)) == results


async def test_twenty_concurrent_withheld_calls_giving_one_callback_number_make_one_lead(requester, db, http) -> None:
    forms = ["+1 415 555 0199", "(415) 555-0199", "4155550199", "+14155550199"]
    results = await asyncio.gather(
        *(request(requester, withheld_call(), args(callback_number=forms[i % 4])) for i in range(20))
    )

    assert len({r.lead_id for r in results}) == 1
    assert all(r.deduplicable and r.phone_number == "+14155550199" for r in results)
    assert await db[LEADS].count_documents({"account_id": "acc-1"}) == 1
    listed = (await http.get("/v1/accounts/acc-1/leads", params={"phone": "+14155550199"}, headers=AUTH)).json()
    [lead] = listed["items"]
    assert lead["phone_source"] == "callback" and lead["case_count"] == 20
    body = (await http.get(f"/v1/accounts/acc-1/leads/{lead['id']}", headers=AUTH)).json()
    assert {case["callback_number"] for case in body["cases"]["items"]} == {"+14155550199"}

    later = await request(requester, context(caller="+14155550199"), args())
    assert later.lead_id == lead["id"] and later.lead_existed


@pytest.mark.parametrize("callback", ["anonymous", "call me tomorrow", "555"])
async def test_a_callback_number_that_is_not_a_number_is_a_clear_error_and_nothing_is_stored(
    settings, requester, db, callback
) -> None:
    with pytest.raises(RequestFailed) as failed:
        await requester.request(CommandType.create_lead, withheld_call(), args(callback_number=callback), timeout=20)
    assert failed.value.error.code is ErrorCode.invalid_argument
    assert "callback_number" in failed.value.error.message and "Ask the caller" in failed.value.error.message
    assert await db[LEADS].count_documents({}) == 0
    assert await db["lead_keys"].count_documents({}) == 0
    assert await db[CASES].count_documents({}) == 0
    assert await published_events(settings) == []
