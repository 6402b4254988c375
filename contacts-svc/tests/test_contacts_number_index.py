"""The number index of native contacts: insert-only slots per (account, number), read by `_id` only.

The store here is an in-memory fake that answers only filters on `_id` alone (a query the embedded
FerretDB would scan for fails the test) and lets a test play a concurrent writer at the moment of
an insert. The same behaviour on the real FerretDB, with real concurrency, is in tests/integration.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from pymongo.errors import DuplicateKeyError

from contacts_svc.model import Contact, PhoneEntry
from contacts_svc.repository import (
    CONTACT_NUMBERS,
    CONTACTS,
    SLOT_CLAIM_ATTEMPTS,
    ContactRepository,
    NumberIndexBusy,
    slot_key,
)

NOW = datetime(2025, 1, 1, tzinfo=UTC)
ANN = "+14155550123"
BOB = "+16502530000"


class Collection:
    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.before_insert: Callable[[dict[str, Any]], None] | None = None
        self.reads: list[dict[str, Any]] = []

    @staticmethod
    def _key(query: dict[str, Any]) -> str:
        assert set(query) == {"_id"} and isinstance(query["_id"], str), f"not a read by _id alone: {query}"
        return query["_id"]

    async def find_one(self, query: dict[str, Any], projection: dict[str, int] | None = None) -> dict[str, Any] | None:
        self.reads.append(query)
        found = self.documents.get(self._key(query))
        if found is None or projection is None:
            return found
        return {k: v for k, v in found.items() if projection.get(k, 0)}

    async def insert_one(self, document: dict[str, Any]) -> None:
        if self.before_insert is not None:
            self.before_insert(document)
        if document["_id"] in self.documents:
            raise DuplicateKeyError("E11000 duplicate key")
        self.documents[document["_id"]] = dict(document)

    async def update_one(self, query: dict[str, Any], update: dict[str, Any]) -> None:
        found = self.documents.get(self._key(query))
        if found is not None:
            found.update(update["$set"])

    async def delete_one(self, query: dict[str, Any]) -> SimpleNamespace:
        return SimpleNamespace(deleted_count=int(self.documents.pop(self._key(query), None) is not None))


class Database(dict):
    def __missing__(self, name: str) -> Collection:
        self[name] = Collection()
        return self[name]


def contact(contact_id: str, *numbers: str, name: str | None = None, account_id: str = "acc-1") -> Contact:
    return Contact(
        account_id=account_id,
        contact_id=contact_id,
        name=name or contact_id.title(),
        phones=[PhoneEntry(number=n, label="work") for n in numbers],
        created_at=NOW,
        updated_at=NOW,
    )


@pytest.fixture
def db() -> Database:
    return Database()


@pytest.fixture
def repo(db: Database) -> ContactRepository:
    return ContactRepository(db)


def slots(db: Database, account_id: str, e164: str) -> list[str]:
    chain = []
    while (slot := db[CONTACT_NUMBERS].documents.get(slot_key(account_id, e164, len(chain)))) is not None:
        chain.append(slot["contact_id"])
    return chain


async def test_contacts_are_keyed_by_account_and_id_and_each_number_gets_a_slot(db: Database, repo: ContactRepository) -> None:
    assert await repo.insert(contact("ann", ANN, BOB))
    assert set(db[CONTACTS].documents) == {"acc-1/ann"}
    assert set(db[CONTACT_NUMBERS].documents) == {f"acc-1/{ANN}/0", f"acc-1/{BOB}/0"}
    assert db[CONTACT_NUMBERS].documents[f"acc-1/{ANN}/0"] == {
        "_id": f"acc-1/{ANN}/0", "account_id": "acc-1", "e164": ANN, "contact_id": "ann"
    }
    assert not await repo.insert(contact("ann", ANN))
    assert await repo.get("acc-1", "ann") == contact("ann", ANN, BOB)


async def test_a_number_shared_by_contacts_grows_its_chain_once_per_contact(db: Database, repo: ContactRepository) -> None:
    for contact_id in ("carl", "ann", "bea"):
        await repo.insert(contact(contact_id, ANN))
    await repo.replace(contact("ann", ANN, name="Ann Again"))
    await repo.replace(contact("bea", BOB))
    await repo.replace(contact("bea", ANN, BOB))
    assert slots(db, "acc-1", ANN) == ["carl", "ann", "bea"]
    assert [c.contact_id for c in await repo.find_by_number("acc-1", ANN, limit=10)] == ["ann", "bea", "carl"]
    assert [c.contact_id for c in await repo.find_by_number("acc-1", ANN, limit=2)] == ["ann", "bea"]


async def test_stale_slots_of_deleted_and_changed_contacts_are_skipped_not_removed(db: Database, repo: ContactRepository) -> None:
    for contact_id in ("ann", "bea", "carl"):
        await repo.insert(contact(contact_id, ANN))
    await repo.delete("acc-1", "ann")
    await repo.replace(contact("bea", BOB))
    assert [c.contact_id for c in await repo.find_by_number("acc-1", ANN, limit=10)] == ["carl"]
    assert [c.contact_id for c in await repo.find_by_number("acc-1", BOB, limit=10)] == ["bea"]
    assert slots(db, "acc-1", ANN) == ["ann", "bea", "carl"]

    await repo.insert(contact("ann", ANN))
    assert slots(db, "acc-1", ANN) == ["ann", "bea", "carl"]
    assert [c.contact_id for c in await repo.find_by_number("acc-1", ANN, limit=10)] == ["ann", "carl"]


async def test_slots_are_claimed_before_the_contact_is_written(db: Database, repo: ContactRepository) -> None:
    written: list[str] = []
    db[CONTACTS].before_insert = lambda document: written.extend(slots(db, "acc-1", ANN))
    await repo.insert(contact("ann", ANN))
    assert written == ["ann"]


async def test_a_slot_taken_by_a_concurrent_writer_moves_the_claim_to_the_next_n(db: Database, repo: ContactRepository) -> None:
    rivals = iter(["rival-1", "rival-2"])

    def concurrent_writer(document: dict[str, Any]) -> None:
        rival = next(rivals, None)
        if rival is not None:
            db[CONTACT_NUMBERS].documents[document["_id"]] = {**document, "contact_id": rival}

    db[CONTACT_NUMBERS].before_insert = concurrent_writer
    await repo.insert(contact("ann", ANN))
    assert slots(db, "acc-1", ANN) == ["rival-1", "rival-2", "ann"]


async def test_a_concurrent_write_of_the_same_contact_is_not_indexed_twice(db: Database, repo: ContactRepository) -> None:
    def same_contact_elsewhere(document: dict[str, Any]) -> None:
        db[CONTACT_NUMBERS].documents.setdefault(document["_id"], dict(document))

    db[CONTACT_NUMBERS].before_insert = same_contact_elsewhere
    await repo.insert(contact("ann", ANN))
    assert slots(db, "acc-1", ANN) == ["ann"]


async def test_duplicate_slots_of_one_contact_give_one_match(db: Database, repo: ContactRepository) -> None:
    await repo.insert(contact("ann", ANN))
    db[CONTACT_NUMBERS].documents[slot_key("acc-1", ANN, 1)] = {"_id": slot_key("acc-1", ANN, 1), "contact_id": "ann"}
    assert [c.contact_id for c in await repo.find_by_number("acc-1", ANN, limit=10)] == ["ann"]


async def test_a_write_that_loses_every_slot_it_tries_fails_clearly(db: Database, repo: ContactRepository) -> None:
    def always_first(document: dict[str, Any]) -> None:
        db[CONTACT_NUMBERS].documents[document["_id"]] = {**document, "contact_id": f"rival-{document['_id']}"}

    db[CONTACT_NUMBERS].before_insert = always_first
    with pytest.raises(NumberIndexBusy, match="concurrent writes"):
        await repo.insert(contact("ann", ANN))
    assert len(slots(db, "acc-1", ANN)) == SLOT_CLAIM_ATTEMPTS
    assert await repo.get("acc-1", "ann") is None


async def test_a_long_chain_is_read_to_its_end_and_nothing_past_a_gap(db: Database, repo: ContactRepository) -> None:
    for n in range(40):
        await repo.insert(contact(f"c{n:02d}", ANN))
    db[CONTACT_NUMBERS].documents[slot_key("acc-1", ANN, 41)] = {"_id": slot_key("acc-1", ANN, 41), "contact_id": "c00"}
    found = await repo.find_by_number("acc-1", ANN, limit=100)
    assert [c.contact_id for c in found] == [f"c{n:02d}" for n in range(40)]


async def test_numbers_and_contacts_stay_in_their_account(db: Database, repo: ContactRepository) -> None:
    await repo.insert(contact("ann", ANN, account_id="acc-1"))
    await repo.insert(contact("ann", ANN, name="Other Ann", account_id="acc-2"))
    assert [c.name for c in await repo.find_by_number("acc-2", ANN, limit=10)] == ["Other Ann"]
    assert await repo.find_by_number("acc-3", ANN, limit=10) == []


async def test_the_admin_search_by_number_pages_after_an_id_through_the_same_index(db: Database, repo: ContactRepository) -> None:
    for contact_id in ("ann", "bea", "carl"):
        await repo.insert(contact(contact_id, ANN))
    listed = await repo.list("acc-1", after="ann", limit=1, number=ANN)
    assert [c.contact_id for c in listed] == ["bea"]


async def test_a_lookup_reads_only_by_id(db: Database, repo: ContactRepository) -> None:
    await repo.insert(contact("ann", ANN))
    db[CONTACTS].reads.clear()
    db[CONTACT_NUMBERS].reads.clear()
    await repo.find_by_number("acc-1", ANN, limit=10)
    assert db[CONTACTS].reads == [{"_id": "acc-1/ann"}]
    assert db[CONTACT_NUMBERS].reads == [{"_id": f"acc-1/{ANN}/0"}, {"_id": f"acc-1/{ANN}/1"}]
