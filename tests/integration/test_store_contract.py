"""DESIGN.md section 4, rule 1: on whichever store runs, an insert into a unique index decides a race."""

import asyncio

import pytest
from pymongo.errors import DuplicateKeyError

from switchboard.mongo import put_by_id

pytestmark = pytest.mark.integration

TRIALS = 10
WRITERS = 25


async def test_exactly_one_of_concurrent_inserts_of_one_key_wins(database) -> None:
    claims = database["claims"]
    for trial in range(TRIALS):

        async def claim(writer: int) -> bool:
            try:
                await claims.insert_one({"_id": f"call-{trial}:transfer:1", "writer": writer})
                return True
            except DuplicateKeyError:
                return False

        wins = await asyncio.gather(*(claim(w) for w in range(WRITERS)))
        assert sum(wins) == 1, f"trial {trial}: {sum(wins)} winners"


async def test_exactly_one_of_concurrent_inserts_on_a_compound_unique_index_wins(database) -> None:
    leads = database["leads"]
    await leads.create_index([("account_id", 1), ("phone_e164", 1)], unique=True)
    for trial in range(TRIALS):

        async def insert(writer: int) -> bool:
            try:
                await leads.insert_one({"account_id": "acc", "phone_e164": f"+1415555{trial:04d}", "writer": writer})
                return True
            except DuplicateKeyError:
                return False

        wins = await asyncio.gather(*(insert(w) for w in range(WRITERS)))
        assert sum(wins) == 1, f"trial {trial}: {sum(wins)} winners"
        assert await leads.count_documents({"phone_e164": f"+1415555{trial:04d}"}) == 1


async def test_concurrent_upserts_on_a_unique_key_leave_one_document(database) -> None:
    leads = database["upserted"]
    await leads.create_index([("account_id", 1), ("phone_e164", 1)], unique=True)

    async def upsert(writer: int) -> None:
        try:
            await leads.update_one(
                {"account_id": "acc", "phone_e164": "+14155550100"},
                {"$setOnInsert": {"first_writer": writer}},
                upsert=True,
            )
        except DuplicateKeyError:
            pass  # lost the race to insert; the winner's document stands

    await asyncio.gather(*(upsert(w) for w in range(WRITERS)))
    assert await leads.count_documents({"phone_e164": "+14155550100"}) == 1


async def test_concurrent_first_writes_of_one_id_by_put_by_id_all_succeed_and_leave_one_document(database) -> None:
    """Rule 3's admin writes: a replace-or-insert by `_id` never fails for a writer that lost the insert."""
    settings = database["settings"]
    for trial in range(TRIALS):
        key = f"acc-{trial}"
        inserted = await asyncio.gather(
            *(put_by_id(settings, key, {"account_id": key, "writer": w}) for w in range(WRITERS))
        )
        assert sum(inserted) >= 1
        assert await settings.count_documents({"account_id": key}) == 1
