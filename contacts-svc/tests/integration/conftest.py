"""One contacts-svc per test module, in-process, on the real Kafka and database, with its Google and
Microsoft base URLs pointed at the local fake servers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from uuid import uuid4

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from contacts_svc.bootstrap import create_service
from contacts_svc.settings import ContactsSettings
from switchboard.contracts import Topic
from switchboard.messaging.requester import KafkaRequester
from switchboard.mongo import connect
from switchboard.service import Service

ADMIN_TOKEN = "admin-token-for-tests"


@pytest.fixture(scope="module")
def contacts_settings(infra, google_server, microsoft_server) -> ContactsSettings:
    isolation = f"t{uuid4().hex[:10]}"
    return ContactsSettings(
        kafka_bootstrap=infra.kafka_bootstrap,
        mongo_uri=infra.mongo_uri,
        topic_prefix=f"{isolation}.",
        mongo_database=f"{isolation}_contacts",
        http_port=None,
        admin_token=ADMIN_TOKEN,
        source_timeout_seconds=1.0,
        google_api_base=google_server.base_url,
        google_token_url=f"{google_server.base_url}/token",
        google_client_id="client-id",
        google_client_secret="client-secret",
        microsoft_api_base=microsoft_server.base_url,
        microsoft_token_url=f"{microsoft_server.base_url}/common/oauth2/v2.0/token",
        microsoft_client_id="client-id",
        microsoft_client_secret="client-secret",
        microsoft_page_size=2,
    )


@pytest.fixture(scope="module")
async def service(contacts_settings: ContactsSettings) -> AsyncIterator[Service]:
    service = create_service(contacts_settings)
    await service.start(serve_http=False)
    await service.wait_ready()
    yield service
    await service.stop()
    client = connect(contacts_settings.mongo_uri, app_name="tests")
    await client.drop_database(contacts_settings.mongo_database)
    await client.close()


@pytest.fixture(scope="module")
async def requester(contacts_settings: ContactsSettings, service: Service) -> AsyncIterator[KafkaRequester]:
    requester = KafkaRequester(contacts_settings)
    await requester.start()
    yield requester
    await requester.stop()


@pytest.fixture(scope="module")
async def admin(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.app),
        base_url="http://contacts",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    ) as client:
        yield client


@pytest.fixture(scope="module")
def database(contacts_settings: ContactsSettings, service: Service):
    assert service.runtime is not None
    return service.runtime.db


@pytest.fixture
def account() -> str:
    """A fresh account per test: tests share one service, never an account."""
    return f"acc-{uuid4().hex[:8]}"


async def contact_events(settings: ContactsSettings, account_id: str, count: int) -> list[dict]:
    """The first `count` events of the account on contact.events, read from the beginning."""
    consumer = AIOKafkaConsumer(
        settings.topic(Topic.contact_events),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    events: list[dict] = []
    try:
        async with asyncio.timeout(20):
            while len(events) < count:
                batches = await consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    for record in records:
                        event = json.loads(record.value)
                        if event["account_id"] == account_id:
                            events.append(event)
    finally:
        await consumer.stop()
    return events


@pytest.fixture
def read_events(contacts_settings: ContactsSettings):
    async def read(account_id: str, count: int) -> list[dict]:
        return await contact_events(contacts_settings, account_id, count)

    return read
