"""The read cache of the command handlers: hits, expiry, bounds, and invalidation by changes and events."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from switchboard.contracts import CallContext, CommandType, Contract, Topic
from switchboard.contracts.persona import (
    PERSONA_EVENTS,
    CheckUserAvailability,
    IsOfficeOpen,
    PersonaUpdated,
    QueueUpdated,
    UserDndChanged,
    UserUpdated,
)
from switchboard.messaging import CommandProcessor, RequestFailed
from switchboard.messaging.events import RecordingEventPublisher
from switchboard.messaging.idempotency import InMemoryProcessedCommands
from switchboard.messaging.memory import InMemoryBus

from persona_svc.api import admin_router
from persona_svc.bootstrap import command_handlers
from persona_svc.cache import Invalidation, ReadCache, cached_repositories
from persona_svc.egress import EgressClient
from persona_svc.model import Account, OfficeHours, Persona, User
from persona_svc.repository import memory_repositories

NOW = datetime(2026, 3, 9, 14, 30, tzinfo=UTC)
TOKEN = "admin-token-for-tests"


class Loads:
    """A loader that counts its calls and answers what it is told."""

    def __init__(self, value: object | None = "value") -> None:
        self.value = value
        self.calls = 0

    async def __call__(self) -> object | None:
        self.calls += 1
        return self.value


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_value_is_loaded_once_then_served_from_the_cache() -> None:
    cache, load = ReadCache(30, 10), Loads()
    assert await cache.get(("acme", "users", "ann"), load) == "value"
    assert await cache.get(("acme", "users", "ann"), load) == "value"
    assert load.calls == 1
    assert await cache.get(("acme", "users", "bob"), load) == "value"
    assert (load.calls, len(cache)) == (2, 2)


async def test_an_entry_is_used_for_ttl_seconds_at_most() -> None:
    clock = FakeClock()
    cache, load = ReadCache(30, 10, clock=clock), Loads()
    await cache.get(("acme", "users", "ann"), load)
    clock.now += 29.9
    await cache.get(("acme", "users", "ann"), load)
    assert load.calls == 1
    clock.now += 0.1
    await cache.get(("acme", "users", "ann"), load)
    assert load.calls == 2


async def test_a_missing_document_is_read_again_every_time() -> None:
    cache, load = ReadCache(30, 10), Loads(None)
    assert await cache.get(("acme", "users", "new"), load) is None
    load.value = "created"
    assert await cache.get(("acme", "users", "new"), load) == "created"
    assert (load.calls, len(cache)) == (2, 1)


async def test_ttl_zero_turns_the_cache_off() -> None:
    cache, load = ReadCache(0, 10), Loads()
    for _ in range(3):
        await cache.get(("acme", "users", "ann"), load)
    assert (load.calls, len(cache), cache.enabled) == (3, 0, False)


async def test_forget_account_drops_that_account_only() -> None:
    cache, acme, other = ReadCache(30, 10), Loads("acme"), Loads("other")
    await cache.get(("acme", "users", "ann"), acme)
    await cache.get(("acme", "accounts"), acme)
    await cache.get(("other", "users", "ann"), other)
    generation = cache.generation
    cache.forget_account("acme")
    assert cache.generation == generation + 1 and len(cache) == 1
    await cache.get(("acme", "users", "ann"), acme)
    await cache.get(("other", "users", "ann"), other)
    assert (acme.calls, other.calls) == (3, 1)


async def test_a_load_that_started_before_an_invalidation_is_not_stored() -> None:
    cache, started, release = ReadCache(30, 10), asyncio.Event(), asyncio.Event()

    async def slow_old_value() -> str:
        started.set()
        await release.wait()
        return "old"

    reading = asyncio.create_task(cache.get(("acme", "users", "ann"), slow_old_value))
    await started.wait()
    cache.forget_account("acme")
    release.set()
    assert await reading == "old"
    assert len(cache) == 0
    assert await cache.get(("acme", "users", "ann"), Loads("new")) == "new"


async def test_the_least_recently_used_entry_goes_first() -> None:
    cache, load = ReadCache(30, 2), Loads()
    await cache.get(("acme", "users", "a"), load)
    await cache.get(("acme", "users", "b"), load)
    await cache.get(("acme", "users", "a"), load)
    await cache.get(("acme", "users", "c"), load)
    assert (load.calls, len(cache)) == (3, 2)
    await cache.get(("acme", "users", "a"), load)
    assert load.calls == 3
    await cache.get(("acme", "users", "b"), load)
    assert load.calls == 4


@pytest.mark.parametrize(
    "event",
    [
        PersonaUpdated(account_id="acme", persona_id="front", updated_at=NOW),
        PersonaUpdated(account_id="acme", updated_at=NOW),
        UserDndChanged(account_id="acme", user_id="ann", dnd=True, changed_at=NOW),
        UserUpdated(account_id="acme", user_id="ann", updated_at=NOW),
        QueueUpdated(account_id="acme", queue_id="sales", updated_at=NOW),
    ],
    ids=lambda e: f"{e.event}",
)
async def test_every_persona_event_forgets_its_account(event: Contract) -> None:
    cache, load = ReadCache(30, 10), Loads()
    await cache.get(("acme", "personas", "front"), load)
    await cache.get(("other", "personas", "front"), load)
    await cache.on_event(event)
    assert len(cache) == 1
    await cache.get(("acme", "personas", "front"), load)
    assert load.calls == 3


def test_the_cache_reads_every_event_persona_svc_publishes() -> None:
    assert {m.model_fields["event"].default for m in PERSONA_EVENTS} == {
        "persona.updated",
        "user.dnd_changed",
        "user.updated",
        "queue.updated",
    }


class Reader:
    def __init__(self, started: asyncio.Event) -> None:
        self.started = started
        self.stopped = False

    async def start(self) -> None:
        self.started.set()
        await asyncio.sleep(0)

    async def stop(self) -> None:
        self.stopped = True


async def test_what_was_read_before_the_event_reader_was_positioned_is_dropped() -> None:
    cache, started = ReadCache(30, 10), asyncio.Event()
    release = asyncio.Event()

    async def read_during_start() -> str:
        await started.wait()
        await release.wait()
        return "maybe stale"

    await cache.get(("acme", "users", "ann"), Loads("before"))
    reading = asyncio.create_task(cache.get(("acme", "users", "bob"), read_during_start))
    reader = Reader(started)
    invalidation = Invalidation(reader, cache)
    await invalidation.start()
    release.set()
    await reading
    assert len(cache) == 0
    await invalidation.stop()
    assert reader.stopped


async def test_cached_tool_sets_are_copies() -> None:
    repos = memory_repositories()
    cached = cached_repositories(repos, ReadCache(30, 10))
    tools = await cached.tools.of_persona("acme", "front")
    tools.append("not a tool")  # type: ignore[arg-type]
    assert await cached.tools.of_persona("acme", "front") == []


# The admin API and the command handlers of one replica, sharing its cache.

CONTEXT = CallContext(account_id="acme", persona_id="front", call_id="call-1", caller_id_number="+14155550123")


@pytest.fixture
async def replica():
    repos = memory_repositories()
    await repos.accounts.put(Account(account_id="acme", name="Acme", timezone="UTC", country="US", updated_at=NOW))
    await repos.personas.put(
        Persona(account_id="acme", persona_id="front", name="Front", office_hours=OfficeHours(), updated_at=NOW)
    )
    await repos.users.put(User(account_id="acme", user_id="ann", name="Ann", extension="201", updated_at=NOW))
    cache = ReadCache(30, 100)
    bus = InMemoryBus()
    handlers = command_handlers(cached_repositories(repos, cache), EgressClient(), lambda: NOW)
    bus.register(Topic.persona_commands, CommandProcessor("persona", handlers, InMemoryProcessedCommands()))
    app = FastAPI()
    app.include_router(
        admin_router(repos, RecordingEventPublisher(), token=SecretStr(TOKEN), clock=lambda: NOW, cache=cache)
    )
    admin = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://persona",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    async with admin:
        yield bus, admin, repos, cache


async def availability(bus: InMemoryBus, user_id: str = "ann"):
    return await bus.request(
        CommandType.check_user_availability, CONTEXT, CheckUserAvailability(user_id=user_id), timeout=5
    )


async def test_what_the_handlers_read_is_cached(replica) -> None:
    bus, _, repos, cache = replica
    await availability(bus)
    await bus.request(CommandType.is_office_open, CONTEXT, IsOfficeOpen(), timeout=5)
    assert len(cache) == 3
    await repos.users.delete(account_id="acme", user_id="ann")
    assert (await availability(bus)).name == "Ann"


async def test_an_admin_change_reaches_the_next_command_of_the_same_replica(replica) -> None:
    bus, admin, _, _ = replica
    assert (await availability(bus)).available
    assert (await admin.put("/admin/v1/accounts/acme/users/ann/dnd", json={"dnd": True})).status_code == 200
    assert (await availability(bus)).dnd
    response = await admin.put("/admin/v1/accounts/acme/users/ann", json={"name": "Ann Lee", "extension": "202"})
    assert response.status_code == 200
    assert (await availability(bus)).name == "Ann Lee"


async def test_a_new_user_is_found_at_once(replica) -> None:
    bus, admin, repos, _ = replica
    with pytest.raises(RequestFailed, match="no user 'bob'"):
        await availability(bus, "bob")
    await repos.users.put(User(account_id="acme", user_id="bob", name="Bob", extension="203", updated_at=NOW))
    assert (await availability(bus, "bob")).name == "Bob"
