"""pytest fixtures for tests against the real Kafka and database (loaded by the root conftest)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from uuid import uuid4

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from switchboard.mongo import connect
from switchboard.settings import SwitchboardSettings
from switchboard.testing.infra import Infra, start_infra


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    servers, containers = start_infra()
    yield servers
    for container in containers:
        container.stop()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def spans() -> InMemorySpanExporter:
    """Every span finished in this test process, on the one SDK tracer provider installed here.

    A process has one global tracer provider; installing it in one place keeps test modules from
    replacing each other's (a span recorded by a provider nobody reads is silently lost).
    """
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
def isolation() -> str:
    """A fresh name for this test: its topic prefix and database names start with it."""
    return f"t{uuid4().hex[:10]}"


@pytest.fixture
def settings(infra: Infra, isolation: str) -> SwitchboardSettings:
    return SwitchboardSettings(
        kafka_bootstrap=infra.kafka_bootstrap,
        mongo_uri=infra.mongo_uri,
        topic_prefix=f"{isolation}.",
    )


@pytest.fixture
async def mongo_client(infra: Infra) -> AsyncIterator:
    client = connect(infra.mongo_uri, app_name="tests")
    yield client
    await client.close()


@pytest.fixture
async def database(mongo_client, isolation: str) -> AsyncIterator:
    db = mongo_client[f"{isolation}_db"]
    yield db
    await mongo_client.drop_database(db.name)
