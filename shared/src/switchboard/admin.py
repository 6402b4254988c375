"""Protection of the admin REST APIs (the Portal's back end): one bearer token, compared in constant time,
checked with the body size before any body is read."""

from __future__ import annotations

import hmac
import json
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_bearer = HTTPBearer(auto_error=False, description="The admin token (SWITCHBOARD_ADMIN_TOKEN).")


def require_admin(token: SecretStr | None):
    """A FastAPI dependency: 401 unless the request carries `Authorization: Bearer <token>`.

    With no token configured every admin request is refused: an admin API is never open by default.
    """

    async def check(credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
        expected = token.get_secret_value().encode() if token else None
        given = credentials.credentials.encode() if credentials else b""
        if not expected or not hmac.compare_digest(given, expected):
            raise HTTPException(
                status_code=status.HTTP_401_UNAUTHORIZED,
                detail="A valid admin token is required.",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return Depends(check)


PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/metrics"})
SIGNED_PREFIXES = ("/webhooks/",)
"""Paths that carry their own proof (a PBX's signed webhook): not gated by the admin token."""


def _json(status_code: int, error: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps({"error": error, "detail": message})
    return Response(body, status_code=status_code, media_type="application/json", headers=headers)


class _TooLarge(Exception):
    pass


class AdminGate:
    """ASGI middleware in front of a service's HTTP API: the admin token and the body size are
    checked before anything reads the body (FastAPI parses a body before it runs a route's
    dependencies, so `require_admin` alone would read a stranger's megabytes first).

    Every path is an admin path but the health, readiness, OpenAPI and metrics paths and the
    signed webhooks; those still have their body size bounded.
    """

    def __init__(self, app: ASGIApp, *, token: SecretStr | None, max_body_bytes: int) -> None:
        self._app = app
        self._token = token.get_secret_value().encode() if token and token.get_secret_value() else None
        self._max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        headers = Headers(scope=scope)
        if path not in PUBLIC_PATHS and not path.startswith(SIGNED_PREFIXES) and not self._authorized(headers):
            await _json(
                401, "unauthorized", "A valid admin token is required.", {"WWW-Authenticate": "Bearer"}
            )(scope, receive, send)
            return
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self._max_body_bytes):
            await self._too_large(scope, receive, send)
            return
        received = 0
        started = False

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._max_body_bytes:
                    raise _TooLarge()
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, bounded_receive, watching_send)
        except _TooLarge:
            if not started:
                await self._too_large(scope, receive, send)

    def _authorized(self, headers: Headers) -> bool:
        scheme, _, given = headers.get("authorization", "").partition(" ")
        return (
            self._token is not None
            and scheme.lower() == "bearer"
            and hmac.compare_digest(given.strip().encode(), self._token)
        )

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"The request body must be at most {self._max_body_bytes} bytes."
        await _json(413, "body_too_large", message)(scope, receive, send)


ADMIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid admin token (checked before the body is read)."},
    413: {"description": "The body is larger than the service accepts (checked before it is read)."},
    422: {"description": "The path, query or body is not valid; the detail names each problem."},
}


def document_admin_responses(app: FastAPI) -> None:
    """Add the gate's answers (401, 413, 422) to every operation of the app's OpenAPI document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for path, operations in schema.get("paths", {}).items():
            if path in PUBLIC_PATHS:
                continue
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for code, response in ADMIN_RESPONSES.items():
                    if path.startswith(SIGNED_PREFIXES) and code == 401:
                        continue
                    responses.setdefault(str(code), response)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
