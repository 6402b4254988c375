"""Repeated tool calls are one effect: the first claim of a repeat key decides (DESIGN.md §8).

Real clients send the same function call twice (a model that emits duplicate calls, a client that
retries after a timeout). A side-effecting tool call gets a repeat key: the client's
`Idempotency-Key` header where it sends one, else (account, call, tool, canonical arguments).
The first call with a key claims it by inserting `{_id: "<key>.<n>", command_id}` into a unique
index (the store contract's only arbiter of a race) and sends its command with that id; a later
call within the window finds the claim and sends the *same command id*, so the service answers
with its stored reply and acts no second time — also when the first call's effect landed after the
gateway gave up waiting for it.

A window ends: a repeat key without `Idempotency-Key` is one effect for `window` seconds after its
claim; after that the same call makes claim `n + 1`. A claim whose call the service answered
"unavailable" (nothing was done) is released by its own caller, so "try again in a moment" acts.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from pymongo.asynchronous.database import AsyncDatabase

from switchboard.contracts import new_command_id, utcnow
from switchboard.mongo import DuplicateKeyError
from switchboard.retention import Retained

log = logging.getLogger(__name__)

COLLECTION = "repeat_claims"
RETENTION = timedelta(days=1)
"""How long a claim is kept; an `Idempotency-Key` is honoured this long."""
MAX_GENERATIONS = 1000

RETAINED = Retained(COLLECTION, "claimed_at", RETENTION)


@dataclass(frozen=True, slots=True)
class Claim:
    command_id: str
    repeat: bool
    """An earlier call holds the key: this call gets that call's result, and acts no second time."""
    conflict: bool = False
    """The client's Idempotency-Key was used before for another tool or other arguments."""


class RepeatStore(Protocol):
    async def insert(self, document: dict[str, Any]) -> None:
        """Insert a claim; raises DuplicateKeyError when its `_id` exists."""

    async def find(self, claim_id: str) -> dict[str, Any] | None: ...

    async def release(self, claim_id: str, command_id: str) -> None:
        """Mark the claim released (by the caller that made it, the only writer of that document)."""


def fingerprint(account_id: str, call_id: str, tool: str, arguments: dict[str, Any]) -> str:
    """What makes two calls the same: account, call, tool and arguments in canonical JSON."""
    canonical = json.dumps([account_id, call_id, tool, arguments], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def client_key(account_id: str, idempotency_key: str) -> str:
    return hashlib.sha256(json.dumps(["idempotency-key", account_id, idempotency_key]).encode()).hexdigest()


class Repeats:
    def __init__(self, store: RepeatStore) -> None:
        self._store = store

    async def claim(self, fingerprint: str, *, window: float, idempotency_key: str | None = None, account_id: str) -> Claim:
        """Claim the call's repeat key, or find the claim of the call it repeats."""
        if idempotency_key is not None:
            key, window_ends = client_key(account_id, idempotency_key), False
        else:
            key, window_ends = fingerprint, True
        now = utcnow()
        for generation in range(MAX_GENERATIONS):
            claim_id = f"{key}.{generation}"
            command_id = new_command_id()
            try:
                await self._store.insert(
                    {"_id": claim_id, "command_id": command_id, "fingerprint": fingerprint, "claimed_at": now}
                )
                return Claim(command_id, repeat=False)
            except DuplicateKeyError:
                held = await self._store.find(claim_id)
            if held is None or held.get("released"):
                continue
            if window_ends and _age(held, now) > window:
                continue
            if held.get("fingerprint") != fingerprint:
                return Claim(held["command_id"], repeat=True, conflict=True)
            return Claim(held["command_id"], repeat=True)
        log.warning("repeat key %s... has %d generations; treated as new", key[:12], MAX_GENERATIONS)
        return Claim(new_command_id(), repeat=False)

    async def release(self, fingerprint: str, claim: Claim, *, idempotency_key: str | None, account_id: str) -> None:
        """Let the next call with this key act: the service did nothing for this claim's command."""
        key = client_key(account_id, idempotency_key) if idempotency_key is not None else fingerprint
        for generation in range(MAX_GENERATIONS):
            held = await self._store.find(f"{key}.{generation}")
            if held is None:
                return
            if held["command_id"] == claim.command_id:
                await self._store.release(held["_id"], claim.command_id)
                return


def _age(held: dict[str, Any], now: datetime) -> float:
    claimed_at = held["claimed_at"]
    if claimed_at.tzinfo is None:
        claimed_at = claimed_at.replace(tzinfo=now.tzinfo)
    return (now - claimed_at).total_seconds()


class MongoRepeats:
    def __init__(self, db: AsyncDatabase) -> None:
        self._collection = db[COLLECTION]

    async def insert(self, document: dict[str, Any]) -> None:
        await self._collection.insert_one(document)

    async def find(self, claim_id: str) -> dict[str, Any] | None:
        return await self._collection.find_one({"_id": claim_id})

    async def release(self, claim_id: str, command_id: str) -> None:
        await self._collection.update_one({"_id": claim_id, "command_id": command_id}, {"$set": {"released": True}})


class InMemoryRepeats:
    """The same contract in a dict, for unit tests."""

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}

    async def insert(self, document: dict[str, Any]) -> None:
        if document["_id"] in self.documents:
            raise DuplicateKeyError(f"claim {document['_id']} exists")
        self.documents[document["_id"]] = dict(document)

    async def find(self, claim_id: str) -> dict[str, Any] | None:
        found = self.documents.get(claim_id)
        return dict(found) if found is not None else None

    async def release(self, claim_id: str, command_id: str) -> None:
        found = self.documents.get(claim_id)
        if found is not None and found["command_id"] == command_id:
            found["released"] = True
