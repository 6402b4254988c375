"""The admin gate: token and body size are checked before anything reads the body."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import SecretStr

from switchboard.admin import AdminGate, document_admin_responses

TOKEN = "admin-token-0123456789"


@pytest.fixture
def app() -> tuple[FastAPI, list[int]]:
    app = FastAPI()
    bodies: list[int] = []

    @app.put("/admin/v1/things/{thing}")
    async def put_thing(thing: str, request: Request) -> dict[str, int]:
        body = await request.body()
        bodies.append(len(body))
        return {"size": len(body)}

    @app.post("/webhooks/v1/events")
    async def webhook(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(AdminGate, token=SecretStr(TOKEN), max_body_bytes=2048)
    document_admin_responses(app)
    return app, bodies


async def request(app: FastAPI, method: str, path: str, **kwargs) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as http:
        return await http.request(method, path, **kwargs)


AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_without_the_token_the_body_is_never_read(app) -> None:
    app, bodies = app
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        response = await request(app, "PUT", "/admin/v1/things/a", content=b"x" * 100, headers=headers)
        assert response.status_code == 401 and response.json()["error"] == "unauthorized"
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert bodies == []
    assert (await request(app, "PUT", "/admin/v1/things/a", content=b"x" * 100, headers=AUTH)).json() == {"size": 100}


async def test_a_body_over_the_limit_is_413_declared_or_streamed(app) -> None:
    app, bodies = app
    declared = await request(app, "PUT", "/admin/v1/things/a", content=b"x" * 4096, headers=AUTH)
    assert declared.status_code == 413 and "2048 bytes" in declared.json()["detail"]

    async def chunks():
        for _ in range(8):
            yield b"x" * 512

    streamed = await request(app, "PUT", "/admin/v1/things/a", content=chunks(), headers=AUTH)
    assert streamed.status_code == 413
    assert bodies == []


async def test_health_and_signed_webhooks_need_no_admin_token_but_are_bounded(app) -> None:
    app, _ = app
    assert (await request(app, "GET", "/healthz")).status_code == 200
    assert (await request(app, "POST", "/webhooks/v1/events", content=b"{}")).status_code == 200
    assert (await request(app, "POST", "/webhooks/v1/events", content=b"x" * 4096)).status_code == 413


async def test_the_openapi_documents_the_gates_answers(app) -> None:
    app, _ = app
    operations = app.openapi()["paths"]
    assert {"401", "413", "422"} <= set(operations["/admin/v1/things/{thing}"]["put"]["responses"])
    assert "401" not in operations["/webhooks/v1/events"]["post"]["responses"]
    assert "413" in operations["/webhooks/v1/events"]["post"]["responses"]


async def test_with_no_token_configured_every_admin_request_is_refused() -> None:
    app = FastAPI()
    app.add_middleware(AdminGate, token=None, max_body_bytes=2048)
    assert (await request(app, "GET", "/admin/v1/x", headers={"Authorization": "Bearer "})).status_code == 401
