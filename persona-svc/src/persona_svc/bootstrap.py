"""The only place persona-svc's adapters are built and its handlers bound to them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pymongo.errors import ConnectionFailure

from switchboard.contracts import CommandType, Topic, utcnow
from switchboard.messaging import Handler
from switchboard.service import Runtime, Service

from persona_svc import handlers
from persona_svc.api import admin_router
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


def bootstrap(runtime: Runtime, *, resolver: Resolver = system_resolver) -> Mapping[CommandType, Handler]:
    settings = runtime.settings
    assert isinstance(settings, PersonaSettings)
    return command_handlers(mongo_repositories(runtime.db), egress_client(settings, resolver=resolver))


def routers(runtime: Runtime) -> Sequence[APIRouter]:
    repos = mongo_repositories(runtime.db)
    return [admin_router(repos, runtime.events, token=runtime.settings.admin_token, clock=utcnow)]


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


def build_service(settings: PersonaSettings, *, resolver: Resolver = system_resolver) -> Service:
    service = Service(
        NAME,
        settings,
        topic=Topic.persona_commands,
        indexes=[],
        bootstrap=partial(bootstrap, resolver=resolver),
        event_topics=[Topic.persona_events],
        routers=routers,
        on_start=lambda runtime: create_indexes(runtime.db),
    )
    configure_app(service.app)
    return service
