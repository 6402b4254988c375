"""The admin/read API on in-memory repositories: auth, tenant isolation, paging, lookup by number."""

from functools import partial

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from leads_svc.api import admin_router
from leads_svc.handlers import create_lead

TOKEN = "admin-s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def http(leads, cases):
    app = FastAPI()
    app.include_router(admin_router(leads, cases, SecretStr(TOKEN)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://leads") as client:
        yield client


@pytest.fixture
def handle(leads, cases, events):
    return partial(create_lead, leads=leads, cases=cases, events=events)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic eDp5"}])
async def test_every_route_needs_the_admin_token(http, handle, command, headers) -> None:
    lead_id = (await handle(command())).lead_id
    for path in ("/v1/accounts/acc-1/leads", f"/v1/accounts/acc-1/leads/{lead_id}", f"/v1/accounts/acc-1/leads/{lead_id}/cases"):
        response = await http.get(path, headers=headers)
        assert response.status_code == 401, path


async def test_without_a_configured_token_everything_is_refused(leads, cases) -> None:
    app = FastAPI()
    app.include_router(admin_router(leads, cases, None))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://leads") as client:
        assert (await client.get("/v1/accounts/acc-1/leads", headers={"Authorization": "Bearer "})).status_code == 401


async def test_a_lead_comes_with_its_cases_newest_first(http, handle, command) -> None:
    first = await handle(command(summary="First call."))
    second = await handle(command(name="Ann S.", intent="Asks about the invoice.", classification="customer"))

    body = (await http.get(f"/v1/accounts/acc-1/leads/{first.lead_id}", headers=AUTH)).json()

    assert body["lead"]["id"] == first.lead_id and body["lead"]["case_count"] == 2
    assert body["lead"]["phone_e164"] == "+14155550123" and body["lead"]["deduplicable"] is True
    assert [c["id"] for c in body["cases"]["items"]] == [second.case_id, first.case_id]
    assert body["cases"]["items"][0]["classification"] == "customer"
    assert body["cases"]["items"][1]["summary"] == "First call."
    assert body["cases"]["next_cursor"] is None
    assert "match_key" not in body["lead"] and "command_id" not in body["lead"] and "event_published" not in body["lead"]


async def test_leads_are_listed_by_pages(http, handle, command) -> None:
    created = [(await handle(command(f"+1415555{n:04d}"))).lead_id for n in range(5)]

    first = (await http.get("/v1/accounts/acc-1/leads", params={"limit": 2}, headers=AUTH)).json()
    second = (await http.get("/v1/accounts/acc-1/leads", params={"limit": 2, "cursor": first["next_cursor"]}, headers=AUTH)).json()
    third = (await http.get("/v1/accounts/acc-1/leads", params={"limit": 2, "cursor": second["next_cursor"]}, headers=AUTH)).json()

    listed = [lead["id"] for page in (first, second, third) for lead in page["items"]]
    assert listed == list(reversed(created))
    assert third["next_cursor"] is None
    assert all(lead["case_count"] == 1 for lead in first["items"])


async def test_cases_are_listed_by_pages(http, handle, command) -> None:
    results = [await handle(command()) for _ in range(3)]
    lead_id = results[0].lead_id
    page = (await http.get(f"/v1/accounts/acc-1/leads/{lead_id}/cases", params={"limit": 2}, headers=AUTH)).json()
    rest = (
        await http.get(f"/v1/accounts/acc-1/leads/{lead_id}/cases", params={"cursor": page["next_cursor"]}, headers=AUTH)
    ).json()
    assert [c["id"] for c in page["items"] + rest["items"]] == [r.case_id for r in reversed(results)]


async def test_a_lead_is_found_by_its_number_in_any_form(http, handle, command) -> None:
    lead_id = (await handle(command("+49 30 123456", region="DE"))).lead_id
    await handle(command("+14155550100"))
    body = (await http.get("/v1/accounts/acc-1/leads", params={"phone": "030 123456", "region": "DE"}, headers=AUTH)).json()
    assert [lead["id"] for lead in body["items"]] == [lead_id] and body["next_cursor"] is None
    none = (await http.get("/v1/accounts/acc-1/leads", params={"phone": "+14155550199"}, headers=AUTH)).json()
    assert none["items"] == []


async def test_an_unreadable_number_filter_is_a_clear_error(http) -> None:
    response = await http.get("/v1/accounts/acc-1/leads", params={"phone": "not a number"}, headers=AUTH)
    assert response.status_code == 422 and "not a phone number" in response.json()["detail"]


async def test_another_accounts_lead_is_not_found(http, handle, command) -> None:
    lead_id = (await handle(command(account="acc-a"))).lead_id
    for path in (f"/v1/accounts/acc-b/leads/{lead_id}", f"/v1/accounts/acc-b/leads/{lead_id}/cases"):
        assert (await http.get(path, headers=AUTH)).status_code == 404
    assert (await http.get("/v1/accounts/acc-b/leads", headers=AUTH)).json()["items"] == []
    assert (await http.get("/v1/accounts/acc-b/leads", params={"phone": "+14155550123"}, headers=AUTH)).json()["items"] == []


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/accounts/acc-1/leads/not-an-id", {}),
        ("/v1/accounts/acc-1/leads", {"limit": 0}),
        ("/v1/accounts/acc-1/leads", {"limit": 201}),
        ("/v1/accounts/acc-1/leads", {"cursor": "{\"$gt\": 1}"}),
        ("/v1/accounts/acc-1/leads", {"phone": "+14155550123", "region": "usa"}),
        ("/v1/accounts/a%20b/leads", {}),
    ],
)
async def test_malformed_requests_are_refused(http, path, params) -> None:
    assert (await http.get(path, params=params, headers=AUTH)).status_code == 422
