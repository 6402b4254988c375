"""The admin API on the real database and Kafka: idempotent writes, imports with per-row errors,
source connections whose tokens are stored but never shown."""

import pytest

from contacts_svc.repository import SOURCES

pytestmark = pytest.mark.integration

ANN = "+14155550123"


def path(account: str, rest: str = "") -> str:
    return f"/admin/v1/accounts/{account}{rest}"


async def test_every_route_needs_the_admin_token(admin, account) -> None:
    for authorization in ("", "Bearer wrong", "Basic YWRtaW46YWRtaW4="):
        response = await admin.get(path(account, "/contacts"), headers={"Authorization": authorization})
        assert response.status_code == 401
    refused = await admin.put(
        path(account, "/contacts/c1"), headers={"Authorization": ""}, json={"name": "A", "phone_numbers": [{"number": ANN}]}
    )
    assert refused.status_code == 401
    assert (await admin.get(path(account, "/contacts/c1"))).status_code == 404


async def test_put_creates_then_is_idempotent_then_updates(admin, account, read_events) -> None:
    body = {"name": "Ann Smith", "company": "Acme", "email": "ann@acme.com",
            "phone_numbers": [{"number": "(415) 555-0123", "label": "Mobile"}, {"number": "+49 30 1234567"}]}
    created = await admin.put(path(account, "/contacts/ann"), params={"region": "us"}, json=body)
    assert created.status_code == 201
    assert created.json()["outcome"] == "created"
    contact = created.json()["contact"]
    assert contact["phone_numbers"] == [{"number": ANN, "label": "mobile"}, {"number": "+49301234567", "label": None}]

    again = await admin.put(path(account, "/contacts/ann"), params={"region": "US"}, json=body)
    assert (again.status_code, again.json()["outcome"]) == (200, "unchanged")

    changed = await admin.put(path(account, "/contacts/ann"), json={**body, "phone_numbers": [{"number": "+16502530000"}]})
    assert (changed.status_code, changed.json()["outcome"]) == (200, "updated")
    assert changed.json()["contact"]["created_at"] == contact["created_at"]

    fetched = await admin.get(path(account, "/contacts/ann"))
    assert fetched.json()["phone_numbers"] == [{"number": "+16502530000", "label": None}]
    events = await read_events(account, 2)
    assert [e["event"] for e in events] == ["contact.created", "contact.updated"]
    assert events[1]["previous_phone_numbers"] == [ANN, "+49301234567"]


async def test_bad_input_is_refused_with_a_reason_and_writes_nothing(admin, account) -> None:
    national = await admin.put(path(account, "/contacts/c1"), json={"name": "A", "phone_numbers": [{"number": "415 555 0123"}]})
    assert national.status_code == 422 and "country code" in national.json()["detail"]
    unknown_field = await admin.put(
        path(account, "/contacts/c1"), json={"name": "A", "phone_numbers": [{"number": ANN}], "role": "admin"}
    )
    assert unknown_field.status_code == 422
    bad_number = await admin.put(
        path(account, "/contacts/c1"), json={"name": "A", "phone_numbers": [{"number": ANN}, {"number": "12"}]}
    )
    assert bad_number.status_code == 422 and bad_number.json()["detail"].startswith("Phone number 2:")
    bad_region = await admin.put(path(account, "/contacts/c1"), params={"region": "XX"}, json={"name": "A", "phone_numbers": [{"number": ANN}]})
    assert bad_region.status_code == 422
    bad_id = await admin.put(path(account, "/contacts/has space"), json={"name": "A", "phone_numbers": [{"number": ANN}]})
    assert bad_id.status_code == 422
    assert (await admin.get(path(account, "/contacts"))).json() == {"contacts": [], "next_after": None}


async def test_the_account_region_reads_national_numbers_of_later_writes(admin, account) -> None:
    assert (await admin.put(path(account, "/settings"), json={"region": "de"})).json() == {"region": "DE"}
    response = await admin.post(path(account, "/contacts"), json={"name": "Jürgen", "phone_numbers": [{"number": "030 1234567"}]})
    assert response.status_code == 201
    assert response.json()["contact"]["phone_numbers"][0]["number"] == "+49301234567"
    assert (await admin.get(path(account, "/settings"))).json() == {"region": "DE"}


