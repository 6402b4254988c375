"""The read cache on the real Kafka and FerretDB: an admin change reaches the replica that made it at
once, and every other replica when its event arrives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import httpx
import pytest
from pydantic import SecretStr

from switchboard.contracts import CallContext, CommandType
from switchboard.contracts.persona import Availability, CheckUserAvailability
from switchboard.messaging.requester import KafkaRequester, build_command
from switchboard.service import Service

from persona_svc.bootstrap import Wiring, build_service
from persona_svc.cache import ReadCache
from persona_svc.settings import PersonaSettings

pytestmark = pytest.mark.integration

TOKEN = "integration-admin-token"
CONTEXT = CallContext(account_id="acme", persona_id="front", call_id="call-1", caller_id_number="+14155550123")
ANN = CheckUserAvailability(user_id="ann")

Replica = tuple[Service, Wiring, httpx.AsyncClient]


@pytest.fixture
async def replicas(settings, isolation, mongo_client) -> AsyncIterator[Callable[[str], Awaitable[Replica]]]:
    """Starts persona-svc replicas on one database, each with its admin API as an ASGI client."""
    database = f"{isolation}_persona"
    async with AsyncExitStack() as stack:

        async def start(instance_id: str) -> Replica:
            replica_settings = PersonaSettings(
                **settings.model_dump(),
                mongo_database=database,
                http_port=None,
                admin_token=SecretStr(TOKEN),
                instance_id=instance_id,
                cache_ttl_seconds=3600,
            )
            wiring = Wiring()
            service = build_service(replica_settings, wiring=wiring)
            await service.start(serve_http=False)
            stack.push_async_callback(service.stop)
            await service.wait_ready()
            admin = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=service.app),
                base_url="http://persona",
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            await stack.enter_async_context(admin)
            return service, wiring, admin

        try:
            yield start
        finally:
            await stack.aclose()
            await mongo_client.drop_database(database)


@pytest.fixture
async def requester(settings) -> AsyncIterator[KafkaRequester]:
    requester = KafkaRequester(settings)
    await requester.start()
    yield requester
    await requester.stop()


SEED = [
    ("/accounts/acme", {"name": "Acme", "timezone": "Europe/Berlin", "country": "DE"}),
    ("/accounts/acme/personas/front", {"name": "Front desk"}),
    ("/accounts/acme/users/ann", {"name": "Ann", "extension": "201"}),
]


def cache_of(replica: Replica) -> ReadCache:
    service, wiring, _ = replica
    assert service.runtime is not None
    return wiring.adapters(service.runtime).cache


async def seed(writer: Replica, *others: Replica) -> None:
    """Seeds through `writer`, then waits until every replica has read the seed's events: one
    arriving later would empty a cache a test has just filled."""
    expected = [cache_of(writer).generation + 2 * len(SEED)]  # its own forgets, then its events
    expected += [cache_of(other).generation + len(SEED) for other in others]
    for path, body in SEED:
        response = await writer[2].put(f"/admin/v1{path}", json=body)
        assert response.status_code == 201, (path, response.text)

    async def read() -> bool:
        return all(cache_of(r).generation >= n for r, n in zip((writer, *others), expected, strict=True))

    await eventually(read)


async def availability(requester: KafkaRequester) -> Availability:
    answer = await requester.request(CommandType.check_user_availability, CONTEXT, ANN, timeout=10)
    assert isinstance(answer, Availability)
    return answer


async def availability_at(replica: Replica) -> Availability:
    """Asked of this replica's own handler, whichever replica Kafka would give the command to."""
    service, wiring, _ = replica
    assert service.runtime is not None
    handler = wiring.bootstrap(service.runtime)[CommandType.check_user_availability]
    answer = await handler(build_command(CommandType.check_user_availability, CONTEXT, ANN, timeout=10, reply_to="-"))
    assert isinstance(answer, Availability)
    return answer


async def eventually(condition: Callable[[], Awaitable[bool]], timeout: float = 15) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.05)


async def test_an_admin_change_reaches_the_next_command_of_the_same_replica_at_once(
    replicas, requester, mongo_client, isolation
) -> None:
    replica = await replicas("only")
    admin = replica[2]
    await seed(replica)
    assert (await availability(requester)).available

    # The answer comes from the cache: the user's document is gone, the answer is not.
    await mongo_client[f"{isolation}_persona"]["users"].delete_one({"_id": "acme/ann"})
    assert (await availability(requester)).name == "Ann"
    assert len(cache_of(replica)) == 1

    replaced = await admin.put("/admin/v1/accounts/acme/users/ann", json={"name": "Ann Lee", "extension": "202"})
    assert replaced.status_code == 201
    assert (await availability(requester)).name == "Ann Lee"
    assert (await admin.put("/admin/v1/accounts/acme/users/ann/dnd", json={"dnd": True})).status_code == 200
    answer = await availability(requester)
    assert (answer.available, answer.dnd) == (False, True)


async def test_another_replica_forgets_when_the_event_arrives(replicas) -> None:
    first = await replicas("first")
    second = await replicas("second")
    await seed(first, second)
    assert (await availability_at(second)).available
    assert len(cache_of(second)) == 1

    assert (await first[2].put("/admin/v1/accounts/acme/users/ann/dnd", json={"dnd": True})).status_code == 200

    async def on_dnd() -> bool:
        return (await availability_at(second)).dnd

    await eventually(on_dnd)

    response = await first[2].put("/admin/v1/accounts/acme/users/ann", json={"name": "Ann Lee", "extension": "202"})
    assert response.status_code == 200

    async def renamed() -> bool:
        return (await availability_at(second)).name == "Ann Lee"

    await eventually(renamed)
