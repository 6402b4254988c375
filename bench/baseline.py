"""The single-process baseline: the same tools, the same handlers, the same database, no Kafka.

`python -m bench.baseline` serves the gateway's own app (edge, API keys, per-persona catalog,
argument validation, the SDK's low-level `Server`, stateless, JSON responses) with one difference:
its requester calls the services' handlers in this process instead of sending commands over Kafka.
The handlers are built by each service's own bootstrap on the services' own databases, so the work
per tool call (queries, inserts, the simulated PBX) is the same; what the baseline leaves out is
exactly what distribution adds: two Kafka hops per call, the processed-commands record that makes
at-least-once delivery safe, event publishing, and the process boundaries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from call_control_svc.bootstrap import CallControl
from call_control_svc.settings import CallControlSettings
from contacts_svc.bootstrap import Wiring
from contacts_svc.settings import ContactsSettings
from gateway.__main__ import GatewayServer, uvicorn_config
from gateway.app import create_app
from gateway.settings import GatewaySettings
from leads_svc import bootstrap as leads
from leads_svc.settings import LeadsSettings
from persona_svc import bootstrap as persona
from persona_svc.settings import PersonaSettings
from switchboard.contracts import CallContext, CommandType, Contract, ErrorInfo, Topic
from switchboard.messaging import DomainError, Handler, RequestFailed, RequestTimeout
from switchboard.messaging.requester import build_command
from switchboard.mongo import connect
from switchboard.service import Runtime, ServiceSettings, configure_logging, run_process
from switchboard.telemetry import setup_telemetry, shutdown_telemetry

REPLY_TO = "in-process"


class NoEvents:
    """Events go nowhere: in one process nobody else needs to hear of them."""

    async def publish(self, topic: Topic, event: Contract, *, key: str) -> None:
        return None


class DirectRequester:
    """The gateway's requester interface, answered by calling the handler in this process."""

    def __init__(self, handlers: Mapping[CommandType, Handler]) -> None:
        self._handlers = dict(handlers)

    async def request(self, type: CommandType, context: CallContext, args: Contract, *, timeout: float) -> Contract:
        command = build_command(type, context, args, timeout=timeout, reply_to=REPLY_TO)
        try:
            async with asyncio.timeout(timeout):
                return await self._handlers[type](command)
        except DomainError as e:
            raise RequestFailed(ErrorInfo(code=e.code, message=e.message)) from None
        except TimeoutError:
            raise RequestTimeout(f"{type} did not finish within its deadline") from None


def _runtime(settings: ServiceSettings, client: Any) -> Runtime:
    return Runtime(settings, client[settings.mongo_database], NoEvents(), producer=None)  # type: ignore[arg-type]


def service_handlers(client: Any) -> dict[CommandType, Handler]:
    """Every service's command handlers, built by the service's own bootstrap."""
    handlers: dict[CommandType, Handler] = {}
    handlers.update(persona.bootstrap(_runtime(PersonaSettings(), client)))
    handlers.update(Wiring().bootstrap(_runtime(ContactsSettings(), client)))
    handlers.update(leads.bootstrap(_runtime(LeadsSettings(), client)))
    handlers.update(CallControl().bootstrap(_runtime(CallControlSettings(), client)))
    return handlers


async def serve(settings: GatewaySettings) -> None:
    """Serve until SIGTERM; the services' indexes exist already (the system under test made them)."""
    client = connect(settings.mongo_uri, app_name="switchboard-bench-baseline")
    try:
        app = create_app(settings, requester=DirectRequester(service_handlers(client)), events=False)
        await GatewayServer(uvicorn_config(settings, app)).serve()
    finally:
        await client.close()


def main() -> None:
    settings = GatewaySettings()
    configure_logging(settings.log_level)
    setup_telemetry("switchboard-bench-baseline", settings)
    try:
        run_process(serve(settings))
    finally:
        shutdown_telemetry()


if __name__ == "__main__":
    main()
