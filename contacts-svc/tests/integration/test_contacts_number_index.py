"""The number index on the real store: concurrent admin writes sharing a number, and a lookup that
only ever reads by `_id` alone (an index read on MongoDB; on FerretDB the only filter it hands to
SQLite instead of decoding every document of every account in Go)."""

import asyncio
from datetime import timedelta

import pytest
from pymongo import AsyncMongoClient

from contacts_svc.cache import LookupCache
from contacts_svc.handlers import lookup_contact
from contacts_svc.lookup import ContactFinder
from contacts_svc.model import SourceConnection, now
from contacts_svc.repository import (
    CONTACT_NUMBERS,
    AccountSettingsRepository,
    ContactRepository,
    SourceRepository,
    slot_key,
)
from switchboard.contracts import CallContext, Command, CommandType
from switchboard.contracts.contacts import ContactLookup, ContactSource, LookupContact
from switchboard.testing.queries import QueryLog

pytestmark = pytest.mark.integration

SHARED = "+14155550123"
OTHER = "+16502530000"


def path(account_id: str, rest: str) -> str:
    return f"/admin/v1/accounts/{account_id}{rest}"


async def put(admin, account_id: str, contact_id: str, name: str, *numbers: str) -> int:
    response = await admin.put(
        path(account_id, f"/contacts/{contact_id}"),
        json={"name": name, "phone_numbers": [{"number": n} for n in numbers]},
    )
    assert response.status_code in (200, 201), response.text
    return response.status_code


async def delete(admin, account_id: str, contact_id: str) -> None:
    assert (await admin.delete(path(account_id, f"/contacts/{contact_id}"))).status_code == 204


async def chain(database, account_id: str, e164: str) -> list[str]:
    named = []
    while (slot := await database[CONTACT_NUMBERS].find_one({"_id": slot_key(account_id, e164, len(named))})) is not None:
        named.append(slot["contact_id"])
    return named


async def test_concurrent_creates_replaces_and_deletes_sharing_a_number_leave_exactly_the_live_contacts(
    admin, requester, database, account
) -> None:
    await asyncio.gather(*(put(admin, account, f"c{i}", f"Person {i}", SHARED) for i in range(8)))

    await asyncio.gather(
        *(put(admin, account, f"c{i}", f"Person {i}", SHARED, OTHER) for i in range(8, 12)),
        put(admin, account, "c9", "Person 9", SHARED, OTHER),
        put(admin, account, "c0", "Person 0", OTHER),
        put(admin, account, "c1", "Person 1", OTHER),
        put(admin, account, "c2", "Person 2 Renamed", SHARED),
        delete(admin, account, "c3"),
        delete(admin, account, "c4"),
    )

    live = ["c10", "c11", "c2", "c5", "c6", "c7", "c8", "c9"]
    found = await admin.post(path(account, "/contacts/search"), json={"phone_number": SHARED, "limit": 500})
    assert [c["id"] for c in found.json()["contacts"]] == live
    assert [c["id"] for c in (await admin.post(path(account, "/contacts/search"), json={"phone_number": OTHER})).json()["contacts"]] == [
        "c0", "c1", "c10", "c11", "c8", "c9"
    ]
    context = CallContext(account_id=account, persona_id="per-1", call_id=f"call-{account}", region="US")
    result = await requester.request(CommandType.lookup_contact, context, LookupContact(phone_number=SHARED), timeout=10)
    assert isinstance(result, ContactLookup)
    assert sorted(c.name for c in result.contacts) == sorted(
        ["Person 2 Renamed", *(f"Person {i}" for i in (5, 6, 7, 8, 9, 10, 11))]
    )

    named = await chain(database, account, SHARED)
    assert set(named) == {f"c{i}" for i in range(12)}
    assert (await database[CONTACT_NUMBERS].count_documents({"account_id": account, "e164": SHARED})) == len(named)


async def test_a_number_given_back_to_a_contact_reuses_its_slot(admin, database, account) -> None:
    await put(admin, account, "ann", "Ann", SHARED)
    await put(admin, account, "ann", "Ann", OTHER)
    await put(admin, account, "ann", "Ann", SHARED)
    await delete(admin, account, "ann")
    await put(admin, account, "ann", "Ann", SHARED)
    assert await chain(database, account, SHARED) == ["ann"]
    assert await chain(database, account, OTHER) == ["ann"]


async def test_a_lookup_reads_only_by_id_and_the_store_takes_each_filter_as_a_key(
    admin, contacts_settings, account
) -> None:
    for i in range(3):
        await put(admin, account, f"c{i}", f"Person {i}", SHARED)
    await put(admin, account, "c0", "Person 0", OTHER)
    assert (await admin.put(path(account, "/settings"), json={"region": "US"})).status_code == 200

    queries = QueryLog(contacts_settings.mongo_database)
    client = AsyncMongoClient(contacts_settings.mongo_uri, tz_aware=True, event_listeners=[queries])
    try:
        db = client[contacts_settings.mongo_database]
        sources = SourceRepository(db)
        await sources.save(
            SourceConnection(account_id=account, source=ContactSource.google, refresh_token="r", connected_at=now())
        )
        finder = ContactFinder(
            ContactRepository(db), sources, {}, LookupCache(0, 1), source_timeout=5.0, max_matches=10
        )
        command = Command[LookupContact].build(
            CommandType.lookup_contact,
            CallContext(account_id=account, persona_id="per-1", call_id="call-1", region=None),
            LookupContact(phone_number="(415) 555-0123"),
            timeout=timedelta(seconds=10),
            reply_to="r",
        )
        queries.recording = True
        result = await lookup_contact(command, finder=finder, regions=AccountSettingsRepository(db), reply_margin=0)
        queries.recording = False

        assert sorted(c.name for c in result.contacts) == ["Person 1", "Person 2"]
        reads = queries.seen
        assert reads and {query.command for query in reads} == {"find"}
        for query in reads:
            assert query.by_id and query.filter["_id"].startswith(account), query
        assert {collection for _, collection, _ in reads} == {"account_settings", "sources", "contacts", CONTACT_NUMBERS}

        for _, collection, query in reads:
            explained = await db.command("explain", {"find": collection, "filter": query, "limit": 1})
            if "filterPushdown" in explained:  # FerretDB: the filter went to SQLite, not to a scan in Go
                assert explained["filterPushdown"] is True, (collection, query)
            else:
                assert "COLLSCAN" not in str(explained["queryPlanner"]["winningPlan"]), (collection, query)
    finally:
        await client.close()