async def test_list_pages_search_by_number_and_delete(admin, account) -> None:
    for i in range(5):
        await admin.put(path(account, f"/contacts/c{i}"), json={"name": f"P{i}", "phone_numbers": [{"number": ANN if i % 2 else "+16502530000"}]})
    first = (await admin.get(path(account, "/contacts"), params={"limit": 2})).json()
    second = (await admin.get(path(account, "/contacts"), params={"limit": 2, "after": first["next_after"]})).json()
    third = (await admin.get(path(account, "/contacts"), params={"limit": 2, "after": second["next_after"]})).json()
    assert [c["id"] for c in first["contacts"] + second["contacts"] + third["contacts"]] == [f"c{i}" for i in range(5)]
    assert third["next_after"] is None

    found = await admin.post(path(account, "/contacts/search"), json={"phone_number": "(415) 555-0123", "region": "US"})
    assert [c["id"] for c in found.json()["contacts"]] == ["c1", "c3"]

    assert (await admin.delete(path(account, "/contacts/c1"))).status_code == 204
    assert (await admin.get(path(account, "/contacts/c1"))).status_code == 404
    assert (await admin.delete(path(account, "/contacts/c1"))).status_code == 404


async def test_csv_import_writes_good_rows_reports_bad_ones_and_can_run_again(admin, account, requester) -> None:
    csv = (
        "name,company,phone,phone_mobile,notes\n"
        "Ann Smith,Acme,(415) 555-0123,,x\n"
        "No Number,Acme,,,\n"
        "Bad Number,,555,,\n"
        "Bob,,+49 30 1234567,650-253-0000,\n"
    )
    first = await admin.post(path(account, "/contacts/import"), params={"region": "US"}, content=csv,
                             headers={"Content-Type": "text/csv"})
    assert first.status_code == 200, first.text
    assert first.json() == {
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "failed": 2,
        "errors": [
            {"row": 3, "message": "The contact has no phone number."},
            {"row": 4, "message": "Phone number 1: '555' is not a valid phone number."},
        ],
        "ignored_columns": ["notes"],
    }
    again = await admin.post(path(account, "/contacts/import"), params={"region": "US", "format": "csv"}, content=csv)
    assert (again.json()["created"], again.json()["unchanged"]) == (0, 2)
    found = await admin.post(path(account, "/contacts/search"), json={"phone_number": "+16502530000"})
    assert [c["name"] for c in found.json()["contacts"]] == ["Bob"]


async def test_vcard_import_and_refusals_of_unreadable_files(admin, account) -> None:
    vcard = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:vc-1\r\nFN:Ann\r\nTEL;TYPE=CELL:+1 415 555 0123\r\nEND:VCARD\r\n"
    response = await admin.post(path(account, "/contacts/import"), content=vcard, headers={"Content-Type": "text/vcard"})
    assert (response.json()["created"], response.json()["failed"]) == (1, 0)
    assert (await admin.get(path(account, "/contacts/vc-1"))).json()["phone_numbers"] == [{"number": ANN, "label": "mobile"}]

    assert (await admin.post(path(account, "/contacts/import"), content=vcard, headers={"Content-Type": "application/pdf"})).status_code == 415
    assert (await admin.post(path(account, "/contacts/import"), params={"format": "csv"}, content=b"\xff\xfe")).status_code == 422
    assert (await admin.post(path(account, "/contacts/import"), params={"format": "csv"}, content="a,b\n1,2\n")).status_code == 422


async def test_sources_are_checked_stored_with_their_tokens_and_never_shown(
    admin, account, google, microsoft, database, read_events
) -> None:
    refused = await admin.put(path(account, "/sources/google"), json={"refresh_token": "not-known"})
    assert refused.status_code == 422 and "refused the refresh token" in refused.json()["detail"]
    assert (await admin.put(path(account, "/sources/native"), json={"refresh_token": "x"})).status_code == 422

    google.refresh_tokens.add("google-refresh-secret")
    connected = await admin.put(path(account, "/sources/google"), json={"refresh_token": "google-refresh-secret"})
    assert connected.status_code == 200
    assert connected.json()["status"] == "connected"
    assert [r["params"]["query"] for r in google.api_requests] == [""]
    listed = await admin.get(path(account, "/sources"))
    assert [s["source"] for s in listed.json()["sources"]] == ["google"]
    for response in (connected, listed):
        assert "google-refresh-secret" not in response.text and "access-" not in response.text
    stored = await database[SOURCES].find_one({"account_id": account, "source": "google"})
    assert stored["refresh_token"] == "google-refresh-secret" and stored["access_token"] in google.access_tokens

    assert (await admin.delete(path(account, "/sources/google"))).status_code == 204
    assert (await admin.delete(path(account, "/sources/google"))).status_code == 404
    assert (await admin.get(path(account, "/sources"))).json() == {"sources": []}
    events = await read_events(account, 2)
    assert [(e["event"], e["source"]) for e in events] == [
        ("contact_source.connected", "google"),
        ("contact_source.disconnected", "google"),
    ]
