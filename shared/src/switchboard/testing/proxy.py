"""A TCP proxy on 127.0.0.1 that fault tests put between a process and one of its dependencies.

Pass-through until told otherwise: `delay(seconds)` holds every chunk that long in each direction
(latency, not a bandwidth cap: chunks keep their order and flow as fast as they arrive), `cut()`
closes every open connection and closes new ones at once, `heal()` ends both.

    proxy = await TcpProxy.start("127.0.0.1", 27117)
    uri = f"mongodb://{proxy.address}"      # the process under test connects here
    proxy.delay(0.3); ...; proxy.cut(); ...; proxy.heal()
    await proxy.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

CHUNK = 64 * 1024


@dataclass(eq=False)
class _Connection:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    pumps: list[asyncio.Task[None]] = field(default_factory=list)

    def close(self) -> None:
        for pump in self.pumps:
            pump.cancel()
        for writer in (self.client, self.upstream):
            with contextlib.suppress(Exception):
                writer.transport.abort()


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._delay = 0.0
        self._cut = False
        self.accepted = 0
        self.refused = 0
        self.severed = 0
        """Open connections closed by `cut()`."""

    @classmethod
    async def start(cls, target_host: str, target_port: int, *, port: int = 0) -> TcpProxy:
        proxy = cls(target_host, target_port)
        proxy._server = await asyncio.start_server(proxy._serve, "127.0.0.1", port)
        return proxy

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    def delay(self, seconds: float) -> None:
        self._delay = seconds

    def cut(self) -> None:
        """Drop every connection now, and every new one as soon as it is accepted, until `heal()`."""
        self._cut = True
        self.severed += len(self._connections)
        for connection in list(self._connections):
            connection.close()
        self._connections.clear()

    def heal(self) -> None:
        self._cut = False
        self._delay = 0.0

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.cut()
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            self.refused += 1
            writer.transport.abort()
            return
        self.accepted += 1
        connection = _Connection(writer, upstream_writer)
        connection.pumps = [
            asyncio.create_task(self._pump(reader, upstream_writer, connection)),
            asyncio.create_task(self._pump(upstream_reader, writer, connection)),
        ]
        self._connections.add(connection)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, connection: _Connection) -> None:
        """Forward one direction, each chunk released `delay` seconds after it arrived, in order."""
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        releaser = asyncio.create_task(self._release(queue, sink))
        try:
            while chunk := await source.read(CHUNK):
                queue.put_nowait((time.monotonic() + self._delay, chunk))
            queue.put_nowait(None)
            await releaser
        except (ConnectionError, OSError):
            pass
        finally:
            releaser.cancel()
            self._connections.discard(connection)
            connection.close()

    @staticmethod
    async def _release(queue: asyncio.Queue[tuple[float, bytes] | None], sink: asyncio.StreamWriter) -> None:
        while (item := await queue.get()) is not None:
            due, chunk = item
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            sink.write(chunk)
            await sink.drain()
