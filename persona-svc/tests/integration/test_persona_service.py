"""persona-svc in-process on the real Kafka and FerretDB: seeded through its admin API, asked through Kafka."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from pydantic import SecretStr

from switchboard.contracts import CallContext, CommandType, Contract, ErrorCode, Topic
from switchboard.contracts.persona import (
    ApiResponse,
    CheckUserAvailability,
    IsOfficeOpen,
    ListTools,
    PersonaUpdated,
    ResolveTransfer,
    RunApiRequest,
    TransferDestination,
    UserDndChanged,
)
from switchboard.messaging import RequestFailed
from switchboard.messaging.events import EventConsumer
from switchboard.messaging.requester import KafkaRequester, build_command

from persona_svc.bootstrap import build_service
from persona_svc.settings import PersonaSettings

pytestmark = pytest.mark.integration

TOKEN = "integration-admin-token"
CONTEXT = CallContext(
    account_id="acme", persona_id="front", call_id="call-1", caller_id_number="+14155550123", region="US"
)
ALWAYS_OPEN = {
    "weekly": {
        day: [{"start": "00:00", "end": "24:00"}]
        for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    }
}


class _Orders(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests: list[dict] = []

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        seen = {"path": self.path, "auth": self.headers.get("Authorization"), "body": json.loads(body)}
        type(self).requests.append(seen)
        answer = json.dumps({"order": seen["body"]["order"], "status": "shipped"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


@pytest.fixture
def orders_api() -> Iterator[tuple[int, list[dict]]]:
    handler = type("Orders", (_Orders,), {"requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], handler.requests
    server.shutdown()
    server.server_close()


@pytest.fixture
async def running(settings, isolation, mongo_client) -> AsyncIterator:
    service_settings = PersonaSettings(
        **settings.model_dump(), mongo_database=f"{isolation}_persona", http_port=None, admin_token=SecretStr(TOKEN)
    )
    service = build_service(service_settings)
    await service.start(serve_http=False)
    requester = KafkaRequester(settings)
    events: list[Contract] = []

    async def record(event: Contract) -> None:
        events.append(event)

    consumer = EventConsumer(
        settings,
        Topic.persona_events,
        [PersonaUpdated, UserDndChanged],
        record,
        group_id=None,
        client_id=f"{isolation}-events",
    )
    await requester.start()
    await consumer.start()
    try:
        await service.wait_ready()
        admin = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=service.app),
            base_url="http://persona",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        async with admin:
            yield service, requester, admin, events
    finally:
        await consumer.stop()
        await requester.stop()
        await service.stop()
        await mongo_client.drop_database(f"{isolation}_persona")


async def seed(admin: httpx.AsyncClient, api_port: int) -> None:
    account = {
        "name": "Acme",
        "timezone": "Europe/Berlin",
        "country": "DE",
        "egress_allowlist": [{"host": "127.0.0.1", "port": api_port}],
    }
    puts = [
        ("/accounts/acme", account),
        ("/accounts/other", {"name": "Other", "timezone": "UTC", "country": "GB"}),
        ("/accounts/other/personas/theirs", {"name": "Theirs"}),
        ("/accounts/acme/personas/front", {"name": "Front desk", "office_hours": ALWAYS_OPEN}),
        ("/accounts/acme/users/ann", {"name": "Ann", "number": "030 1234567"}),
        ("/accounts/acme/queues/sales", {"name": "Sales", "extension": "500"}),
        (
            "/accounts/acme/personas/front/tools/to-ann",
            {
                "kind": "transfer_to_user",
                "name": "transfer_to_ann",
                "description": "Ann handles billing.",
                "user_id": "ann",
                "refuse_when_dnd": True,
            },
        ),
        (
            "/accounts/acme/personas/front/tools/to-sales",
            {
                "kind": "transfer_to_queue",
                "name": "sales_queue",
                "description": "The sales team.",
                "queue_id": "sales",
            },
        ),
        (
            "/accounts/acme/personas/front/tools/orders",
            {
                "kind": "api_request",
                "name": "order_status",
                "description": "Look up an order.",
                "method": "POST",
                "url": f"http://127.0.0.1:{api_port}/orders/{{{{order}}}}",
                "variables": [{"name": "order", "type": "text", "description": "Order number."}],
                "headers": [{"name": "Authorization", "value": "Bearer s3cret", "secret": True}],
                "body": '{"order": "{{order}}", "caller": "{{caller_id_number}}"}',
            },
        ),
    ]
    for path, body in puts:
        response = await admin.put(f"/admin/v1{path}", json=body)
        assert response.status_code == 201, (path, response.text)


async def until(condition, timeout: float = 15) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def test_persona_commands_over_kafka(running, orders_api) -> None:
    service, requester, admin, events = running
    api_port, api_requests = orders_api
    await seed(admin, api_port)

    tools = await requester.request(CommandType.list_tools, CONTEXT, ListTools(), timeout=10)
    assert [t.name for t in tools.custom_tools] == ["order_status", "sales_queue", "transfer_to_ann"]
    assert (tools.account_country, tools.account_timezone) == ("DE", "Europe/Berlin")

    status = await requester.request(CommandType.is_office_open, CONTEXT, IsOfficeOpen(), timeout=10)
    assert (status.text, status.timezone) == ("Office is open 24 hours today", "Europe/Berlin")

    ann = await requester.request(
        CommandType.check_user_availability, CONTEXT, CheckUserAvailability(user_id="ann"), timeout=10
    )
    assert (ann.name, ann.available, ann.dnd) == ("Ann", True, False)
    destination = await requester.request(
        CommandType.resolve_transfer, CONTEXT, ResolveTransfer(tool_name="transfer_to_ann"), timeout=10
    )
    assert destination == TransferDestination(
        destination_number="+49301234567", target_kind="user", target_id="ann", target_name="Ann"
    )

    assert (await admin.put("/admin/v1/accounts/acme/users/ann/dnd", json={"dnd": True})).status_code == 200
    with pytest.raises(RequestFailed) as refused:
        await requester.request(
            CommandType.resolve_transfer, CONTEXT, ResolveTransfer(tool_name="transfer_to_ann"), timeout=10
        )
    assert refused.value.error.code == ErrorCode.refused and refused.value.error.message.startswith(
        "Ann is on Do Not Disturb"
    )
    queue = await requester.request(
        CommandType.resolve_transfer, CONTEXT, ResolveTransfer(tool_name="sales_queue"), timeout=10
    )
    assert (queue.destination_number, queue.target_kind) == ("500", "queue")

    response = await requester.request(
        CommandType.run_api_request,
        CONTEXT,
        RunApiRequest(tool_name="order_status", variables={"order": 'A-1/"x"'}),
        timeout=10,
    )
    assert isinstance(response, ApiResponse) and response.ok
    assert json.loads(response.body) == {"order": 'A-1/"x"', "status": "shipped"}
    assert api_requests == [
        {
            "path": "/orders/A-1%2F%22x%22",
            "auth": "Bearer s3cret",
            "body": {"order": 'A-1/"x"', "caller": "+14155550123"},
        }
    ]

    await until(lambda: any(isinstance(e, UserDndChanged) for e in events) and len(events) >= 8)
    assert [e for e in events if isinstance(e, UserDndChanged)][0].model_dump(
        include={"account_id", "user_id", "dnd"}
    ) == {"account_id": "acme", "user_id": "ann", "dnd": True}
    assert {(e.account_id, e.persona_id) for e in events if isinstance(e, PersonaUpdated)} == {
        ("acme", None),
        ("other", None),
        ("other", "theirs"),
        ("acme", "front"),
    }


async def test_a_persona_of_another_account_and_bad_input_are_refused(running, orders_api) -> None:
    service, requester, admin, _ = running
    api_port, api_requests = orders_api
    await seed(admin, api_port)
    foreign = CONTEXT.model_copy(update={"persona_id": "theirs"})
    with pytest.raises(RequestFailed) as error:
        await requester.request(CommandType.list_tools, foreign, ListTools(), timeout=10)
    assert error.value.error.code == ErrorCode.not_found
    with pytest.raises(RequestFailed) as error:
        await requester.request(
            CommandType.run_api_request,
            CONTEXT,
            RunApiRequest(tool_name="order_status", variables={"colour": "red"}),
            timeout=10,
        )
    assert error.value.error.code == ErrorCode.invalid_argument
    assert api_requests == []


async def test_a_redelivered_api_request_reaches_the_api_once(running, orders_api) -> None:
    service, requester, admin, _ = running
    api_port, api_requests = orders_api
    await seed(admin, api_port)
    command = build_command(
        CommandType.run_api_request,
        CONTEXT,
        RunApiRequest(tool_name="order_status", variables={"order": "7"}),
        timeout=10,
        reply_to=requester.reply_topic,
    )
    first = await requester.send(command)
    second = await requester.send(command)
    assert first.result == second.result and first.error is None
    assert len(api_requests) == 1


async def test_without_the_allowlist_the_local_api_is_refused(running, orders_api) -> None:
    service, requester, admin, _ = running
    api_port, api_requests = orders_api
    await seed(admin, api_port)
    closed = {"name": "Acme", "timezone": "Europe/Berlin", "country": "DE"}
    assert (await admin.put("/admin/v1/accounts/acme", json=closed)).status_code == 200
    with pytest.raises(RequestFailed) as error:
        await requester.request(
            CommandType.run_api_request,
            CONTEXT,
            RunApiRequest(tool_name="order_status", variables={"order": "7"}),
            timeout=10,
        )
    assert error.value.error.code == ErrorCode.refused and "loopback" in error.value.error.message
    assert api_requests == []


async def test_admin_api_on_the_real_database(running) -> None:
    service, _, admin, _ = running
    assert (await admin.get("/admin/v1/accounts", headers={"Authorization": "Bearer nope"})).status_code == 401
    assert (
        await admin.put("/admin/v1/accounts/acme", json={"name": "Acme", "timezone": "UTC", "country": "US"})
    ).status_code == 201
    assert (
        await admin.put("/admin/v1/accounts/acme", json={"name": "Acme 2", "timezone": "UTC", "country": "US"})
    ).status_code == 200
    assert [a["name"] for a in (await admin.get("/admin/v1/accounts")).json()] == ["Acme 2"]
    assert (await admin.put("/admin/v1/accounts/acme/personas/p", json={"name": "P"})).status_code == 201
    tool = {"kind": "transfer_to_queue", "name": "q", "description": "Q.", "queue_id": "sq"}
    assert (
        await admin.put("/admin/v1/accounts/acme/queues/sq", json={"name": "Q", "extension": "44"})
    ).status_code == 201
    assert (await admin.put("/admin/v1/accounts/acme/personas/p/tools/t1", json=tool)).status_code == 201
    assert (await admin.put("/admin/v1/accounts/acme/personas/p/tools/t2", json=tool)).status_code == 409
    assert (await admin.get("/admin/v1/openapi.json")).status_code == 200
    health = await admin.get("/healthz")
    assert health.json() == {"status": "ok", "service": "persona"}


async def test_the_service_restarts_on_its_existing_database(settings, isolation, mongo_client) -> None:
    service_settings = PersonaSettings(**settings.model_dump(), mongo_database=f"{isolation}_restart", http_port=None)
    try:
        for _ in range(2):
            service = build_service(service_settings)
            await service.start(serve_http=False)
            await service.stop()
        cursor = await mongo_client[f"{isolation}_restart"]["tools"].list_indexes()
        names = {index["name"] async for index in cursor}
        assert {"account_persona_tool", "account_persona_name"} <= names
    finally:
        await mongo_client.drop_database(f"{isolation}_restart")
