"""MongoDB access shared by the services: one client per process, indexes created at start-up.

Correctness may rely only on inserts into unique indexes (DESIGN.md section 4): the embedded store,
FerretDB, applies updates as read-then-write without a lock.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, DuplicateKeyError, OperationFailure

__all__ = ["DuplicateKeyError", "IndexSpec", "connect", "ensure_indexes", "store_failed"]

INTERNAL_ERROR = 1


@dataclass(frozen=True)
class IndexSpec:
    collection: str
    keys: list[tuple[str, int]]
    unique: bool = False
    name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def model(self) -> IndexModel:
        kwargs: dict[str, Any] = {"unique": self.unique, **self.options}
        if self.name:
            kwargs["name"] = self.name
        return IndexModel(self.keys, **kwargs)


def connect(uri: str, *, app_name: str) -> AsyncMongoClient:
    """A client for the process. It connects lazily, on first use."""
    return AsyncMongoClient(
        uri,
        appname=app_name,
        tz_aware=True,
        serverSelectionTimeoutMS=5000,
        connectTimeoutMS=3000,
    )


async def ensure_indexes(db: AsyncDatabase, specs: Iterable[IndexSpec]) -> None:
    """Create the indexes that do not exist yet, one command per index.

    FerretDB 1.24.2 drops the connection (a panic in its handler) when one `createIndexes` names
    several indexes and they exist already, which is every restart of a service and every second
    replica; one index per command is answered normally.
    """
    for spec in specs:
        await db[spec.collection].create_indexes([spec.model()])


async def put_by_id(collection: AsyncCollection, id: str, document: dict[str, Any]) -> bool:
    """Replace the document with this `_id`, or insert it; True when this call inserted it.

    For documents nobody writes concurrently but by hand (admin edits: the last write wins). Two
    first writes of one `_id` can both try to insert it, and the loser gets DuplicateKeyError on
    MongoDB and FerretDB alike; its second try finds the document and replaces it. A document that
    clashes with another unique index fails the second try too, and that error is raised.
    """
    try:
        result = await collection.replace_one({"_id": id}, document, upsert=True)
    except DuplicateKeyError:
        result = await collection.replace_one({"_id": id}, document, upsert=True)
    return result.upserted_id is not None


def store_failed(error: BaseException) -> bool:
    """The database failed, not the request: it is unreachable, or it reports an internal error.

    FerretDB on SQLite answers a write that waited too long for the database lock (SQLITE_BUSY) with
    InternalError: a moment later the same request succeeds, so it is a retryable outage, not a bug.
    """
    if isinstance(error, ConnectionFailure):
        return True
    return isinstance(error, OperationFailure) and error.code == INTERNAL_ERROR
