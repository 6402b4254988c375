"""Processed commands: the record that makes every handler idempotent by command id.

The first delivery of a command claims it by inserting its id into a unique index; a redelivery
(or a second consumer during a rebalance) gets `DuplicateKeyError` and answers with the stored
reply instead of running the handler again. The reply is filled in by the claimant alone, so that
one update races with nobody (DESIGN.md section 4, rule 3).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from switchboard.contracts import Command, Reply, utcnow
from switchboard.messaging.errors import StoreUnavailable
from switchboard.mongo import IndexSpec, store_failed

COLLECTION = "processed_commands"

INDEXES = [IndexSpec(COLLECTION, [("account_id", 1), ("claimed_at", -1)], name="account_claimed")]


@dataclass(frozen=True)
class StoredCommand:
    command_id: str
    reply: Reply | None
    account_id: str | None = None


class ProcessedCommands(Protocol):
    async def claim(self, command: Command[Any]) -> StoredCommand | None:
        """Claim the command; None when this caller won, else what is stored for it."""

    async def complete(self, command: Command[Any], reply: Reply) -> None:
        """Store the reply of a command this caller claimed."""

    async def get(self, command_id: str) -> StoredCommand | None: ...


class MongoProcessedCommands:
    def __init__(self, db: AsyncDatabase) -> None:
        self._collection = db[COLLECTION]

    async def claim(self, command: Command[Any]) -> StoredCommand | None:
        try:
            await self._collection.insert_one(
                {
                    "_id": command.command_id,
                    "type": command.type.value,
                    "account_id": command.account_id,
                    "call_id": command.call_id,
                    "claimed_at": utcnow(),
                    "deadline": command.deadline,
                    "reply": None,
                }
            )
            return None
        except DuplicateKeyError:
            return await self.get(command.command_id) or StoredCommand(command.command_id, None)
        except PyMongoError as e:
            if store_failed(e):
                raise StoreUnavailable(str(e)) from e
            raise

    async def complete(self, command: Command[Any], reply: Reply) -> None:
        try:
            # `_id` alone: FerretDB (SQLite) uses an index only for a filter on `_id` and nothing else,
            # and scans the whole, ever-growing collection for any other. The document is the one
            # this caller inserted with its own account when it claimed the command.
            await self._collection.update_one(
                {"_id": command.command_id},
                {"$set": {"reply": reply.model_dump(mode="json"), "completed_at": utcnow()}},
            )
        except PyMongoError as e:
            if store_failed(e):
                raise StoreUnavailable(str(e)) from e
            raise

    async def get(self, command_id: str) -> StoredCommand | None:
        try:
            doc = await self._collection.find_one({"_id": command_id})
        except PyMongoError as e:
            if store_failed(e):
                raise StoreUnavailable(str(e)) from e
            raise
        if doc is None:
            return None
        reply = Reply.model_validate(doc["reply"]) if doc.get("reply") else None
        return StoredCommand(command_id, reply, doc.get("account_id"))


class InMemoryProcessedCommands:
    """The same contract in a dict, for unit tests."""

    def __init__(self) -> None:
        self._replies: dict[str, Reply | None] = {}
        self._accounts: dict[str, str] = {}
        self._lock = asyncio.Lock()

    async def claim(self, command: Command[Any]) -> StoredCommand | None:
        async with self._lock:
            if command.command_id in self._replies:
                return await self.get(command.command_id)
            self._replies[command.command_id] = None
            self._accounts[command.command_id] = command.account_id
            return None

    async def complete(self, command: Command[Any], reply: Reply) -> None:
        self._replies[command.command_id] = reply

    async def get(self, command_id: str) -> StoredCommand | None:
        if command_id not in self._replies:
            return None
        return StoredCommand(command_id, self._replies[command_id], self._accounts.get(command_id))


async def wait_for_reply(
    store: ProcessedCommands, command_id: str, *, until: datetime, interval: float = 0.02
) -> Reply | None:
    """Poll for the reply of a command someone else claimed, giving up at `until`."""
    while utcnow() < until:
        stored = await store.get(command_id)
        if stored is not None and stored.reply is not None:
            return stored.reply
        await asyncio.sleep(interval)
    return None
