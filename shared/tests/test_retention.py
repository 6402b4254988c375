"""Records kept for idempotency are removed after their retention, on the store that runs."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from switchboard.contracts import utcnow
from switchboard.mongo import connect
from switchboard.retention import Retained, Retention

pytestmark = pytest.mark.integration


async def test_records_past_their_retention_are_removed_and_younger_ones_kept(infra) -> None:
    client = connect(infra.mongo_uri, app_name="retention-test")
    name = f"retention_{uuid4().hex[:8]}"
    db = client[name]
    try:
        now = utcnow()
        await db.claims.insert_many(
            [{"_id": "old", "at": now - timedelta(days=2)}, {"_id": "young", "at": now - timedelta(hours=1)}]
        )
        retention = Retention(db, [Retained("claims", "at", timedelta(days=1))], interval=3600)
        await retention.start()
        try:
            if retention.swept:  # a store without TTL indexes (FerretDB): the sweep removes them
                assert await retention.run_once() == {"claims": 1}
                assert [d["_id"] async for d in db.claims.find()] == ["young"]
            else:  # MongoDB expires them itself, through the TTL index
                info = await db.claims.index_information()
                assert info["at_ttl"]["expireAfterSeconds"] == 86_400
        finally:
            await retention.stop()
    finally:
        await client.drop_database(name)
        await client.close()
