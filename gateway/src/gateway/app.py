"""The gateway's FastAPI app: the MCP endpoint at /ucp/v2/mcp behind the edge checks, and health."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from opentelemetry.metrics import Observation
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.bootstrap import Runtime, bootstrap
from gateway.capacity import Capacity
from gateway.edge import MCP_PATH, Edge
from gateway.ratelimit import RateLimiter
from gateway.repository import ApiKeyStore
from gateway.server import build_server, session_manager
from gateway.settings import GatewaySettings
from gateway.tools import Tools
from switchboard.messaging.requester import Requester
from switchboard.telemetry import meter, metrics_endpoint

log = logging.getLogger(__name__)


def _version() -> str:
    try:
        return version("switchboard-gateway")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


class GatewayApp(FastAPI):
    """FastAPI for health, readiness and the lifespan; the MCP endpoint goes straight to the edge.

    A tool call skips FastAPI's middleware stack, its router and its HTTP metrics (the gateway's own
    tool metrics and spans cover it): about half a millisecond of CPU per call, which a busy gateway
    would otherwise spend before it can even refuse a request.
    """

    mcp: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.mcp is not None and scope["type"] == "http" and scope["path"] == MCP_PATH:
            await self.mcp(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(
    settings: GatewaySettings,
    *,
    requester: Requester | None = None,
    keys: ApiKeyStore | None = None,
    events: bool = True,
) -> GatewayApp:
    """The app; real adapters are built for whatever is not passed in. Raises MissingSecret without a pepper."""
    runtime = bootstrap(settings, requester=requester, keys=keys, events=events)
    tools = Tools(settings, runtime.requester, runtime.catalogs, runtime.repeats)
    manager = session_manager(build_server(tools, version=_version()), max_body_bytes=settings.max_body_bytes)
    capacity = Capacity(
        total=settings.max_in_flight,
        per_key=settings.max_in_flight_per_key,
        per_account=settings.max_in_flight_per_account,
        unauthenticated=settings.max_unauthenticated,
    )
    meter.create_observable_gauge(
        "switchboard.gateway.in_flight",
        callbacks=[lambda _options: [Observation(capacity.in_flight)]],
        description="MCP requests this gateway replica is serving now.",
    )
    edge = Edge(
        StreamableHTTPASGIApp(manager),
        authenticator=runtime.authenticator,
        limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
        allowed_hosts=settings.allowed_hosts,
        allowed_origins=settings.allowed_origins,
        max_body_bytes=settings.max_body_bytes,
        capacity=capacity,
        body_timeout=settings.body_timeout,
    )

    serving = asyncio.Event()

    async def mcp_ready() -> bool:
        return serving.is_set()

    runtime.checks["mcp"] = mcp_ready

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for component in runtime.components:
                await component.start()
                stack.push_async_callback(component.stop)
            await stack.enter_async_context(manager.run())
            serving.set()
            log.info("gateway %s serving %s", settings.instance_id, MCP_PATH)
            try:
                yield
            finally:
                serving.clear()
        log.info("gateway %s stopped", settings.instance_id)

    app = GatewayApp(
        title="switchboard gateway",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
        # The edge starts each tool call's trace itself; FastAPI's own server span would be a
        # second trace per request, at about the cost of the MCP handling.
        telemetry={"tracing": False},
    )
    app.state.runtime = runtime
    app.mcp = edge
    app.add_route(MCP_PATH, edge, include_in_schema=False)  # what FastAPI routes: "/ucp/v2/mcp/" redirects here

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": "gateway"}

    app.add_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        return await _readiness(runtime)

    return app


async def _readiness(runtime: Runtime) -> JSONResponse:
    names = list(runtime.checks)
    results = await asyncio.gather(*(runtime.checks[name]() for name in names))
    checks = dict(zip(names, results, strict=True))
    ready = all(checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)
