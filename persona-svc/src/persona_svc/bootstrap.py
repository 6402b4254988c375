"""The only place persona-svc's adapters are built and its handlers bound to them.

`Wiring` builds them once per runtime and hands the same read cache to the command handlers (which
read through it), the admin API (which drops an account from it on every change) and the reader of
`persona.events` (which drops what other replicas changed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pymongo.errors import ConnectionFailure

from switchboard.contracts import CommandType, Topic, utcnow
from switchboard.contracts.persona import PERSONA_EVENTS
from switchboard.messaging import Handler
from switchboard.messaging.events import EventConsumer
from switchboard.service import Component, PerRuntime, Runtime, Service

from persona_svc import handlers
from persona_svc.api import admin_router
from persona_svc.cache import Invalidation, ReadCache, cached_repositories
from persona_svc.egress import EgressClient, EgressGuard, Resolver, system_resolver
from persona_svc.handlers import Clock
from persona_svc.repository import Repositories, create_indexes, mongo_repositories
from persona_svc.settings import PersonaSettings

NAME = "persona"
OPENAPI_PATH = "/admin/v1/openapi.json"


def egress_client(settings: PersonaSettings, *, resolver: Resolver = system_resolver) -> EgressClient:
    return EgressClient(
        guard=EgressGuard(resolver),
        max_response_bytes=settings.egress_max_response_bytes,
        max_body_chars=settings.egress_max_body_chars,
        max_redirects=settings.egress_max_redirects,
        user_agent=settings.egress_user_agent,
    )


def command_handlers(repos: Repositories, egress: EgressClient, clock: Clock = utcnow) -> dict[CommandType, Handler]:
    return {
        CommandType.is_office_open: partial(handlers.is_office_open, repos=repos, clock=clock),
        CommandType.check_user_availability: partial(handlers.check_user_availability, repos=repos, clock=clock),
        CommandType.list_tools: partial(handlers.list_tools, repos=repos),
        CommandType.resolve_transfer: partial(handlers.resolve_transfer, repos=repos, clock=clock),
        CommandType.run_api_request: partial(handlers.run_api_request, repos=repos, egress=egress),
    }


@dataclass(frozen=True)
class Adapters:
    settings: PersonaSettings
    repos: Repositories
    cache: ReadCache
    egress: EgressClient


class Wiring(PerRuntime[Adapters]):
    def __init__(self, *, resolver: Resolver = system_resolver) -> None:
        self._resolver = resolver
        super().__init__()

    def _build(self, runtime: Runtime) -> Adapters:
        settings = runtime.settings
        assert isinstance(settings, PersonaSettings)
        return Adapters(
            settings=settings,
            repos=mongo_repositories(runtime.db),
            cache=ReadCache(settings.cache_ttl_seconds, settings.cache_max_entries),
            egress=egress_client(settings, resolver=self._resolver),
        )

    def bootstrap(self, runtime: Runtime) -> Mapping[CommandType, Handler]:
        a = self.adapters(runtime)
        return command_handlers(cached_repositories(a.repos, a.cache), a.egress)

    def routers(self, runtime: Runtime) -> Sequence[APIRouter]:
        a = self.adapters(runtime)
        return [admin_router(a.repos, runtime.events, token=a.settings.admin_token, clock=utcnow, cache=a.cache)]

    def background(self, runtime: Runtime) -> Sequence[Component]:
        a = self.adapters(runtime)
        reader = EventConsumer(
            a.settings,
            Topic.persona_events,
            PERSONA_EVENTS,
            a.cache.on_event,
            group_id=None,
            client_id=f"{NAME}-cache-{a.settings.instance_id}",
        )
        return [Invalidation(reader, a.cache)]


def bootstrap(runtime: Runtime, *, resolver: Resolver = system_resolver) -> Mapping[CommandType, Handler]:
    """The command handlers alone, without the admin API or the reader of `persona.events` (the
    single-process baseline): a change made elsewhere reaches them when their cached reads expire."""
    return Wiring(resolver=resolver).bootstrap(runtime)


async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 without the `input` echo: a rejected body may hold a secret header value."""
    detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in error.errors()]
    return JSONResponse({"detail": detail}, status_code=422)


async def _store_unavailable(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": "The database is not answering; try again in a moment."}, status_code=503)


def configure_app(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ConnectionFailure, _store_unavailable)
    app.add_api_route(OPENAPI_PATH, lambda: JSONResponse(app.openapi()), methods=["GET"], include_in_schema=False)


def build_service(settings: PersonaSettings, *, wiring: Wiring | None = None) -> Service:
    wiring = wiring or Wiring()
    service = Service(
        NAME,
        settings,
        topic=Topic.persona_commands,
        indexes=[],
        bootstrap=wiring.bootstrap,
        event_topics=[Topic.persona_events],
        routers=wiring.routers,
        background=wiring.background,
        on_start=lambda runtime: create_indexes(runtime.db),
    )
    configure_app(service.app)
    return service
