"""The admin API through HTTP (ASGI), on in-memory stores, recording the events it publishes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from switchboard.contracts import Topic
from switchboard.contracts.persona import PersonaUpdated, QueueUpdated, UserDndChanged, UserUpdated
from switchboard.messaging.events import RecordingEventPublisher

from persona_svc.api import admin_router
from persona_svc.bootstrap import OPENAPI_PATH, configure_app
from persona_svc.model import ApiRequestDefinition
from persona_svc.repository import memory_repositories

NOW = datetime(2026, 3, 9, 14, 30, tzinfo=UTC)
TOKEN = "admin-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ACME = {"name": "Acme", "timezone": "America/New_York", "country": "us"}


class FailingPublisher:
    async def publish(self, topic, event, *, key: str) -> None:
        raise ConnectionError("broker down")


def make_app(events) -> tuple[FastAPI, object]:
    repos = memory_repositories()
    app = FastAPI()
    configure_app(app)
    app.include_router(admin_router(repos, events, token=SecretStr(TOKEN), clock=lambda: NOW))
    return app, repos


@pytest.fixture
async def api():
    events = RecordingEventPublisher()
    app, repos = make_app(events)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://persona", headers=AUTH
    ) as http:
        yield http, events, repos


async def seed(http: httpx.AsyncClient) -> None:
    assert (await http.put("/admin/v1/accounts/acme", json=ACME)).status_code == 201
    assert (await http.put("/admin/v1/accounts/acme/personas/front", json={"name": "Front desk"})).status_code == 201
    assert (
        await http.put("/admin/v1/accounts/acme/users/ann", json={"name": "Ann", "number": "(415) 555-0123"})
    ).status_code == 201
    assert (
        await http.put("/admin/v1/accounts/acme/queues/sales", json={"name": "Sales", "extension": "500"})
    ).status_code == 201


def loc(response: httpx.Response) -> list[list]:
    assert response.status_code == 422, response.text
    return [d["loc"] for d in response.json()["detail"]]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}])
async def test_the_admin_api_needs_the_admin_token(api, headers: dict) -> None:
    http, events, _ = api
    response = await http.put("/admin/v1/accounts/acme", json=ACME, headers={"Authorization": "", **headers})
    assert response.status_code == 401
    assert events.published == []


async def test_without_a_configured_token_everything_is_refused() -> None:
    app = FastAPI()
    app.include_router(admin_router(memory_repositories(), RecordingEventPublisher(), token=None, clock=lambda: NOW))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://p") as http:
        assert (await http.get("/admin/v1/accounts", headers={"Authorization": "Bearer "})).status_code == 401


async def test_put_creates_then_replaces_and_announces(api) -> None:
    http, events, _ = api
    first = await http.put("/admin/v1/accounts/acme", json=ACME)
    again = await http.put("/admin/v1/accounts/acme", json={**ACME, "name": "Acme Inc"})
    assert (first.status_code, again.status_code) == (201, 200)
    account = (await http.get("/admin/v1/accounts/acme")).json()
    assert account == {
        "account_id": "acme",
        "name": "Acme Inc",
        "timezone": "America/New_York",
        "country": "US",
        "egress_allowlist": [],
        "updated_at": "2026-03-09T14:30:00Z",
    }
    assert [a["account_id"] for a in (await http.get("/admin/v1/accounts")).json()] == ["acme"]
    assert (
        events.published
        == [(Topic.persona_events, "acme", PersonaUpdated(account_id="acme", persona_id=None, updated_at=NOW))] * 2
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**ACME, "timezone": "Mars/Olympus"}, ["body", "timezone"]),
        ({**ACME, "timezone": "../../etc/passwd"}, ["body", "timezone"]),
        ({**ACME, "country": "XX"}, ["body", "country"]),
        ({**ACME, "egress_allowlist": [{"host": "not a host!"}]}, ["body", "egress_allowlist", 0, "host"]),
        (
            {**ACME, "egress_allowlist": [{"host": "10.0.0.0/8", "port": 70000}]},
            ["body", "egress_allowlist", 0, "port"],
        ),
        ({**ACME, "surprise": 1}, ["body", "surprise"]),
        ({"timezone": "UTC", "country": "US"}, ["body", "name"]),
    ],
)
async def test_bad_accounts_are_422_naming_the_field(api, body: dict, field: list) -> None:
    http, events, _ = api
    assert field in loc(await http.put("/admin/v1/accounts/acme", json=body))
    assert events.published == []


async def test_bad_ids_in_the_path_are_422(api) -> None:
    http, _, _ = api
    assert ["path", "account_id"] in loc(await http.put("/admin/v1/accounts/$where", json=ACME))


async def test_allowlist_entries_are_normalised(api) -> None:
    http, _, _ = api
    body = {
        **ACME,
        "egress_allowlist": [
            {"host": "CRM.Acme.Internal."},
            {"host": "10.1.2.3/16", "port": 8443},
            {"host": "[fd00::1]"},
        ],
    }
    response = await http.put("/admin/v1/accounts/acme", json=body)
    assert response.json()["egress_allowlist"] == [
        {"host": "crm.acme.internal", "port": None},
        {"host": "10.1.0.0/16", "port": 8443},
        {"host": "fd00::1/128", "port": None},
    ]


async def test_children_need_their_parent(api) -> None:
    http, _, _ = api
    assert (await http.put("/admin/v1/accounts/none/personas/p", json={"name": "P"})).status_code == 404
    assert (await http.put("/admin/v1/accounts/none/users/u", json={"name": "U", "extension": "20"})).status_code == 404
    await http.put("/admin/v1/accounts/acme", json=ACME)
    tool = {"kind": "transfer_to_queue", "name": "q", "description": "d", "queue_id": "x"}
    assert (await http.put("/admin/v1/accounts/acme/personas/none/tools/t", json=tool)).status_code == 404


async def test_office_hours_holidays_and_special_hours(api) -> None:
    http, events, _ = api
    await seed(http)
    seeded = len(events.published)
    base = "/admin/v1/accounts/acme/personas/front/office-hours"
    assert (await http.get(base)).status_code == 404
    week = {"weekly": {"monday": [{"start": "09:00", "end": "17:00"}], "friday": [{"start": "22:00", "end": "02:00"}]}}
    assert (await http.put(base, json=week)).status_code == 200
    assert (await http.put(base + "/holidays/2026-12-25", json={"name": "Christmas Day"})).status_code == 200
    special = {"spans": [{"start": "10:00", "end": "12:00"}], "name": "Short day"}
    hours = (await http.put(base + "/special-hours/2026-12-24", json=special)).json()
    assert hours["holidays"] == [{"date": "2026-12-25", "name": "Christmas Day"}]
    assert hours["special_hours"] == [
        {"date": "2026-12-24", "spans": [{"start": "10:00", "end": "12:00"}], "name": "Short day"}
    ]
    # A holiday on the same date replaces the special hours.
    hours = (await http.put(base + "/holidays/2026-12-24", json={"name": "Christmas Eve"})).json()
    assert [h["date"] for h in hours["holidays"]] == ["2026-12-24", "2026-12-25"] and hours["special_hours"] == []
    assert (await http.delete(base + "/special-hours/2026-12-24")).status_code == 404
    assert (await http.delete(base + "/holidays/2026-12-24")).status_code == 200
    persona = (await http.get("/admin/v1/accounts/acme/personas/front")).json()
    assert persona["office_hours"]["holidays"] == [{"date": "2026-12-25", "name": "Christmas Day"}]
    changes = events.published[seeded:]
    assert changes and all(isinstance(e, PersonaUpdated) and e.persona_id == "front" for _, _, e in changes)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("", {"weekly": {"monday": [{"start": "9:00", "end": "17:00"}]}}, ["body", "weekly", "monday", 0, "start"]),
        ("", {"weekly": {"funday": []}}, ["body", "weekly", "funday", "[key]"]),
        ("", {"weekly": {"monday": [{"start": "09:00", "end": "09:00"}]}}, ["body", "weekly", "monday", 0]),
        ("/holidays/2026-02-30", {"name": "x"}, ["path", "day"]),
        ("/holidays/2026-12-25", {"name": ""}, ["body", "name"]),
        ("/special-hours/2026-12-25", {"spans": [{"start": "10:00", "end": "25:00"}]}, ["body", "spans", 0, "end"]),
    ],
)
async def test_bad_office_hours_are_422_naming_the_field(api, path: str, body: dict, field: list) -> None:
    http, _, _ = api
    await seed(http)
    response = await http.put(f"/admin/v1/accounts/acme/personas/front/office-hours{path}", json=body)
    assert field in loc(response)


async def test_users_numbers_are_normalised_and_dnd_is_kept_across_a_replace(api) -> None:
    http, events, _ = api
    await seed(http)
    assert (await http.get("/admin/v1/accounts/acme/users/ann")).json()["number"] == "+14155550123"
    until = (NOW + timedelta(hours=1)).isoformat()
    response = await http.put("/admin/v1/accounts/acme/users/ann/dnd", json={"dnd": True, "until": until})
    assert response.status_code == 200 and response.json()["dnd"] is True
    assert events.published[-1] == (
        Topic.persona_events,
        "acme",
        UserDndChanged(account_id="acme", user_id="ann", dnd=True, dnd_until=NOW + timedelta(hours=1), changed_at=NOW),
    )
    replaced = await http.put("/admin/v1/accounts/acme/users/ann", json={"name": "Ann Lee", "extension": "201"})
    assert replaced.status_code == 200
    assert (replaced.json()["dnd"], replaced.json()["dnd_until"], replaced.json()["number"]) == (
        True,
        "2026-03-09T15:30:00Z",
        None,
    )
    assert events.published[-1] == (
        Topic.persona_events,
        "acme",
        UserUpdated(account_id="acme", user_id="ann", updated_at=NOW),
    )
    off = await http.put("/admin/v1/accounts/acme/users/ann/dnd", json={"dnd": False})
    assert (off.json()["dnd"], off.json()["dnd_until"]) == (False, None)


async def test_every_change_of_users_and_queues_is_announced(api) -> None:
    http, events, _ = api
    await seed(http)
    assert [e for _, _, e in events.published[-2:]] == [
        UserUpdated(account_id="acme", user_id="ann", updated_at=NOW),
        QueueUpdated(account_id="acme", queue_id="sales", updated_at=NOW),
    ]
    assert (await http.delete("/admin/v1/accounts/acme/users/ann")).status_code == 204
    assert (await http.delete("/admin/v1/accounts/acme/queues/sales")).status_code == 204
    assert events.published[-2:] == [
        (Topic.persona_events, "acme", UserUpdated(account_id="acme", user_id="ann", updated_at=NOW)),
        (Topic.persona_events, "acme", QueueUpdated(account_id="acme", queue_id="sales", updated_at=NOW)),
    ]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/users/u", {"name": "U", "number": "+1415", "extension": "20"}, ["body"]),
        ("/users/u", {"name": "U"}, ["body"]),
        ("/users/u", {"name": "U", "extension": "1234567"}, ["body", "extension"]),
        ("/users/u", {"name": "U", "number": "call me"}, ["body", "number"]),
        ("/queues/q", {"name": "Q", "number": "12"}, ["body", "number"]),
        ("/users/ann/dnd", {"dnd": True, "until": "2026-03-09T14:00:00Z"}, ["body", "until"]),
        ("/users/ann/dnd", {"dnd": True, "until": "2026-03-09T18:00:00"}, ["body", "until"]),
        ("/users/ann/dnd", {"dnd": False, "until": "2026-03-10T18:00:00Z"}, ["body"]),
    ],
)
async def test_bad_users_and_queues_are_422_naming_the_field(api, path: str, body: dict, field: list) -> None:
    http, events, _ = api
    await seed(http)
    before = len(events.published)
    assert field in loc(await http.put(f"/admin/v1/accounts/acme{path}", json=body))
    assert len(events.published) == before


API_TOOL = {
    "kind": "api_request",
    "name": "order_status",
    "description": "Look up an order by its number.",
    "url": "https://crm.example.com/orders/{{order_id}}",
    "variables": [{"name": "order_id", "type": "text", "description": "The order number."}],
    "headers": [
        {"name": "Authorization", "value": "Bearer s3cret", "secret": True},
        {"name": "X-Source", "value": "switchboard"},
    ],
}


async def test_secret_header_values_are_write_only(api) -> None:
    http, events, repos = api
    await seed(http)
    url = "/admin/v1/accounts/acme/personas/front/tools/t1"
    created = await http.put(url, json=API_TOOL)
    assert created.status_code == 201 and "s3cret" not in created.text
    assert created.json()["definition"]["headers"] == [
        {"name": "Authorization", "value": None, "secret": True},
        {"name": "X-Source", "value": "switchboard", "secret": False},
    ]
    round_trip = {**created.json()["definition"], "description": "Look up an order."}
    assert (await http.put(url, json=round_trip)).status_code == 200
    stored = await repos.tools.get(account_id="acme", persona_id="front", tool_id="t1")
    assert isinstance(stored.definition, ApiRequestDefinition)
    assert (
        stored.definition.headers[0].value == "Bearer s3cret" and stored.definition.description == "Look up an order."
    )
    listed = await http.get("/admin/v1/accounts/acme/personas/front/tools")
    assert "s3cret" not in listed.text and [t["tool_id"] for t in listed.json()] == ["t1"]
    assert events.published[-1][2] == PersonaUpdated(account_id="acme", persona_id="front", updated_at=NOW)


async def test_a_new_secret_header_needs_its_value(api) -> None:
    http, _, _ = api
    await seed(http)
    body = {**API_TOOL, "headers": [{"name": "Authorization", "secret": True}]}
    assert ["body", "headers", 0, "value"] in loc(
        await http.put("/admin/v1/accounts/acme/personas/front/tools/t1", json=body)
    )


async def test_a_rejected_body_is_not_echoed(api) -> None:
    http, _, _ = api
    await seed(http)
    body = {**API_TOOL, "url": "https://{{host}}/x"}
    response = await http.put("/admin/v1/accounts/acme/personas/front/tools/t1", json=body)
    assert ["body", "api_request", "url"] in loc(response)
    assert "s3cret" not in response.text


@pytest.mark.parametrize(
    ("tool", "field"),
    [
        ({"kind": "transfer_to_user", "name": "to_x", "description": "d", "user_id": "ghost"}, ["body", "user_id"]),
        ({"kind": "transfer_to_queue", "name": "to_q", "description": "d", "queue_id": "ghost"}, ["body", "queue_id"]),
        (
            {"kind": "transfer_to_user", "name": "bad name", "description": "d", "user_id": "ann"},
            ["body", "transfer_to_user", "name"],
        ),
        ({"kind": "teleport", "name": "x", "description": "d"}, ["body"]),
        ({**API_TOOL, "timeout_seconds": 120}, ["body", "api_request", "timeout_seconds"]),
        ({**API_TOOL, "method": "TRACE"}, ["body", "api_request", "method"]),
        (
            {**API_TOOL, "variables": [{"name": "order_id", "type": "date"}]},
            ["body", "api_request", "variables", 0, "type"],
        ),
    ],
)
async def test_bad_tools_are_422_naming_the_field(api, tool: dict, field: list) -> None:
    http, _, _ = api
    await seed(http)
    assert field in loc(await http.put("/admin/v1/accounts/acme/personas/front/tools/t1", json=tool))


async def test_tool_names_are_unique_in_a_persona(api) -> None:
    http, _, _ = api
    await seed(http)
    base = "/admin/v1/accounts/acme/personas/front/tools"
    tool = {"kind": "transfer_to_user", "name": "to_ann", "description": "Ann.", "user_id": "ann"}
    assert (await http.put(f"{base}/t1", json=tool)).status_code == 201
    assert (await http.put(f"{base}/t1", json=tool)).status_code == 200
    duplicate = await http.put(f"{base}/t2", json=tool)
    assert duplicate.status_code == 409 and "already has another tool named 'to_ann'" in duplicate.json()["detail"]


async def test_users_and_queues_in_use_cannot_be_deleted(api) -> None:
    http, _, _ = api
    await seed(http)
    base = "/admin/v1/accounts/acme/personas/front/tools"
    await http.put(
        f"{base}/t1", json={"kind": "transfer_to_user", "name": "to_ann", "description": "Ann.", "user_id": "ann"}
    )
    await http.put(
        f"{base}/t2",
        json={"kind": "transfer_to_queue", "name": "to_sales", "description": "Sales.", "queue_id": "sales"},
    )
    refused = await http.delete("/admin/v1/accounts/acme/users/ann")
    assert refused.status_code == 409 and "front/to_ann" in refused.json()["detail"]
    assert (await http.delete("/admin/v1/accounts/acme/queues/sales")).status_code == 409
    assert (await http.delete(f"{base}/t1")).status_code == 204
    assert (await http.delete("/admin/v1/accounts/acme/users/ann")).status_code == 204
    assert (await http.get("/admin/v1/accounts/acme/users/ann")).status_code == 404
    assert (await http.delete("/admin/v1/accounts/acme/users/ann")).status_code == 404


async def test_deleting_an_account_deletes_everything_in_it_only(api) -> None:
    http, events, repos = api
    await seed(http)
    await http.put("/admin/v1/accounts/other", json={**ACME, "name": "Other"})
    await http.put("/admin/v1/accounts/other/users/ann", json={"name": "Other Ann", "extension": "22"})
    await http.put(
        "/admin/v1/accounts/acme/personas/front/tools/t1",
        json={"kind": "transfer_to_user", "name": "to_ann", "description": "Ann.", "user_id": "ann"},
    )
    assert (await http.delete("/admin/v1/accounts/acme")).status_code == 204
    assert (await http.get("/admin/v1/accounts/acme")).status_code == 404
    for store in (repos.personas, repos.tools, repos.users, repos.queues):
        assert await store.list("acme") == []
    assert (await http.get("/admin/v1/accounts/other/users/ann")).json()["name"] == "Other Ann"
    assert events.published[-1][2] == PersonaUpdated(account_id="acme", persona_id=None, updated_at=NOW)


async def test_deleting_a_persona_deletes_its_tools(api) -> None:
    http, events, repos = api
    await seed(http)
    await http.put(
        "/admin/v1/accounts/acme/personas/front/tools/t1",
        json={"kind": "transfer_to_queue", "name": "q", "description": "Q.", "queue_id": "sales"},
    )
    assert (await http.delete("/admin/v1/accounts/acme/personas/front")).status_code == 204
    assert await repos.tools.list("acme") == []
    assert (await http.get("/admin/v1/accounts/acme/personas")).json() == []
    assert events.published[-1][2].persona_id == "front"


async def test_a_change_that_cannot_be_announced_is_503_and_a_repeat_announces_it() -> None:
    app, repos = make_app(FailingPublisher())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://p", headers=AUTH) as http:
        response = await http.put("/admin/v1/accounts/acme", json=ACME)
    assert response.status_code == 503 and "repeat the request" in response.json()["detail"]
    assert await repos.accounts.get(account_id="acme") is not None


async def test_the_openapi_document_is_published(api) -> None:
    http, _, _ = api
    for path in (OPENAPI_PATH, "/openapi.json"):
        spec = (await http.get(path, headers={"Authorization": ""})).json()
        assert "/admin/v1/accounts/{account_id}/personas/{persona_id}/tools/{tool_id}" in spec["paths"]
        assert "/admin/v1/accounts/{account_id}/users/{user_id}/dnd" in spec["paths"]


async def test_an_extension_on_a_users_number_is_kept_for_the_transfer(api) -> None:
    http, _, _ = api
    await seed(http)
    response = await http.put("/admin/v1/accounts/acme/users/bob", json={"name": "Bob", "number": "(415) 555-0123 ext 22"})
    assert response.status_code in (200, 201) and response.json()["number"] == "+14155550123;ext=22"
