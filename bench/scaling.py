"""How `lookup_contact`'s native query grows with the number of native contacts in the store.

Contacts and the slots that index their numbers are inserted with insert_many in batches, in
contacts-svc's own document shape, into a database of their own; the query timed is contacts-svc's
own `ContactRepository.find_by_number` (the native half of a lookup), for numbers that exist, each
asked once. The store's plan for the reads it makes (a slot and a contact, each by `_id`) is
recorded with it.

On its own, into a database it creates and drops (1M contacts take minutes to load, so only on
request):

    scripts/uv run --frozen python -m bench.scaling --database bench_scale_mine [--sizes 1000 10000] [--million]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections.abc import Sequence
from typing import Any

from pymongo import AsyncMongoClient

from bench.stats import percentile
from bench.workload import contact_number, insert_contacts
from contacts_svc.repository import (
    CONTACT_NUMBERS,
    CONTACTS,
    INDEXES,
    ContactRepository,
    contact_key,
    slot_key,
)
from switchboard.mongo import connect, ensure_indexes
from switchboard.settings import SwitchboardSettings

ACCOUNT = "bench-scale"
DEFAULT_SIZES = (1_000, 10_000, 100_000)
MILLION = 1_000_000


async def query_plan(client: AsyncMongoClient, database: str, n: int) -> dict[str, Any]:
    """The store's plan for the two reads a lookup of contact `n`'s number makes."""
    reads = [
        (CONTACT_NUMBERS, {"_id": slot_key(ACCOUNT, contact_number(n), 0)}),
        (CONTACTS, {"_id": contact_key(ACCOUNT, f"bench-{n}")}),
    ]
    plans, pushdown = [], []
    for collection, query in reads:
        explained = await client[database].command("explain", {"find": collection, "filter": query, "limit": 1})
        planner = explained.get("queryPlanner", {})
        plans.append(f"{collection}: {planner.get('Plan') or planner.get('winningPlan')}")
        pushdown.append(explained.get("filterPushdown"))
    return {"plan": plans, "filter_pushdown": None if None in pushdown else all(pushdown)}


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

    At most `budget_seconds` of lookups per size (at least two), so a slow store does not hold the
    shared database for minutes.
    """
    repository = ContactRepository(client[database])
    rng = random.Random(3)
    rows: list[dict[str, Any]] = []
    have = 0
    for size in sorted(sizes):
        insert_seconds = await insert_contacts(client, database, ACCOUNT, size - have, first=have)
        have = size
        picked = [rng.randrange(size) for _ in range(lookups)]
        numbers = [contact_number(n) for n in picked]
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
                **await query_plan(client, database, picked[0]),
            }
        )
    return rows


async def main(database: str, sizes: Sequence[int], lookups: int) -> None:
    client = connect(SwitchboardSettings().mongo_uri, app_name="switchboard-bench")
    try:
        await ensure_indexes(client[database], INDEXES)
        for row in await contacts_scaling(client, database, sizes, lookups=lookups):
            print(json.dumps(row, default=str), flush=True)
    finally:
        await client.drop_database(database)
        await client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="lookup_contact's native query at growing numbers of contacts")
    parser.add_argument("--database", required=True, help="a database of its own: created, filled and dropped")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--million", action="store_true", help=f"also {MILLION:,} contacts (minutes of inserts)")
    parser.add_argument("--lookups", type=int, default=20)
    options = parser.parse_args()
    asyncio.run(main(options.database, [*options.sizes, *([MILLION] if options.million else [])], options.lookups))
