"""API keys in the gateway's own database (`gateway`, collection `api_keys`).

Keys are created by an insert (the key id is the unique `_id`, so a collision is a DuplicateKeyError,
never an overwrite) and revoked by an admin edit that nobody races with.
"""

from __future__ import annotations

from typing import Any, Protocol

from pymongo.asynchronous.database import AsyncDatabase

from gateway.model import ApiKeyRecord
from switchboard.contracts import utcnow
from switchboard.mongo import DuplicateKeyError, IndexSpec

COLLECTION = "api_keys"

INDEXES = [IndexSpec(COLLECTION, [("account_id", 1), ("created_at", 1)], name="account_created")]


class ApiKeyStore(Protocol):
    async def find(self, key_id: str) -> ApiKeyRecord | None:
        """The key with this id, whatever its account: the key itself is what names the tenant."""

    async def insert(self, record: ApiKeyRecord) -> None:
        """Store a new key; raises DuplicateKeyError when the key id exists."""

    async def list(self, account_id: str) -> list[ApiKeyRecord]: ...

    async def revoke(self, account_id: str, key_id: str) -> ApiKeyRecord | None:
        """Mark the account's key revoked (idempotent); None when the account has no such key."""


def _to_document(record: ApiKeyRecord) -> dict[str, Any]:
    return {
        "_id": record.key_id,
        "account_id": record.account_id,
        "digest": record.digest,
        "label": record.label,
        "created_at": record.created_at,
        "revoked_at": record.revoked_at,
    }


def _from_document(doc: dict[str, Any]) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=doc["_id"],
        account_id=doc["account_id"],
        digest=doc["digest"],
        label=doc.get("label", ""),
        created_at=doc["created_at"],
        revoked_at=doc.get("revoked_at"),
    )


class MongoApiKeys:
    def __init__(self, db: AsyncDatabase) -> None:
        self._collection = db[COLLECTION]

    async def find(self, key_id: str) -> ApiKeyRecord | None:
        # The one query not filtered by account: authentication is how the account is learned.
        doc = await self._collection.find_one({"_id": key_id})
        return _from_document(doc) if doc else None

    async def insert(self, record: ApiKeyRecord) -> None:
        await self._collection.insert_one(_to_document(record))

    async def list(self, account_id: str) -> list[ApiKeyRecord]:
        cursor = self._collection.find({"account_id": account_id}).sort([("created_at", 1), ("_id", 1)])
        return [_from_document(doc) async for doc in cursor]

    async def revoke(self, account_id: str, key_id: str) -> ApiKeyRecord | None:
        await self._collection.update_one(
            {"_id": key_id, "account_id": account_id, "revoked_at": None},
            {"$set": {"revoked_at": utcnow()}},
        )
        doc = await self._collection.find_one({"_id": key_id, "account_id": account_id})
        return _from_document(doc) if doc else None


class InMemoryApiKeys:
    """The same contract in a dict, for unit tests."""

    def __init__(self) -> None:
        self._records: dict[str, ApiKeyRecord] = {}

    async def find(self, key_id: str) -> ApiKeyRecord | None:
        return self._records.get(key_id)

    async def insert(self, record: ApiKeyRecord) -> None:
        if record.key_id in self._records:
            raise DuplicateKeyError(f"key id {record.key_id} exists")
        self._records[record.key_id] = record

    async def list(self, account_id: str) -> list[ApiKeyRecord]:
        return sorted(
            (r for r in self._records.values() if r.account_id == account_id), key=lambda r: (r.created_at, r.key_id)
        )

    async def revoke(self, account_id: str, key_id: str) -> ApiKeyRecord | None:
        record = self._records.get(key_id)
        if record is None or record.account_id != account_id:
            return None
        if record.revoked_at is None:
            record = record.model_copy(update={"revoked_at": utcnow()})
            self._records[key_id] = record
        return record
