"""Records kept only for idempotency or relaying are removed once their retention has passed.

MongoDB removes them itself through a TTL index on their timestamp. FerretDB 1.24 has no TTL index
(`createIndexes` with `expireAfterSeconds` answers NotImplemented, code 238), so where the store
refuses one, a sweep deletes what is older than the retention every `interval` seconds. Deleting a
record only ever removes what nobody needs any more: a record's retention is far longer than any
deadline, so a command that could still find it would be dropped as expired first.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from switchboard.contracts import utcnow
from switchboard.periodic import Periodic

log = logging.getLogger(__name__)

NOT_IMPLEMENTED = 238


@dataclass(frozen=True, slots=True)
class Retained:
    """Documents of `collection` are removed `keep` after the datetime in their field `field`."""

    collection: str
    field: str
    keep: timedelta

    @property
    def index_name(self) -> str:
        return f"{self.field}_ttl"


class Retention(Periodic):
    def __init__(self, db: AsyncDatabase, retained: Sequence[Retained], *, interval: float = 600) -> None:
        super().__init__(interval=interval, name="retention")
        self._db = db
        self._retained = list(retained)
        self.swept: list[Retained] = []
        """What this store cannot expire itself: the sweep removes it."""

    async def start(self) -> None:
        self.swept = [r for r in self._retained if not await self._expire_by_index(r)]
        if self.swept:
            await super().start()

    async def _expire_by_index(self, retained: Retained) -> bool:
        try:
            await self._db[retained.collection].create_index(
                [(retained.field, 1)],
                name=retained.index_name,
                expireAfterSeconds=int(retained.keep.total_seconds()),
            )
            return True
        except OperationFailure as e:
            if e.code != NOT_IMPLEMENTED:
                raise
            return False

    async def run_once(self) -> dict[str, int]:
        """Delete what is past its retention; how many documents, by collection."""
        removed: dict[str, int] = {}
        for retained in self.swept:
            result = await self._db[retained.collection].delete_many(
                {retained.field: {"$lt": utcnow() - retained.keep}}
            )
            removed[retained.collection] = result.deleted_count
        if any(removed.values()):
            log.info("retention removed %s", removed)
        return removed
