"""call-control-svc as it runs: real Kafka, the real database (FerretDB natively), the simulated PBX."""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import quote
from uuid import uuid4

import httpx
import pytest
from aiokafka import TopicPartition
from call_control_svc import api
from call_control_svc.bootstrap import CallControl, create_service
from call_control_svc.settings import CallControlSettings
from pydantic import SecretStr
from switchboard.contracts import CallContext, Command, CommandType, ErrorCode, Topic
from switchboard.contracts.call_control import (
    CallEnded,
    CallStarted,
    CallTransferred,
    HangupCall,
    HangupResult,
    TransferCall,
    TransferResult,
)
from switchboard.contracts.topics import EVENT_TOPIC_PARTITIONS
from switchboard.messaging import CommandProcessor, RequestFailed, kafka
from switchboard.messaging.events import KafkaEventPublisher, decode_event
from switchboard.messaging.idempotency import MongoProcessedCommands
from switchboard.messaging.requester import KafkaRequester, build_command
from switchboard.mongo import connect
from switchboard.settings import SwitchboardSettings

pytestmark = pytest.mark.integration

SECRET = "pbx-webhook-secret"
ADMIN = {"Authorization": "Bearer admin-token"}
ACCOUNT = "acc-cc"

T = TypeVar("T")


class System:
    def __init__(self, base: SwitchboardSettings, settings: CallControlSettings) -> None:
        self.base = base
        self.settings = settings
        self.service = create_service(settings)
        self.requester = KafkaRequester(base)
        self.producer = kafka.producer(base, client_id="call-control-tests")
        self.http: httpx.AsyncClient | None = None

    async def start(self) -> None:
        await self.service.start(serve_http=False)
        await self.requester.start()
        await self.producer.start()
        await self.service.wait_ready()
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.service.app), base_url="http://call-control"
        )

    async def stop(self) -> None:
        if self.http:
            await self.http.aclose()
        await self.producer.stop()
        await self.requester.stop()
        await self.service.stop()

    @property
    def db(self):
        assert self.service.runtime is not None
        return self.service.runtime.db

    async def announce(self, event: CallStarted | CallEnded) -> None:
        await KafkaEventPublisher(self.base, self.producer).publish(Topic.call_events, event, key=event.call_id)

    async def transfer(self, call_id: str, number: str) -> Any:
        return await self.requester.request(
            CommandType.transfer_call, context(call_id), TransferCall(destination_number=number), timeout=15
        )

    async def hangup(self, call_id: str) -> Any:
        return await self.requester.request(CommandType.hangup_call, context(call_id), HangupCall(), timeout=15)

    async def place_call(self, call_id: str) -> httpx.Response:
        assert self.http is not None
        return await self.http.post(
            "/pbx/v1/calls",
            json={
                "account_id": ACCOUNT,
                "call_id": call_id,
                "persona_id": "per-1",
                "caller_number": "+14155550100",
                "called_number": "+14155550111",
            },
            headers=ADMIN,
        )

    async def pbx_actions(self, call_id: str) -> list[dict]:
        assert self.http is not None
        response = await self.http.get(f"/pbx/v1/calls/{quote(call_id, safe='')}", params={"account_id": ACCOUNT}, headers=ADMIN)
        return response.json()["actions"] if response.status_code == 200 else []

    async def call_state(self, call_id: str) -> str | None:
        assert self.http is not None
        response = await self.http.get(f"/admin/v1/accounts/{ACCOUNT}/calls/{quote(call_id, safe='')}", headers=ADMIN)
        return response.json()["state"] if response.status_code == 200 else None

    async def events_of(self, call_id: str, kind: type) -> list:
        """Every event of this kind for this call on the call events topic, read from the beginning."""
        topic = self.base.topic(Topic.call_events)
        consumer = kafka.consumer(self.base, group_id=None, client_id="call-control-tests-reader")
        await consumer.start()
        try:
            partitions = [TopicPartition(topic, p) for p in range(EVENT_TOPIC_PARTITIONS)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            found = []
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for record in records:
                        event = decode_event(record.value, [CallStarted, CallEnded, CallTransferred])
                        if isinstance(event, kind) and event.call_id == call_id:
                            found.append(event)
            return found
        finally:
            await consumer.stop()


async def drop_database(uri: str, name: str) -> None:
    client = connect(uri, app_name="tests")
    await client.drop_database(name)
    await client.close()


def context(call_id: str) -> CallContext:
    return CallContext(account_id=ACCOUNT, persona_id="per-1", call_id=call_id, region="US")


def new_call_id() -> str:
    return f"call-{uuid4().hex[:10]}"


async def eventually(check: Callable[[], Awaitable[T]], *, until: Callable[[T], bool], within: float = 20) -> T:
    """Poll until the condition holds (events cross Kafka asynchronously); fail after `within` seconds."""
    give_up = time.monotonic() + within
    while True:
        value = await check()
        if until(value):
            return value
        assert time.monotonic() < give_up, f"condition not reached; last value {value!r}"
        await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
async def system(infra):
    name = f"t{uuid4().hex[:10]}"
    base = SwitchboardSettings(
        kafka_bootstrap=infra.kafka_bootstrap, mongo_uri=infra.mongo_uri, topic_prefix=f"{name}."
    )
    settings = CallControlSettings(
        **base.model_dump(),
        mongo_database=f"{name}_call_control",
        http_port=None,
        webhook_secret=SecretStr(SECRET),
        admin_token=SecretStr("admin-token"),
        simulated_rejected_destinations=["+12125550199"],
    )
    system = System(base, settings)
    await system.start()
    yield system
    await system.stop()
    await drop_database(infra.mongo_uri, settings.mongo_database)


async def test_a_call_started_by_event_is_transferred_once_and_its_end_reported_by_event(system) -> None:
    call_id = new_call_id()
    await system.announce(
        CallStarted(account_id=ACCOUNT, call_id=call_id, persona_id="per-1", caller_number="+14155550100")
    )
    await eventually(lambda: system.call_state(call_id), until=lambda s: s == "active")

    result = await system.transfer(call_id, "(415) 555-0123")
    assert isinstance(result, TransferResult) and result.accepted and result.destination == "+14155550123"
    assert await system.call_state(call_id) == "transferred"
    assert [(a["action"], a["destination"]) for a in await system.pbx_actions(call_id)] == [
        ("transfer", "+14155550123")
    ]
    [announced] = await eventually(lambda: system.events_of(call_id, CallTransferred), until=lambda e: len(e) == 1)
    assert announced.transfer_id == result.transfer_id

    await system.announce(CallEnded(account_id=ACCOUNT, call_id=call_id, reason="caller_hangup"))
    await eventually(lambda: system.call_state(call_id), until=lambda s: s == "ended")


async def test_a_call_on_the_simulated_pbx_is_hung_up_once_and_cannot_be_transferred_afterwards(system) -> None:
    call_id = new_call_id()
    placed = await system.place_call(call_id)
    assert placed.status_code == 201 and placed.json()["state"] == "up"
    assert (await system.place_call(call_id)).status_code == 409
    assert await system.call_state(call_id) == "active"

    first = await system.hangup(call_id)
    second = await system.hangup(call_id)
    assert first == HangupResult(ended=True, already_ended=False, message="The call has been ended.")
    assert second.ended and second.already_ended

    with pytest.raises(RequestFailed) as refused:
        await system.transfer(call_id, "+14155550123")
    assert refused.value.error.code is ErrorCode.refused and "already ended" in refused.value.error.message
    assert [(a["action"], a["by"]) for a in await system.pbx_actions(call_id)] == [("hangup", "agent")]
    assert len(await eventually(lambda: system.events_of(call_id, CallStarted), until=lambda e: len(e) == 1)) == 1
    [ended] = await eventually(lambda: system.events_of(call_id, CallEnded), until=lambda e: len(e) == 1)
    assert ended.reason == "agent_hangup"
    assert await system.call_state(call_id) == "ended"


async def test_the_caller_hanging_up_on_the_simulated_pbx_ends_the_call(system) -> None:
    call_id = new_call_id()
    await system.place_call(call_id)
    hung_up = await system.http.post(f"/pbx/v1/calls/{call_id}/hangup", params={"account_id": ACCOUNT}, headers=ADMIN)
    assert hung_up.status_code == 200 and hung_up.json()["state"] == "hung_up"
    assert await system.call_state(call_id) == "ended"
    again = await system.http.post(f"/pbx/v1/calls/{call_id}/hangup", params={"account_id": ACCOUNT}, headers=ADMIN)
    assert again.status_code == 200
    assert [(a["action"], a["by"]) for a in await system.pbx_actions(call_id)] == [("hangup", "caller")]
    result = await system.hangup(call_id)
    assert result.already_ended
    unknown = await system.http.post("/pbx/v1/calls/nope/hangup", params={"account_id": ACCOUNT}, headers=ADMIN)
    assert unknown.status_code == 404
    assert (await system.http.post("/pbx/v1/calls", json={"account_id": ACCOUNT, "persona_id": "p"})).status_code == 401


SIP_CALL_IDS = [
    "a84b4c76e66710@pc33.atlanta.example.com",
    'f81d4fae/7dec?11d0=a765&x#y"00a0c91e6bf6"%41<z>',
    str(uuid4()),
    "T" * 256,
]


@pytest.mark.parametrize("call_id", SIP_CALL_IDS)
async def test_real_pbx_call_ids_work_through_the_simulated_pbx_and_its_percent_encoded_urls(system, call_id) -> None:
    call_id = call_id if len(call_id) == 256 else f"{call_id}-{uuid4().hex[:6]}"
    placed = await system.place_call(call_id)
    assert placed.status_code == 201 and placed.json()["call_id"] == call_id
    assert await system.call_state(call_id) == "active"

    result = await system.transfer(call_id, "+1 415 555 0123 ext 22")
    assert isinstance(result, TransferResult) and result.accepted
    assert (result.destination, result.extension) == ("+14155550123", "22")
    assert "extension 22 will be dialled" in result.message
    assert [(a["action"], a["destination"], a["extension"]) for a in await system.pbx_actions(call_id)] == [
        ("transfer", "+14155550123", "22")
    ]
    view = (await system.http.get(f"/admin/v1/accounts/{ACCOUNT}/calls/{quote(call_id, safe='')}", headers=ADMIN)).json()
    assert view["call_id"] == call_id and view["state"] == "transferred"
    assert [(a["destination"], a["extension"]) for a in view["actions"]] == [("+14155550123", "22")]
    [announced] = await eventually(lambda: system.events_of(call_id, CallTransferred), until=lambda e: len(e) == 1)
    assert announced.extension == "22"

    hung_up = await system.http.post(
        f"/pbx/v1/calls/{quote(call_id, safe='')}/hangup", params={"account_id": ACCOUNT}, headers=ADMIN
    )
    assert hung_up.status_code == 200 and hung_up.json()["call_id"] == call_id


async def test_call_ids_that_are_not_printable_or_too_long_are_refused_by_the_simulated_pbx(system) -> None:
    for bad in ["with space", "tab\there", "x" * 257, ""]:
        response = await system.http.post(
            "/pbx/v1/calls", json={"account_id": ACCOUNT, "call_id": bad, "persona_id": "per-1"}, headers=ADMIN
        )
        assert response.status_code == 422, bad
    assert (await system.http.get("/pbx/v1/calls/" + "x" * 257, params={"account_id": ACCOUNT}, headers=ADMIN)).status_code == 422


@pytest.mark.parametrize("number", ["4155550123x12", "tel:+14155550123;ext=12", "+14155550123,,12"])
async def test_each_extension_form_is_dialled_after_the_connection(system, number) -> None:
    call_id = new_call_id()
    await system.place_call(call_id)
    result = await system.transfer(call_id, number)
    assert result.extension == "12"
    assert [(a["destination"], a["extension"]) for a in await system.pbx_actions(call_id)] == [("+14155550123", "12")]


async def test_an_unreadable_extension_is_refused_and_the_pbx_is_never_asked(system) -> None:
    call_id = new_call_id()
    await system.place_call(call_id)
    with pytest.raises(RequestFailed) as refused:
        await system.transfer(call_id, "+14155550123 ext abc")
    assert refused.value.error.code is ErrorCode.invalid_argument and "extension" in refused.value.error.message
    assert await system.pbx_actions(call_id) == []
    assert await system.call_state(call_id) == "active"


async def test_twenty_concurrent_transfers_with_an_extension_on_a_sip_call_id_transfer_once(system) -> None:
    call_id = f"{uuid4().hex}@pc33.atlanta.example.com"
    await system.place_call(call_id)
    outcomes = await asyncio.gather(
        *(system.transfer(call_id, "+14155550123;ext=7") for _ in range(20)), return_exceptions=True
    )
    accepted = [o for o in outcomes if isinstance(o, TransferResult) and o.accepted]
    assert len(accepted) == 1 and accepted[0].extension == "7"
    assert all(isinstance(o, RequestFailed) for o in outcomes if o is not accepted[0])
    assert [(a["action"], a["extension"]) for a in await system.pbx_actions(call_id)] == [("transfer", "7")]


async def test_a_redelivered_transfer_command_transfers_once(system) -> None:
    call_id = new_call_id()
    await system.place_call(call_id)
    command = build_command(
        CommandType.transfer_call,
        context(call_id),
        TransferCall(destination_number="+14155550123"),
        timeout=15,
        reply_to=system.requester.reply_topic,
    )
    first = await system.requester.send(command)
    second = await system.requester.send(command)
    assert first.error is None and second.result == first.result
    assert len(await system.pbx_actions(call_id)) == 1


async def test_twenty_concurrent_transfer_commands_through_kafka_transfer_once(system) -> None:
    call_id = new_call_id()
    await system.place_call(call_id)
    outcomes = await asyncio.gather(
        *(system.transfer(call_id, "+14155550123") for _ in range(20)), return_exceptions=True
    )
    accepted = [o for o in outcomes if isinstance(o, TransferResult)]
    refused = [o for o in outcomes if isinstance(o, RequestFailed)]
    assert len(accepted) == 1 and len(refused) == 19
    assert {r.error.code for r in refused} <= {ErrorCode.refused, ErrorCode.conflict}
    assert len(await system.pbx_actions(call_id)) == 1


async def test_twenty_transfers_racing_on_the_database_transfer_exactly_once(system) -> None:
    """Twenty different commands handled at the same moment (overlapping consumers): the unique claim decides."""
    assert system.service.runtime is not None
    handlers = CallControl().bootstrap(system.service.runtime)  # a second replica's handlers on the same database
    processor = CommandProcessor("call-control", handlers, MongoProcessedCommands(system.db))
    for _ in range(5):
        call_id = new_call_id()
        await system.place_call(call_id)
        commands = [
            Command[TransferCall].build(
                CommandType.transfer_call,
                context(call_id),
                TransferCall(destination_number="+14155550123"),
                timeout=timedelta(seconds=15),
                reply_to="unused",
            )
            for _ in range(20)
        ]
        processed = await asyncio.gather(*(processor.process(c.model_dump_json().encode()) for c in commands))
        successes = [p for p in processed if p.reply and p.reply.error is None]
        assert len(successes) == 1, [p.reply.error for p in processed if p.reply and p.reply.error]
        assert len(await system.pbx_actions(call_id)) == 1
        assert await system.call_state(call_id) == "transferred"


async def test_a_command_past_its_deadline_never_reaches_the_pbx(system) -> None:
    call_id = new_call_id()
    await system.place_call(call_id)
    expired = Command[TransferCall].build(
        CommandType.transfer_call,
        context(call_id),
        TransferCall(destination_number="+14155550123"),
        timeout=timedelta(seconds=-1),
        reply_to=system.requester.reply_topic,
    )
    await system.producer.send_and_wait(
        system.base.topic(Topic.call_control_commands), expired.model_dump_json().encode(), key=call_id.encode()
    )
    # Same key, same partition: the hang-up is handled after the expired transfer was.
    result = await system.hangup(call_id)
    assert result.already_ended is False
    assert [a["action"] for a in await system.pbx_actions(call_id)] == ["hangup"]


async def test_a_failed_transfer_leaves_the_call_active_and_a_new_one_can_follow(system) -> None:
    call_id = new_call_id()
    await system.place_call(call_id)
    with pytest.raises(RequestFailed) as failed:
        await system.transfer(call_id, "+12125550199")
    assert failed.value.error.code is ErrorCode.refused and "still on the line" in failed.value.error.message
    assert await system.call_state(call_id) == "active"
    result = await system.transfer(call_id, "+14155550123")
    assert result.accepted
    view = (await system.http.get(f"/admin/v1/accounts/{ACCOUNT}/calls/{call_id}", headers=ADMIN)).json()
    assert [(a["attempt"], a["status"]) for a in view["actions"]] == [(1, "failed"), (2, "succeeded")]


async def test_transfer_rules_set_through_the_admin_api_apply(system) -> None:
    call_id = new_call_id()
    await system.place_call(call_id)
    with pytest.raises(RequestFailed) as refused:
        await system.transfer(call_id, "+442079460958")
    assert refused.value.error.code is ErrorCode.refused and "international" in refused.value.error.message
    put = await system.http.put(
        f"/admin/v1/accounts/{ACCOUNT}/transfer-rules", json={"allow_international": True}, headers=ADMIN
    )
    assert put.status_code == 200
    try:
        assert (await system.transfer(call_id, "+442079460958")).destination == "+442079460958"
    finally:
        await system.http.put(f"/admin/v1/accounts/{ACCOUNT}/transfer-rules", json={}, headers=ADMIN)


async def test_the_webhook_registers_calls_and_puts_them_on_the_topic(system) -> None:
    call_id = new_call_id()
    body = json.dumps(
        {"event": "call.started", "account_id": ACCOUNT, "call_id": call_id, "persona_id": "per-1"}
    ).encode()
    response = await system.http.post(
        "/webhooks/v1/call-events", content=body, headers={api.SIGNATURE_HEADER: api.sign(SECRET, body)}
    )
    assert response.status_code == 200 and response.json()["recorded"] is True
    assert await system.call_state(call_id) == "active"
    events = await eventually(lambda: system.events_of(call_id, CallStarted), until=lambda e: len(e) == 1)
    assert events[0].call_id == call_id
    # The service reads its own call.started back from the topic: a harmless duplicate.
    assert (await system.transfer(call_id, "2001")).destination_kind == "extension"


async def test_the_ari_adapter_behind_the_service_turns_pbx_errors_into_tool_errors(infra, fake_ari) -> None:
    name = f"t{uuid4().hex[:10]}"
    base = SwitchboardSettings(
        kafka_bootstrap=infra.kafka_bootstrap, mongo_uri=infra.mongo_uri, topic_prefix=f"{name}."
    )
    settings = CallControlSettings(
        **base.model_dump(),
        mongo_database=f"{name}_call_control",
        http_port=None,
        telephony="ari",
        ari_url=fake_ari.base_url,
        ari_username=fake_ari.username,
        ari_password=SecretStr(fake_ari.password),
        webhook_secret=SecretStr(SECRET),
        admin_token=SecretStr("admin-token"),
    )
    ari = System(base, settings)
    await ari.start()
    try:
        call_id = new_call_id()
        fake_ari.add_channel("1712345678.7")
        await ari.announce(CallStarted(account_id=ACCOUNT, call_id=call_id, channel_id="1712345678.7"))
        await eventually(lambda: ari.call_state(call_id), until=lambda s: s == "active")
        fake_ari.fail_next.append((500, {"message": "Allocation failed"}))
        with pytest.raises(RequestFailed) as failed:
            await ari.transfer(call_id, "+14155550123")
        assert failed.value.error.code is ErrorCode.unavailable and "Allocation failed" in failed.value.error.message
        assert await ari.call_state(call_id) == "active"
        done = await ari.transfer(call_id, "+1 415 555 0123 ext 22")
        assert done.accepted and done.extension == "22" and "extension 22" in done.message
        assert [r.path for r in fake_ari.requests] == [
            "/ari/channels/1712345678.7/variable",
            "/ari/channels/1712345678.7/variable",
            "/ari/channels/1712345678.7/continue",
        ]
        assert fake_ari.continued == [("1712345678.7", {"SWITCHBOARD_DTMF": "22"})]
        assert fake_ari.requests[-1].query["extension"] == "+14155550123"
        assert (await ari.http.get("/pbx/v1/calls", params={"account_id": ACCOUNT}, headers=ADMIN)).status_code == 404
    finally:
        await ari.stop()
        await drop_database(infra.mongo_uri, settings.mongo_database)
