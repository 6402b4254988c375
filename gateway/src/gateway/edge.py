"""The HTTP edge of the MCP endpoint: every check that answers with a plain HTTP status before MCP.

The request head has been bounded in size and time already (`gateway.protocol`). Capacity is shared
per tenant (`gateway.capacity`): until its API key is checked a request holds one of a small pool of
slots (503 busy when they are all taken), then a slot of its key and account (429 when that key's or
account's share is in use; 503 busy when the whole gateway is full). Refusals come before any other
work, with Retry-After, so load past saturation is refused in milliseconds instead of queueing until
every call misses its deadline, and one tenant's slow or stalled requests use up only its own share.
In order: Host and Origin (403), declared body size (413), API key (401, one identical answer for a
missing, unknown or revoked key), `account_id` header against the key's account (403), in-flight
share (429/503), rate limit per key (429), context headers (400, see `gateway.context`). Then the
body is read whole within `body_timeout` (408 after, 413 past `max_body_bytes`); a client that goes
away meanwhile is an info line. A request that passes carries its `Caller` and its span into the
MCP handlers through the ASGI scope. The span started here is the root of the call's trace.

A GET is answered 405, as the transport allows a server without a server-to-client stream to: the
gateway is stateless and never sends on one, so a GET stream would only hold a connection open
forever, and the SDK fails a GET carrying `Last-Event-ID` with a 500 (it has no event store).

The SDK answers a body that is JSON but no JSON-RPC message with pydantic's full validation report
(model names, the input echoed, links to pydantic's docs); that answer is replaced by one sentence.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.auth import Authenticator
from gateway.capacity import Capacity, Refusal
from gateway.context import ACCOUNT_HEADER, BadHeader, read_caller
from gateway.ratelimit import RateLimiter
from gateway.server import CALLER_SCOPE_KEY, SPAN_SCOPE_KEY
from switchboard.telemetry import meter, tracer

log = logging.getLogger(__name__)

MCP_PATH = "/ucp/v2/mcp"

API_KEY_HEADER = "x-api-key"

_refused_busy = meter.create_counter(
    "switchboard.gateway.refused_busy", description="Requests answered 503 because the gateway was at capacity."
)
_refused_share = meter.create_counter(
    "switchboard.gateway.refused_share",
    description="Requests answered 429 because their API key or account had its in-flight share in use.",
)

def _reply(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps({"error": code, "message": message})
    return Response(body, status_code=status, media_type="application/json", headers=headers)


UNAUTHORIZED = ("unauthorized", "A valid API key is required in the X-API-Key header.")
NO_EVENT_STREAM = _reply(
    405,
    "method_not_allowed",
    "This endpoint offers no event stream; send JSON-RPC messages with POST.",
    headers={"Allow": "POST"},
)
BUSY = _reply(
    503,
    "busy",
    "The gateway is at capacity; retry in a moment.",
    headers={"Retry-After": "1"},
)
TOO_MANY_IN_FLIGHT = _reply(
    429,
    "too_many_in_flight",
    "This API key (or its account) has as many requests under way as it may; retry when one is answered.",
    headers={"Retry-After": "1"},
)
BODY_TIMEOUT = _reply(
    408,
    "request_timeout",
    "The request body did not arrive in time.",
    headers={"Connection": "close"},
)
NOT_JSON_RPC = (
    "Invalid request: the body must be a JSON-RPC 2.0 request, notification or response object "
    "with the members its method needs."
)


def matches(value: str, patterns: Sequence[str]) -> bool:
    """Whether `value` is allowed: an exact entry, `base:*` for base with any port, or `*`."""
    for pattern in patterns:
        if pattern == "*" or value == pattern:
            return True
        if pattern.endswith(":*") and value.startswith(pattern[:-1]) and value[len(pattern) - 1 :].isdigit():
            return True
    return False


class Edge:
    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticator: Authenticator,
        limiter: RateLimiter,
        allowed_hosts: Sequence[str],
        allowed_origins: Sequence[str],
        max_body_bytes: int,
        capacity: Capacity,
        body_timeout: float,
    ) -> None:
        self._app = app
        self._authenticator = authenticator
        self._limiter = limiter
        self._allowed_hosts = list(allowed_hosts)
        self._allowed_origins = list(allowed_origins)
        self._max_body_bytes = max_body_bytes
        self._capacity = capacity
        self._body_timeout = body_timeout
        self._too_large = _reply(
            413,
            "body_too_large",
            f"The request body must be at most {max_body_bytes} bytes.",
            headers={"Connection": "close"},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        method = scope.get("method", "")
        if not self._capacity.enter_unauthenticated():
            _refused_busy.add(1)
            await BUSY(scope, receive, send)
            return
        slot = _Slot(self._capacity)
        try:
            await self._serve(scope, receive, send, method, slot)
        finally:
            slot.release()

    async def _serve(self, scope: Scope, receive: Receive, send: Send, method: str, slot: _Slot) -> None:
        status = 500

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with tracer.start_as_current_span(
            f"{method} {MCP_PATH}", context=Context(), kind=trace.SpanKind.SERVER
        ) as span:
            span.set_attributes(
                {"http.request.method": method, "http.route": MCP_PATH, "url.scheme": scope.get("scheme", "http")}
            )
            try:
                rejection = await self._admit(scope, Headers(scope=scope), span, slot)
                if rejection is None and method == "GET":
                    rejection = NO_EVENT_STREAM
                if rejection is not None:
                    await rejection(scope, receive, send_and_watch)
                    return
                body = await self._read_body(receive)
                if body is None:
                    status = 499  # what proxies log for a client that closed first; nothing is sent
                    span.set_attribute("switchboard.client_disconnected", True)
                    log.info("a client disconnected before its request body arrived")
                elif isinstance(body, Response):
                    await body(scope, receive, send_and_watch)
                else:
                    await self._app(scope, _replay(body, receive), _plain_validation_errors(send_and_watch))
            finally:
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(trace.StatusCode.ERROR)

    async def _admit(self, scope: Scope, headers: Headers, span: trace.Span, slot: _Slot) -> Response | None:
        host = headers.get("host", "")
        if not matches(host, self._allowed_hosts):
            log.warning("refused a request for host %r", host[:100])
            return _reply(403, "forbidden_host", "This host name is not served here.")
        origin = headers.get("origin")
        if origin is not None and not matches(origin, self._allowed_origins):
            log.warning("refused a request from origin %r", origin[:100])
            return _reply(403, "forbidden_origin", "Requests from this origin are not allowed.")
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body_bytes:
            return self._too_large

        try:
            key = await self._authenticator.authenticate(headers.get(API_KEY_HEADER))
        except Exception:
            log.exception("API key lookup failed")
            return _reply(503, "unavailable", "The gateway cannot check API keys right now; try again in a moment.")
        finally:
            slot.authenticated()
        if key is None:
            return _reply(401, *UNAUTHORIZED)
        span.set_attribute("switchboard.api_key_id", key.key_id)

        account_id = headers.get(ACCOUNT_HEADER)
        if not account_id:
            return _reply(400, "missing_header", "The account_id header is required.")
        if account_id != key.account_id:
            return _reply(403, "wrong_account", "This API key does not belong to the account named in account_id.")
        span.set_attribute("switchboard.account_id", key.account_id)

        refusal = slot.enter(key.key_id, key.account_id)
        if refusal is Refusal.gateway:
            _refused_busy.add(1)
            return BUSY
        if refusal is not None:
            _refused_share.add(1, {"share": refusal.value})
            return TOO_MANY_IN_FLIGHT

        wait = self._limiter.acquire(key.key_id)
        if wait > 0:
            return _reply(
                429,
                "rate_limited",
                "Too many requests with this API key; slow down.",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )

        caller = read_caller(headers, key_id=key.key_id, account_id=key.account_id)
        if isinstance(caller, BadHeader):
            return _reply(400, "invalid_header", caller.message)
        span.set_attributes({"switchboard.persona_id": caller.persona_id, "switchboard.call_id": caller.call_id})
        scope[CALLER_SCOPE_KEY] = caller
        scope[SPAN_SCOPE_KEY] = span
        return None


    async def _read_body(self, receive: Receive) -> bytes | Response | None:
        """The whole body within `body_timeout`; a 408 or 413 answer; None when the client went away."""
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self._body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self._max_body_bytes:
                        return self._too_large
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            log.info("a request body did not arrive within %g s", self._body_timeout)
            return BODY_TIMEOUT


class _Slot:
    """What one request holds of the capacity: first an unauthenticated slot, then its key's."""

    __slots__ = ("_capacity", "_unauthenticated", "_held")

    def __init__(self, capacity: Capacity) -> None:
        self._capacity = capacity
        self._unauthenticated = True
        self._held: tuple[str, str] | None = None

    def authenticated(self) -> None:
        if self._unauthenticated:
            self._unauthenticated = False
            self._capacity.leave_unauthenticated()

    def enter(self, key_id: str, account_id: str) -> Refusal | None:
        refusal = self._capacity.enter(key_id, account_id)
        if refusal is None:
            self._held = (key_id, account_id)
        return refusal

    def release(self) -> None:
        self.authenticated()
        if self._held is not None:
            self._capacity.leave(*self._held)
            self._held = None


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` that hands the app the body already read, then waits for the client as before."""
    pending: Message | None = {"type": "http.request", "body": body, "more_body": False}

    async def replaying() -> Message:
        nonlocal pending
        if pending is not None:
            message, pending = pending, None
            return message
        return await receive()

    return replaying


def _plain_validation_errors(send: Send) -> Send:
    """`send` with the SDK's 400 validation report replaced by `NOT_JSON_RPC` (see the module doc)."""
    held: Message | None = None

    async def sending(message: Message) -> None:
        nonlocal held
        if message["type"] == "http.response.start" and message["status"] == 400:
            held = message
            return
        if held is None or message["type"] != "http.response.body":
            await send(message)
            return
        start, held = held, None
        body = message.get("body", b"")
        if not message.get("more_body") and body.startswith(b'{"jsonrpc"'):
            body = _replace_validation_report(body)
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            start = {**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
            message = {**message, "body": body}
        await send(start)
        await send(message)

    return sending


def _replace_validation_report(body: bytes) -> bytes:
    try:
        answer = json.loads(body)
        error = answer["error"]
        if not str(error["message"]).startswith("Validation error:"):
            return body
    except (ValueError, KeyError, TypeError):
        return body
    error["message"] = NOT_JSON_RPC
    return json.dumps(answer).encode()
