"""The process skeleton every service shares, so no service writes its own consumer loop or wiring.

A service gives its name, its command topic, its indexes, and a `bootstrap` that turns the
runtime's adapters (database, event publisher) into handlers; optionally HTTP routers (admin API,
webhooks) and background components (event consumers). `Service` then:

- connects to MongoDB (its own database) and creates its indexes plus the processed-commands ones;
- starts one Kafka producer (replies, dead letters and events share it) and the command consumer;
- serves HTTP with `/healthz` (the process is up) and `/readyz` (consumer assigned, database answers);
- stops in reverse order on SIGTERM/SIGINT, finishing the commands it had started.

Tests start the same `Service` in-process against the real servers; `run_forever` is what a
service's `__main__` calls.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, Protocol, TypeVar

import uvicorn
import uvloop
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from pydantic import Field, SecretStr
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from switchboard.admin import AdminGate, document_admin_responses
from switchboard.contracts import CommandType, Topic, operations_of
from switchboard.messaging import CommandProcessor, Handler, kafka
from switchboard.messaging.consumer import CommandConsumer
from switchboard.messaging.events import EventPublisher, KafkaEventPublisher, ensure_event_topics
from switchboard.messaging.idempotency import COLLECTION as PROCESSED_COMMANDS
from switchboard.messaging.idempotency import INDEXES as PROCESSED_INDEXES
from switchboard.messaging.idempotency import MongoProcessedCommands
from switchboard.mongo import IndexSpec, connect, ensure_indexes
from switchboard.periodic import Periodic  # noqa: F401  (re-exported: the services' relays import it here)
from switchboard.retention import Retained, Retention
from switchboard.settings import SwitchboardSettings
from switchboard.telemetry import metrics_endpoint, setup_telemetry, shutdown_telemetry

log = logging.getLogger(__name__)


class ServiceSettings(SwitchboardSettings):
    """What every service process has besides the shared connection settings."""

    mongo_database: str = Field(description="The service's own database; no other service reads it.")
    http_host: str = "127.0.0.1"
    http_port: int | None = Field(default=None, description="Port of the service's HTTP API; none when unset.")
    max_in_flight: int = Field(default=256, ge=1, description="Commands handled concurrently; past it the runtime takes no new records until one finishes.")
    session_timeout_ms: int = Field(
        default=10_000, ge=1000, description="Kafka consumer session timeout: how soon a dead replica's partitions move."
    )
    instance_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body the HTTP API accepts (413 above, before reading it)."
    )
    retention_seconds: float = Field(
        default=86_400,
        ge=600,
        description=(
            "How long records kept only for idempotency or relaying (processed commands, relay claims, "
            "sent outbox entries) are kept before they are removed."
        ),
    )
    retention_sweep_seconds: float = Field(
        default=600, gt=0, description="How often a store without TTL indexes (FerretDB) is swept of expired records."
    )
    admin_token: SecretStr | None = Field(
        default=None,
        validation_alias="SWITCHBOARD_ADMIN_TOKEN",
        description="Bearer token of the admin APIs (the Portal's back end); without one they refuse everything.",
    )


class Component(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


@dataclass(frozen=True)
class Runtime:
    """The real adapters a bootstrap wires into handlers. Built here, and only here."""

    settings: ServiceSettings
    db: AsyncDatabase
    events: EventPublisher
    producer: AIOKafkaProducer


Bootstrap = Callable[[Runtime], Mapping[CommandType, Handler]]

A = TypeVar("A")


class PerRuntime(Generic[A]):
    """Builds a service's adapters once per runtime, so that its command handlers, admin routes and
    background components share them (a cache, an HTTP client, a phone system connection)."""

    def __init__(self) -> None:
        self._built: tuple[Runtime, A] | None = None

    def adapters(self, runtime: Runtime) -> A:
        if self._built is None or self._built[0] is not runtime:
            self._built = (runtime, self._build(runtime))
        return self._built[1]

    def _build(self, runtime: Runtime) -> A:
        raise NotImplementedError


class Service:
    def __init__(
        self,
        name: str,
        settings: ServiceSettings,
        *,
        topic: Topic,
        indexes: Sequence[IndexSpec],
        bootstrap: Bootstrap,
        event_topics: Sequence[Topic] = (),
        routers: Callable[[Runtime], Sequence[APIRouter]] | None = None,
        background: Callable[[Runtime], Sequence[Component]] | None = None,
        on_start: Callable[[Runtime], Awaitable[None]] | None = None,
        retained: Sequence[tuple[str, str]] = (),
    ) -> None:
        """`retained`: (collection, datetime field) of the service's own records that are kept only
        for idempotency or relaying, removed `retention_seconds` after that time (processed commands
        always are)."""
        self.name = name
        self.settings = settings
        self._topic = topic
        self._indexes = list(indexes)
        self._bootstrap = bootstrap
        self._event_topics = list(event_topics)
        self._routers = routers
        self._background = background
        self._on_start = on_start
        self._retained = [(PROCESSED_COMMANDS, "claimed_at"), *retained]
        self._client: AsyncMongoClient | None = None
        self._producer: AIOKafkaProducer | None = None
        self._consumer: CommandConsumer | None = None
        self._components: list[Component] = []
        self._http: uvicorn.Server | None = None
        self._http_task: asyncio.Task[None] | None = None
        self.runtime: Runtime | None = None
        self.app = FastAPI(title=f"switchboard {name}", docs_url=None, redoc_url=None)
        self.app.add_middleware(AdminGate, token=settings.admin_token, max_body_bytes=settings.max_body_bytes)
        document_admin_responses(self.app)
        self.app.add_api_route("/healthz", self._healthz, methods=["GET"], include_in_schema=False)
        self.app.add_api_route("/readyz", self._readyz, methods=["GET"], include_in_schema=False)
        self.app.add_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)

    async def start(self, *, serve_http: bool = True) -> None:
        settings = self.settings
        self._client = connect(settings.mongo_uri, app_name=f"switchboard-{self.name}")
        db = self._client[settings.mongo_database]
        await ensure_indexes(db, [*PROCESSED_INDEXES, *self._indexes])
        if self._event_topics:
            await ensure_event_topics(settings, *self._event_topics)
        self._producer = kafka.producer(settings, client_id=f"{self.name}-{settings.instance_id}")
        await self._producer.start()
        self.runtime = Runtime(settings, db, KafkaEventPublisher(settings, self._producer, source=self.name), self._producer)

        handlers = self._bootstrap(self.runtime)
        expected = set(operations_of(self._topic))
        if set(handlers) != expected:
            raise RuntimeError(
                f"{self.name} must handle exactly {sorted(expected)}; it handles {sorted(handlers)}"
            )
        if self._on_start:
            await self._on_start(self.runtime)
        processor = CommandProcessor(self.name, handlers, MongoProcessedCommands(db))
        self._consumer = CommandConsumer(
            settings,
            self._topic,
            processor,
            max_in_flight=settings.max_in_flight,
            session_timeout_ms=settings.session_timeout_ms,
            producer=self._producer,
        )
        await self._consumer.start()
        keep = timedelta(seconds=settings.retention_seconds)
        retention = Retention(
            db, [Retained(c, f, keep) for c, f in self._retained], interval=settings.retention_sweep_seconds
        )
        self._components = [retention, *(self._background(self.runtime) if self._background else ())]
        for component in self._components:
            await component.start()
        for router in self._routers(self.runtime) if self._routers else ():
            self.app.include_router(router)
        if serve_http and settings.http_port is not None:
            config = uvicorn.Config(
                self.app,
                host=settings.http_host,
                port=settings.http_port,
                log_level="warning",
                lifespan="off",
                server_header=False,  # as the gateway: no server software named to callers
            )
            self._http = uvicorn.Server(config)
            self._http_task = asyncio.create_task(self._http.serve(), name=f"{self.name}-http")
        log.info("%s started (instance %s)", self.name, settings.instance_id)

    async def stop(self) -> None:
        if self._http and self._http_task:
            self._http.should_exit = True
            await asyncio.gather(self._http_task, return_exceptions=True)
        for component in reversed(self._components):
            await component.stop()
        if self._consumer:
            await self._consumer.stop()
        if self._producer:
            await self._producer.stop()
        if self._client:
            await self._client.close()
        log.info("%s stopped", self.name)

    async def wait_ready(self, timeout: float = 30) -> None:
        assert self._consumer is not None
        async with asyncio.timeout(timeout):
            await self._consumer.ready.wait()

    async def _healthz(self) -> dict[str, str]:
        return {"status": "ok", "service": self.name}

    async def _readyz(self) -> JSONResponse:
        checks = {"consumer": bool(self._consumer and self._consumer.ready.is_set())}
        try:
            assert self._client is not None
            async with asyncio.timeout(1):
                await self._client.admin.command("ping")
            checks["database"] = True
        except Exception:
            checks["database"] = False
        ready = all(checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    async def run_forever(self) -> None:
        """Start, serve until SIGTERM/SIGINT, then stop cleanly."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        freeze_startup_objects()
        try:
            await stop.wait()
        finally:
            await self.stop()


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    # httpx logs every request's full URL at INFO; an API Request tool's URL may carry the caller's
    # number or a customer's token, which must never reach a log.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


T = TypeVar("T")


def freeze_startup_objects() -> None:
    """Once a process has started: collect, then move everything alive to the permanent generation.

    What a process builds at start (modules, models, clients, the app) lives as long as the process.
    Left in the oldest generation, every full collection walks all of it: 60 to 300 ms with the
    process stopped, two or three times per process in a 30-second run at 20 calls/s (measured with
    gc.callbacks); frozen, a full collection took 1 to 3 ms.
    """
    gc.collect()
    gc.freeze()


def run_process(main: Coroutine[Any, Any, T]) -> T:
    """Run a server process's main coroutine on uvloop, the libuv event loop: the same asyncio API,
    with the loop's own work (scheduling, sockets) in C, which a process whose tool calls are mostly
    Kafka and database round trips spends much of its CPU on."""
    gc.freeze()  # what the imports built; freeze_startup_objects() adds what starting built
    return uvloop.run(main)


def main(service: Service) -> None:
    """What a service's `__main__.main` calls."""
    configure_logging(service.settings.log_level)
    setup_telemetry(f"switchboard-{service.name}", service.settings)
    try:
        run_process(service.run_forever())
    finally:
        shutdown_telemetry()
