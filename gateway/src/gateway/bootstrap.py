"""The only place the gateway's real adapters are built: Kafka requester, event reader, key and repeat stores.

Tests pass their own requester (e.g. `InMemoryBus`) and key store into the same wiring.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from pymongo import AsyncMongoClient

from gateway.auth import Authenticator
from gateway.catalog import EVENT_MODELS, Catalogs
from gateway.repeats import RETAINED, InMemoryRepeats, MongoRepeats, Repeats, RepeatStore
from gateway.repository import INDEXES, ApiKeyStore, MongoApiKeys
from gateway.settings import GatewaySettings
from switchboard.contracts import Contract, Topic
from switchboard.contracts.keys import KeyRevoked
from switchboard.messaging.events import EventConsumer
from switchboard.messaging.requester import KafkaRequester, Requester
from switchboard.mongo import connect, ensure_indexes
from switchboard.retention import Retention

log = logging.getLogger(__name__)


class Component(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


Check = Callable[[], Awaitable[bool]]


class KeyDatabase:
    """The gateway's MongoDB client and its indexes; ready while the database answers a ping."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.client: AsyncMongoClient = connect(settings.mongo_uri, app_name="switchboard-gateway")
        self.db = self.client[settings.mongo_database]

    async def start(self) -> None:
        await ensure_indexes(self.db, INDEXES)

    async def stop(self) -> None:
        await self.client.close()

    async def ready(self) -> bool:
        try:
            async with asyncio.timeout(1):
                await self.client.admin.command("ping")
            return True
        except Exception:
            return False


class Started:
    """Wraps a component so readiness can tell whether it was started (and not stopped yet)."""

    def __init__(self, component: Component) -> None:
        self._component = component
        self.running = False

    async def start(self) -> None:
        await self._component.start()
        self.running = True

    async def stop(self) -> None:
        self.running = False
        await self._component.stop()

    async def ready(self) -> bool:
        return self.running


@dataclass
class Runtime:
    settings: GatewaySettings
    requester: Requester
    keys: ApiKeyStore
    catalogs: Catalogs
    repeats: Repeats
    authenticator: Authenticator
    components: list[Component] = field(default_factory=list)
    """Started in order, stopped in reverse."""
    checks: dict[str, Check] = field(default_factory=dict)


def bootstrap(
    settings: GatewaySettings,
    *,
    requester: Requester | None = None,
    keys: ApiKeyStore | None = None,
    repeats: RepeatStore | None = None,
    events: bool = True,
) -> Runtime:
    pepper = settings.pepper()  # first: without it nothing is built
    components: list[Component] = []
    checks: dict[str, Check] = {}
    if keys is None:
        database = KeyDatabase(settings)
        components.append(database)
        checks["database"] = database.ready
        keys = MongoApiKeys(database.db)
        repeats = repeats or MongoRepeats(database.db)
        components.append(Retention(database.db, [RETAINED]))
    if requester is None:
        kafka_requester = KafkaRequester(settings, instance_id=settings.instance_id, max_pending=settings.max_pending)
        started = Started(kafka_requester)
        components.append(started)
        checks["requester"] = started.ready
        requester = kafka_requester
    catalogs = Catalogs(requester, ttl=settings.tools_cache_seconds)
    authenticator = Authenticator(keys, pepper, cache_seconds=settings.key_cache_seconds)

    async def on_event(event: Contract) -> None:
        if isinstance(event, KeyRevoked):
            await authenticator.on_event(event)
        else:
            await catalogs.on_event(event)

    if events:
        reader = Started(
            EventConsumer(
                settings,
                [Topic.persona_events, Topic.gateway_events],
                [*EVENT_MODELS, KeyRevoked],
                on_event,
                group_id=None,
                client_id=f"gateway-{settings.instance_id}",
            )
        )
        components.append(reader)
        checks["events"] = reader.ready
    return Runtime(
        settings, requester, keys, catalogs, Repeats(repeats or InMemoryRepeats()), authenticator, components, checks
    )
