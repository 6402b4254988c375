"""Storage of accounts, personas, custom tools, users and queues: one collection each, keyed by ids.

Everything here is admin data that nobody writes concurrently, so a PUT is a replace-or-insert on
the document's unique key (DESIGN.md section 4, rule 3); two PUTs of the same id leave one document.
Every key starts with `account_id`, so every read and write is scoped to one account.

A document's `_id` is its key values joined by `/` ("acme/reception/tool1"; ids never contain `/`,
see `IDENTIFIER`), and the key fields stay in the document. FerretDB (SQLite) serves only a filter on
`_id` alone from an index and reads every document of the collection for any other, so everything a
tool call reads is a read by `_id`: an account, a persona, a user, a queue, and a persona's tool set,
which `MongoTools` keeps in one document per persona. Listing an account's items (admin pages) scans.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure

from switchboard.mongo import IndexSpec, ensure_indexes, put_by_id

from persona_svc.model import Account, CustomTool, Persona, Queue, User

M = TypeVar("M", bound=BaseModel)

ACCOUNTS = "accounts"
PERSONAS = "personas"
TOOLS = "tools"
PERSONA_TOOLS = "persona_tools"
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


def document_id(*parts: str) -> str:
    """The `_id` of the document keyed by `parts`, the account first."""
    return "/".join(parts)


class Store(Protocol[M]):
    async def get(self, **key: str) -> M | None: ...
    async def list(self, account_id: str, **where: str) -> list[M]: ...
    async def put(self, item: M) -> bool: ...
    async def delete(self, **key: str) -> bool: ...
    async def delete_all(self, account_id: str, **where: str) -> int: ...
    async def list_all(self) -> list[M]: ...


class ToolStore(Store[CustomTool], Protocol):
    async def of_persona(self, account_id: str, persona_id: str) -> list[CustomTool]:
        """The persona's tools in tool id order, read by `_id` (the tool-call path)."""


class MongoStore(Generic[M]):
    """One model in one collection, each document under its key's `document_id`.

    `flat` names model properties also stored top-level (for indexes).
    """

    def __init__(
        self, db: AsyncDatabase, collection: str, model: type[M], key: tuple[str, ...], flat: tuple[str, ...] = ()
    ) -> None:
        assert key[0] == "account_id", "every key starts with the account"
        self._collection = db[collection]
        self._model = model
        self._key = key
        self._flat = flat

    def _by_id(self, values: Mapping[str, str]) -> dict[str, str]:
        assert set(values) == set(self._key), f"a document is addressed by its whole key {self._key}"
        return {"_id": document_id(*(values[k] for k in self._key))}

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
        document = await self._collection.find_one(self._by_id(key))
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
        by_id = self._by_id({k: getattr(item, k) for k in self._key})
        try:
            return await put_by_id(self._collection, by_id["_id"], self._document(item))
        except DuplicateKeyError as e:
            raise DuplicateName(str(e)) from e
        except OperationFailure as e:
            # FerretDB reports a unique index violated by a replace as an internal error.
            if "UNIQUE constraint failed" in str(e):
                raise DuplicateName(str(e)) from e
            raise

    async def delete(self, **key: str) -> bool:
        result = await self._collection.delete_one(self._by_id(key))
        return result.deleted_count > 0

    async def delete_all(self, account_id: str, **where: str) -> int:
        result = await self._collection.delete_many(self._filter({"account_id": account_id, **where}))
        return result.deleted_count


class MongoTools(MongoStore[CustomTool]):
    """Custom tools, and each persona's tool set as one document of `persona_tools` (`_id` account/persona).

    A tool call names its tool, and the `tools` collection can find a name only by a scan, so the
    tool-call path reads the set instead. The set is derived data: every write of a persona's tools
    then rebuilds its set from them until the set reads back equal to them. The writer whose rebuild
    lands last checks it against a read made after it, so however writes interleave the set ends equal
    to the tools. A request that fails between writing a tool and its set leaves the set behind until
    it is repeated, as it does with its `persona.updated` event.
    """

    def __init__(self, db: AsyncDatabase) -> None:
        super().__init__(db, TOOLS, CustomTool, ("account_id", "persona_id", "tool_id"), flat=("name",))
        self._sets = db[PERSONA_TOOLS]

    async def of_persona(self, account_id: str, persona_id: str) -> list[CustomTool]:
        tool_set = await self._sets.find_one({"_id": document_id(account_id, persona_id)})
        return [self._load(document) for document in tool_set["tools"]] if tool_set else []

    async def put(self, item: CustomTool) -> bool:
        created = await super().put(item)
        await self._rebuild(item.account_id, item.persona_id)
        return created

    async def delete(self, **key: str) -> bool:
        """Also rebuilds when nothing was deleted: repeating a DELETE repairs a set left behind."""
        deleted = await super().delete(**key)
        await self._rebuild(key["account_id"], key["persona_id"])
        return deleted

    async def delete_all(self, account_id: str, **where: str) -> int:
        deleted = await super().delete_all(account_id, **where)
        scope = self._filter({"account_id": account_id, **{k: v for k, v in where.items() if k == "persona_id"}})
        for persona_id in [tool_set["persona_id"] async for tool_set in self._sets.find(scope)]:
            await self._rebuild(account_id, persona_id)
        return deleted

    async def _rebuild(self, account_id: str, persona_id: str) -> None:
        """Write the persona's set until a read of it, made after reading the tools, equals them.

        It goes round again only while other writers change the same persona's tools (admin edits).
        """
        by_id = {"_id": document_id(account_id, persona_id)}
        scope = self._filter({"account_id": account_id, "persona_id": persona_id})
        while True:
            tools = [
                {k: v for k, v in document.items() if k != "_id"}
                async for document in self._collection.find(scope).sort("tool_id", 1)
            ]
            tool_set = await self._sets.find_one(by_id)
            if (tool_set["tools"] if tool_set else []) == tools:
                return
            if tools:
                # Two first writers of one set may both insert; the loser goes round again and
                # replaces what the winner wrote.
                with contextlib.suppress(DuplicateKeyError):
                    await self._sets.replace_one(by_id, {**scope, "tools": tools}, upsert=True)
            else:
                await self._sets.delete_one(by_id)


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


class MemoryTools(MemoryStore[CustomTool]):
    def __init__(self) -> None:
        super().__init__(("account_id", "persona_id", "tool_id"), unique=("name",))

    async def of_persona(self, account_id: str, persona_id: str) -> list[CustomTool]:
        return await self.list(account_id, persona_id=persona_id)


@dataclass(frozen=True)
class Repositories:
    accounts: Store[Account]
    personas: Store[Persona]
    tools: ToolStore
    users: Store[User]
    queues: Store[Queue]


def mongo_repositories(db: AsyncDatabase) -> Repositories:
    return Repositories(
        accounts=MongoStore(db, ACCOUNTS, Account, ("account_id",)),
        personas=MongoStore(db, PERSONAS, Persona, ("account_id", "persona_id")),
        tools=MongoTools(db),
        users=MongoStore(db, USERS, User, ("account_id", "user_id")),
        queues=MongoStore(db, QUEUES, Queue, ("account_id", "queue_id")),
    )


def memory_repositories() -> Repositories:
    return Repositories(
        accounts=MemoryStore(("account_id",)),
        personas=MemoryStore(("account_id", "persona_id")),
        tools=MemoryTools(),
        users=MemoryStore(("account_id", "user_id")),
        queues=MemoryStore(("account_id", "queue_id")),
    )
