"""The PBX webhook (authentication, validation, idempotency) and the admin API, with in-memory adapters."""

import json

import httpx
import pytest
from call_control_svc import api
from call_control_svc.events import CallFacts
from call_control_svc.memory import InMemoryCalls, InMemoryRules
from call_control_svc.model import CallPolicy
from fastapi import FastAPI
from pydantic import SecretStr
from switchboard.contracts import Topic
from switchboard.contracts.call_control import CallStarted
from switchboard.messaging.events import RecordingEventPublisher

SECRET = "webhook-secret"
ADMIN = "admin-token"
STARTED = {
    "event": "call.started",
    "account_id": "acc-1",
    "call_id": "call-1",
    "persona_id": "per-1",
    "caller_number": "+14155550100",
}


class Api:
    def __init__(self, secret: str | None = SECRET) -> None:
        self.calls = InMemoryCalls()
        self.rules = InMemoryRules()
        self.published = RecordingEventPublisher()
        facts = CallFacts(self.published)
        app = FastAPI()
        app.include_router(api.webhook_router(self.calls, facts, SecretStr(secret) if secret else None, CallPolicy()))
        app.include_router(api.admin_router(self.calls, self.rules, SecretStr(ADMIN), CallPolicy()))
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://call-control")

    async def post_event(
        self, event: dict, *, headers: dict[str, str] | None = None, sign: bool = True
    ) -> httpx.Response:
        body = json.dumps(event).encode()
        signed = {api.SIGNATURE_HEADER: api.sign(SECRET, body)} if sign else {}
        return await self.http.post(
            "/webhooks/v1/call-events",
            content=body,
            headers={"content-type": "application/json", **signed, **(headers or {})},
        )


@pytest.fixture
async def app():
    a = Api()
    yield a
    await a.http.aclose()


async def test_a_signed_call_started_registers_the_call_and_is_announced_once(app) -> None:
    first = await app.post_event(STARTED)
    assert first.status_code == 200
    assert first.json() == {
        "event": "call.started",
        "account_id": "acc-1",
        "call_id": "call-1",
        "recorded": True,
        "state": "active",
    }
    again = await app.post_event(STARTED)
    assert again.json()["recorded"] is False
    assert [(t, k, type(e)) for t, k, e in app.published.published] == [(Topic.call_events, "call-1", CallStarted)]


async def test_the_shared_secret_header_is_accepted_too(app) -> None:
    response = await app.post_event(STARTED, headers={api.SECRET_HEADER: SECRET}, sign=False)
    assert response.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {api.SIGNATURE_HEADER: "sha256=" + "0" * 64},
        {api.SIGNATURE_HEADER: api.sign("other-secret", json.dumps(STARTED).encode())},
        {api.SECRET_HEADER: "guess"},
    ],
)
async def test_unauthenticated_events_are_refused_without_side_effect(app, headers) -> None:
    response = await app.post_event(STARTED, headers=headers, sign=False)
    assert response.status_code == 401
    assert app.calls.calls == {} and app.published.published == []


async def test_a_signature_over_another_body_is_refused(app) -> None:
    body = json.dumps(STARTED).encode()
    tampered = json.dumps({**STARTED, "account_id": "acc-2"}).encode()
    response = await app.http.post(
        "/webhooks/v1/call-events", content=tampered, headers={api.SIGNATURE_HEADER: api.sign(SECRET, body)}
    )
    assert response.status_code == 401


async def test_without_a_configured_secret_the_webhook_refuses_everything() -> None:
    a = Api(secret=None)
    response = await a.post_event(STARTED, headers={api.SECRET_HEADER: ""}, sign=False)
    assert response.status_code == 401 and "no webhook secret" in response.json()["detail"]
    await a.http.aclose()


@pytest.mark.parametrize(
    "event",
    [
        {"event": "call.exploded", "account_id": "acc-1", "call_id": "call-1"},
        {"event": "call.started", "account_id": "acc 1; drop", "call_id": "call-1"},
        {"event": "call.started", "account_id": "acc-1", "call_id": "call-1", "extra": 1},
        {"event": "call.ended", "account_id": "acc-1"},
    ],
)
async def test_malformed_events_are_refused_with_a_clear_error(app, event) -> None:
    response = await app.post_event(event)
    assert response.status_code == 422 and response.json()["detail"].startswith(
        "Not a call.started or call.ended event"
    )
    assert app.calls.calls == {} and app.calls.ends == {}


async def test_non_json_and_oversized_bodies_are_refused(app) -> None:
    garbage = b"\x00not json"
    response = await app.http.post(
        "/webhooks/v1/call-events", content=garbage, headers={api.SIGNATURE_HEADER: api.sign(SECRET, garbage)}
    )
    assert response.status_code == 422
    huge = b"{" + b" " * (api.WEBHOOK_MAX_BYTES + 1) + b"}"
    response = await app.http.post(
        "/webhooks/v1/call-events", content=huge, headers={api.SIGNATURE_HEADER: api.sign(SECRET, huge)}
    )
    assert response.status_code == 413


async def test_call_ended_ends_the_call(app) -> None:
    await app.post_event(STARTED)
    response = await app.post_event(
        {"event": "call.ended", "account_id": "acc-1", "call_id": "call-1", "reason": "caller_hangup"}
    )
    assert response.json()["state"] == "ended" and response.json()["recorded"] is True


async def test_admin_routes_need_the_admin_token(app) -> None:
    assert (await app.http.get("/admin/v1/accounts/acc-1/transfer-rules")).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (await app.http.put("/admin/v1/accounts/acc-1/transfer-rules", json={}, headers=wrong)).status_code == 401
    assert app.rules.rules == {}


async def test_transfer_rules_have_defaults_and_can_be_set(app) -> None:
    auth = {"Authorization": f"Bearer {ADMIN}"}
    defaults = (await app.http.get("/admin/v1/accounts/acc-1/transfer-rules", headers=auth)).json()
    assert defaults == {
        "allow_international": False,
        "block_premium_rate": True,
        "forbidden_prefixes": [],
        "allow_extensions": True,
    }
    new = {
        "allow_international": True,
        "block_premium_rate": True,
        "forbidden_prefixes": ["+1900"],
        "allow_extensions": False,
    }
    assert (await app.http.put("/admin/v1/accounts/acc-1/transfer-rules", json=new, headers=auth)).json() == new
    assert (await app.http.get("/admin/v1/accounts/acc-1/transfer-rules", headers=auth)).json() == new
    bad = await app.http.put(
        "/admin/v1/accounts/acc-1/transfer-rules", json={"forbidden_prefixes": ["1900"]}, headers=auth
    )
    assert bad.status_code == 422
    unknown = await app.http.put(
        "/admin/v1/accounts/acc-1/transfer-rules", json={"allow_everything": True}, headers=auth
    )
    assert unknown.status_code == 422
    assert (await app.http.get("/admin/v1/accounts/bad%20id/transfer-rules", headers=auth)).status_code == 422


async def test_the_call_view_shows_state_and_masks_the_caller(app) -> None:
    auth = {"Authorization": f"Bearer {ADMIN}"}
    assert (await app.http.get("/admin/v1/accounts/acc-1/calls/call-1", headers=auth)).status_code == 404
    await app.post_event(STARTED)
    view = (await app.http.get("/admin/v1/accounts/acc-1/calls/call-1", headers=auth)).json()
    assert view["state"] == "active" and view["caller_number"] == "***00" and view["actions"] == []
    assert (await app.http.get("/admin/v1/accounts/acc-2/calls/call-1", headers=auth)).status_code == 404
