"""`python -m gateway` / `switchboard-gateway`: the MCP gateway under uvicorn (one worker).

uvicorn handles SIGTERM/SIGINT: it stops accepting, finishes the requests under way, then runs the
app's shutdown (MCP manager, event reader, Kafka requester, database client, in reverse order).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from gateway.app import create_app
from gateway.protocol import edge_protocol
from gateway.settings import GatewaySettings, MissingSecret
from switchboard.service import configure_logging, freeze_startup_objects, run_process
from switchboard.telemetry import setup_telemetry, shutdown_telemetry


class GatewayServer(uvicorn.Server):
    """uvicorn, but a SIGTERM/SIGINT ends `serve()` normally once the graceful shutdown is done.

    uvicorn re-raises the signal after its shutdown, which would end the process before the spans
    of the last requests are exported; like the services, the gateway exits with status 0 instead.
    """

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        freeze_startup_objects()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT)
        for sig in signals:
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)


def uvicorn_config(settings: GatewaySettings, app: FastAPI | None = None) -> uvicorn.Config:
    """One worker serving the app on the configured address; HTTPS when a certificate and key are set.

    The HTTP protocol bounds each request head's size and the time it takes to arrive (`gateway.protocol`).
    """
    return uvicorn.Config(
        app if app is not None else create_app(settings),
        host=settings.host,
        port=settings.port,
        http=edge_protocol(max_header_bytes=settings.max_header_bytes, header_timeout=settings.header_timeout),
        workers=1,
        lifespan="on",
        log_level="warning",
        access_log=False,
        server_header=False,
        ssl_certfile=settings.tls_certfile,
        ssl_keyfile=settings.tls_keyfile,
        timeout_graceful_shutdown=10,
    )


def main() -> None:
    settings = GatewaySettings()
    configure_logging(settings.log_level)
    try:
        config = uvicorn_config(settings)
    except MissingSecret as e:
        print(f"switchboard-gateway: {e}", file=sys.stderr)
        sys.exit(2)
    setup_telemetry("switchboard-gateway", settings)
    try:
        server = GatewayServer(config)
        run_process(server.serve())
        if not server.started:
            sys.exit(1)
    finally:
        shutdown_telemetry()


if __name__ == "__main__":
    main()
