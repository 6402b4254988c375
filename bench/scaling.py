"""How `lookup_contact`'s query grows with the number of native contacts in the store.

Contacts are inserted with insert_many in batches, in the shape contacts-svc stores, into a
database of their own; the query timed is contacts-svc's own `ContactRepository.find_by_number`
(the native half of a lookup), for numbers that exist, each asked once. The store's query plan
is recorded with it: whether the filter reached the index or the collection was scanned.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

from pymongo import AsyncMongoClient

from bench.stats import percentile
from bench.workload import contact_number, insert_contacts
from contacts_svc.repository import CONTACTS, ContactRepository

ACCOUNT = "bench-scale"


async def query_plan(client: AsyncMongoClient, database: str, number: str) -> dict[str, Any]:
    explained = await client[database].command(
        "explain", {"find": CONTACTS, "filter": {"account_id": ACCOUNT, "phone_e164": number}}
    )
    planner = explained.get("queryPlanner", {})
    return {
        "plan": planner.get("Plan") or planner.get("winningPlan"),
        "filter_pushdown": explained.get("filterPushdown"),
    }


async def lookups_ms(repository: ContactRepository, numbers: Sequence[str]) -> list[float]:
    timings = []
    for number in numbers:
        started = time.perf_counter()
        found = await repository.find_by_number(ACCOUNT, number, limit=10)
        timings.append((time.perf_counter() - started) * 1000)
        if not found:
            raise RuntimeError(f"contact {number} was inserted but not found")
    return timings


async def contacts_scaling(
    client: AsyncMongoClient, database: str, sizes: Sequence[int], *, lookups: int, budget_seconds: float = 60.0
) -> list[dict[str, Any]]:
    """Grow one collection through `sizes`, timing the inserts and `lookups` lookups at each size.

    At most `budget_seconds` of lookups per size (at least two), so a scan of a large collection
    does not hold the shared database for minutes.
    """
    repository = ContactRepository(client[database])
    rng = random.Random(3)
    rows: list[dict[str, Any]] = []
    have = 0
    for size in sorted(sizes):
        insert_seconds = await insert_contacts(client, database, ACCOUNT, size - have, first=have)
        have = size
        numbers = [contact_number(rng.randrange(size)) for _ in range(lookups)]
        timings = await lookups_ms(repository, numbers[:2])
        spent = sum(timings) / 1000
        for number in numbers[2:]:
            if spent > budget_seconds:
                break
            timings += await lookups_ms(repository, [number])
            spent = sum(timings) / 1000
        ordered = sorted(timings)
        rows.append(
            {
                "contacts": size,
                "inserted": size - (rows[-1]["contacts"] if rows else 0),
                "insert_seconds": round(insert_seconds, 2),
                "lookups": len(timings),
                "lookup_ms": {
                    "p50": round(percentile(ordered, 50), 2),
                    "p99": round(percentile(ordered, 99), 2),
                    "max": round(ordered[-1], 2),
                },
                **await query_plan(client, database, numbers[0]),
            }
        )
    return rows
