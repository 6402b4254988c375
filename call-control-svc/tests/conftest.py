"""A local HTTP server that answers like Asterisk's ARI Channels API, for the ARI adapter's tests."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ARI_USER = "switchboard"
ARI_PASSWORD = "s3cret"


@dataclass
class AriRequest:
    method: str
    path: str
    query: dict[str, str]


@dataclass
class FakeAri:
    """Channels live in `channels` (id -> technology, e.g. "PJSIP"); `in_stasis` holds those ARI controls.

    `fail_next` forces the next answers: (status, JSON body) pairs, as Asterisk sends them.
    """

    base_url: str = ""
    username: str = ARI_USER
    password: str = ARI_PASSWORD
    channels: dict[str, str] = field(default_factory=dict)
    in_stasis: set[str] = field(default_factory=set)
    requests: list[AriRequest] = field(default_factory=list)
    fail_next: list[tuple[int, dict]] = field(default_factory=list)
    variables: dict[str, dict[str, str]] = field(default_factory=dict)
    continued: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    """Each channel that left for the dial plan, with its variables at that moment."""

    def add_channel(self, channel_id: str, technology: str = "PJSIP", *, in_stasis: bool = True) -> None:
        self.channels[channel_id] = technology
        if in_stasis:
            self.in_stasis.add(channel_id)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/ari/channels/{channel_id}/continue", self._continue, methods=["POST"]),
                Route("/ari/channels/{channel_id}/variable", self._variable, methods=["POST"]),
                Route("/ari/channels/{channel_id}/redirect", self._redirect, methods=["POST"]),
                Route("/ari/channels/{channel_id}", self._delete, methods=["DELETE"]),
            ]
        )

    async def _guard(self, request: Request) -> Response | None:
        self.requests.append(AriRequest(request.method, request.url.path, dict(request.query_params)))
        expected = "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return JSONResponse(
                {"message": "Authentication required"},
                401,
                headers={"WWW-Authenticate": 'Basic realm="Asterisk REST Interface"'},
            )
        if self.fail_next:
            status, body = self.fail_next.pop(0)
            return JSONResponse(body, status)
        return None

    async def _continue(self, request: Request) -> Response:
        if (refusal := await self._guard(request)) is not None:
            return refusal
        channel = request.path_params["channel_id"]
        if channel not in self.channels:
            return JSONResponse({"message": "Channel not found"}, 404)
        if channel not in self.in_stasis:
            return JSONResponse({"message": "Channel not in Stasis application"}, 409)
        self.in_stasis.discard(channel)
        self.continued.append((channel, dict(self.variables.get(channel, {}))))
        return Response(status_code=204)

    async def _variable(self, request: Request) -> Response:
        if (refusal := await self._guard(request)) is not None:
            return refusal
        channel = request.path_params["channel_id"]
        variable = request.query_params.get("variable")
        if not variable:
            return JSONResponse({"message": "Variable name is required"}, 400)
        if channel not in self.channels:
            return JSONResponse({"message": "Channel not found"}, 404)
        if channel not in self.in_stasis:
            return JSONResponse({"message": "Channel not in Stasis application"}, 409)
        self.variables.setdefault(channel, {})[variable] = request.query_params.get("value", "")
        return Response(status_code=204)

    async def _redirect(self, request: Request) -> Response:
        if (refusal := await self._guard(request)) is not None:
            return refusal
        channel = request.path_params["channel_id"]
        endpoint = request.query_params.get("endpoint")
        if not endpoint:
            return JSONResponse({"message": "Endpoint parameter not provided"}, 400)
        if channel not in self.channels:
            return JSONResponse({"message": "Channel not found"}, 404)
        if channel not in self.in_stasis:
            return JSONResponse({"message": "Channel not in Stasis application"}, 409)
        technology = endpoint.split("/", 1)[0]
        if technology != self.channels[channel]:
            return JSONResponse({"message": "Endpoint technology must match channel technology"}, 422)
        self.in_stasis.discard(channel)
        return Response(status_code=204)

    async def _delete(self, request: Request) -> Response:
        if (refusal := await self._guard(request)) is not None:
            return refusal
        channel = request.path_params["channel_id"]
        if request.query_params.get("reason") not in (None, "normal", "busy", "congestion", "no_answer"):
            return JSONResponse({"message": "Invalid reason for hangup provided"}, 400)
        if self.channels.pop(channel, None) is None:
            return JSONResponse({"message": "Channel not found"}, 404)
        self.in_stasis.discard(channel)
        return Response(status_code=204)


@pytest.fixture
async def fake_ari() -> AsyncIterator[FakeAri]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    ari = FakeAri(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}")
    server = uvicorn.Server(uvicorn.Config(ari.app(), log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    yield ari
    server.should_exit = True
    await task
    sock.close()


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL nobody listens on: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
