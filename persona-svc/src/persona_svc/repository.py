"""Storage of accounts, personas, custom tools, users and queues: one collection each, keyed by ids.

Everything here is admin data that nobody writes concurrently, so a PUT is a replace-or-insert on
the document's unique key (DESIGN.md section 4, rule 3); two PUTs of the same id leave one document.
Every key starts with `account_id`, so every read and write is scoped to one account.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure

from switchboard.mongo import IndexSpec, ensure_indexes

from persona_svc.model import Account, CustomTool, Persona, Queue, User

M = TypeVar("M", bound=BaseModel)

ACCOUNTS = "accounts"
PERSONAS = "personas"
TOOLS = "tools"
USERS = "users"
QUEUES = "queues"

INDEXES: list[IndexSpec] = [
    IndexSpec(ACCOUNTS, [("account_id", 1)], unique=True, name="account"),
    IndexSpec(PERSONAS, [("account_id", 1), ("persona_id", 1)], unique=True, name="account_persona"),
    IndexSpec(TOOLS, [("account_id", 1), ("persona_id", 1), ("tool_id", 1)], unique=True, name="account_persona_tool"),
    IndexSpec(TOOLS, [("account_id", 1), ("persona_id", 1), ("name", 1)], unique=True, name="account_persona_name"),
    IndexSpec(USERS, [("account_id", 1), ("user_id", 1)], unique=True, name="account_user"),
    IndexSpec(QUEUES, [("account_id", 1), ("queue_id", 1)], unique=True, name="account_queue"),
]


async def create_indexes(db: AsyncDatabase) -> None:
    """One createIndexes call per index: FerretDB 1.24.2 drops the connection when one call asks
    for two or more indexes that already exist (every restart), which `ensure_indexes` would do
    for the two indexes of `tools`."""
    for spec in INDEXES:
        await ensure_indexes(db, [spec])


class DuplicateName(Exception):
    """Another document already holds a value that must be unique (a tool name in a persona)."""


class Store(Protocol[M]):
    async def get(self, **key: str) -> M | None: ...
    async def list(self, account_id: str, **where: str) -> list[M]: ...
    async def put(self, item: M) -> bool: ...
    async def delete(self, **key: str) -> bool: ...
    async def delete_all(self, account_id: str, **where: str) -> int: ...
    async def list_all(self) -> list[M]: ...


class MongoStore(Generic[M]):
    """One model in one collection. `flat` names model properties also stored top-level (for indexes)."""

    def __init__(
        self, db: AsyncDatabase, collection: str, model: type[M], key: tuple[str, ...], flat: tuple[str, ...] = ()
    ) -> None:
        assert key[0] == "account_id", "every key starts with the account"
        self._collection = db[collection]
        self._model = model
        self._key = key
        self._flat = flat

    def _filter(self, values: Mapping[str, str]) -> dict[str, str]:
        assert "account_id" in values, "every query filters by account"
        return dict(values)

    def _document(self, item: M) -> dict[str, Any]:
        document = item.model_dump(mode="json")
        document.update({name: getattr(item, name) for name in self._flat})
        return document

    def _load(self, document: Mapping[str, Any]) -> M:
        skip = {"_id", *self._flat}
        return self._model.model_validate({k: v for k, v in document.items() if k not in skip})

    async def get(self, **key: str) -> M | None:
        document = await self._collection.find_one(self._filter(key))
        return self._load(document) if document else None

    async def list(self, account_id: str, **where: str) -> list[M]:
        cursor = self._collection.find(self._filter({"account_id": account_id, **where})).sort(
            [(k, 1) for k in self._key]
        )
        return [self._load(document) async for document in cursor]

    async def list_all(self) -> list[M]:
        """Across accounts: only the platform admin's account list reads this way."""
        return [self._load(document) async for document in self._collection.find({}).sort([(k, 1) for k in self._key])]

    async def put(self, item: M) -> bool:
        """Insert or replace by key; True when it was created."""
        key = {k: getattr(item, k) for k in self._key}
        try:
            result = await self._collection.replace_one(self._filter(key), self._document(item), upsert=True)
        except DuplicateKeyError as e:
            raise DuplicateName(str(e)) from e
        except OperationFailure as e:
            # FerretDB reports a unique index violated by a replace as an internal error.
            if "UNIQUE constraint failed" in str(e):
                raise DuplicateName(str(e)) from e
            raise
        return result.upserted_id is not None

    async def delete(self, **key: str) -> bool:
        result = await self._collection.delete_one(self._filter(key))
        return result.deleted_count > 0

    async def delete_all(self, account_id: str, **where: str) -> int:
        result = await self._collection.delete_many(self._filter({"account_id": account_id, **where}))
        return result.deleted_count


class MemoryStore(Generic[M]):
    """The same contract in a dict, for unit tests."""

    def __init__(self, key: tuple[str, ...], unique: tuple[str, ...] = ()) -> None:
        self._key = key
        self._unique = unique
        self._items: dict[tuple[str, ...], M] = {}

    async def get(self, **key: str) -> M | None:
        return self._items.get(tuple(key[k] for k in self._key))

    async def list(self, account_id: str, **where: str) -> list[M]:
        where = {"account_id": account_id, **where}
        return [item for k, item in sorted(self._items.items()) if all(getattr(item, f) == v for f, v in where.items())]

    async def list_all(self) -> list[M]:
        return [item for _, item in sorted(self._items.items())]

    async def put(self, item: M) -> bool:
        key = tuple(getattr(item, k) for k in self._key)
        if self._unique:
            scope = [getattr(item, k) for k in self._key[:-1]] + [getattr(item, u) for u in self._unique]
            for other_key, other in self._items.items():
                other_scope = [getattr(other, k) for k in self._key[:-1]] + [getattr(other, u) for u in self._unique]
                if other_key != key and other_scope == scope:
                    raise DuplicateName(f"{self._unique} already used")
        created = key not in self._items
        self._items[key] = item
        return created

    async def delete(self, **key: str) -> bool:
        return self._items.pop(tuple(key[k] for k in self._key), None) is not None

    async def delete_all(self, account_id: str, **where: str) -> int:
        doomed = [k for k, item in self._items.items() if item in await self.list(account_id, **where)]
        for k in doomed:
            del self._items[k]
        return len(doomed)


@dataclass(frozen=True)
class Repositories:
    accounts: Store[Account]
    personas: Store[Persona]
    tools: Store[CustomTool]
    users: Store[User]
    queues: Store[Queue]


def mongo_repositories(db: AsyncDatabase) -> Repositories:
    return Repositories(
        accounts=MongoStore(db, ACCOUNTS, Account, ("account_id",)),
        personas=MongoStore(db, PERSONAS, Persona, ("account_id", "persona_id")),
        tools=MongoStore(db, TOOLS, CustomTool, ("account_id", "persona_id", "tool_id"), flat=("name",)),
        users=MongoStore(db, USERS, User, ("account_id", "user_id")),
        queues=MongoStore(db, QUEUES, Queue, ("account_id", "queue_id")),
    )


def memory_repositories() -> Repositories:
    return Repositories(
        accounts=MemoryStore(("account_id",)),
        personas=MemoryStore(("account_id", "persona_id")),
        tools=MemoryStore(("account_id", "persona_id", "tool_id"), unique=("name",)),
        users=MemoryStore(("account_id", "user_id")),
        queues=MemoryStore(("account_id", "queue_id")),
    )
