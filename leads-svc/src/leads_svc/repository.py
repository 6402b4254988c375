"""The leads database: leads, cases, the keys that make them unique, the outbox and the relay's claims.

Races are decided by inserts into unique indexes only (DESIGN.md section 4), here always `_id`:
a lead key `<account>/<match key>` names the one lead of a caller, a case key `<account>/<command
id>` the one case of a command. Whoever gets `DuplicateKeyError` lost and reads the winner's key.
Nothing is ever updated.

FerretDB (SQLite) serves only a filter on `_id` alone from an index and reads every document of the
collection for any other, so everything a tool call or a relay pass reads is found by `_id`, and the
relay lists the outbox, which holds only the events not sent yet. The admin lists (`page`,
`count_by_lead`) filter by account and lead and do read whole collections there.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, TypeVar

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from leads_svc.model import Case, Lead, OutboxEntry, account_key
from switchboard.mongo import IndexSpec

LEADS = "leads"
LEAD_KEYS = "lead_keys"
CASES = "cases"
CASE_KEYS = "case_keys"
OUTBOX = "outbox"
RELAY_CLAIMS = "relay_claims"

R = TypeVar("R", Lead, Case)

INDEXES: list[IndexSpec] = [
    IndexSpec(LEADS, [("account_id", 1), ("_id", -1)], name="account_newest"),
    IndexSpec(CASES, [("account_id", 1), ("lead_id", 1), ("_id", -1)], name="lead_newest"),
    IndexSpec(OUTBOX, [("deadline", 1)], name="due"),
]


class StoreInconsistent(RuntimeError):
    """A unique index refused an insert, yet the document that holds the key cannot be read."""


class Leads(Protocol):
    async def claim(self, account_id: str, match_key: str, lead_id: str) -> str:
        """The id of the lead of `match_key` in the account: `lead_id` when this call claimed the key first."""

    async def add(self, lead: Lead) -> tuple[Lead, bool]:
        """The stored lead of `lead.id`, and whether this call inserted it."""

    async def get(self, account_id: str, lead_id: str) -> Lead | None: ...

    async def find_by_phone(self, account_id: str, phone_e164: str) -> Lead | None: ...

    async def page(self, account_id: str, *, before: str | None, limit: int) -> list[Lead]:
        """Newest first; `before` is the id of the last lead of the previous page."""


class Cases(Protocol):
    async def claim(self, account_id: str, command_id: str, case_id: str) -> str:
        """The id of the case of the command: `case_id` when this call claimed the command first."""

    async def add(self, case: Case) -> tuple[Case, bool]:
        """The stored case of `case.id`, and whether this call inserted it."""

    async def get(self, account_id: str, case_id: str) -> Case | None: ...

    async def page(self, account_id: str, lead_id: str, *, before: str | None, limit: int) -> list[Case]: ...

    async def count_by_lead(self, account_id: str, lead_ids: Sequence[str]) -> dict[str, int]: ...


class Outbox(Protocol):
    async def add(self, entry: OutboxEntry) -> bool:
        """False when the entry is there already (recorded by an earlier run of the same command)."""

    async def remove(self, entry: OutboxEntry) -> None: ...

    async def due(self, *, deadline_before: datetime, limit: int) -> list[OutboxEntry]:
        """Entries of commands whose deadline is before `deadline_before`, oldest first."""


class RelayClaims(Protocol):
    async def claim(self, key: str, account_id: str, at: datetime) -> bool:
        """True for exactly one of several relays claiming the same key."""


def _newest_first(account_filter: dict, before: str | None) -> dict:
    return {**account_filter, "_id": {"$lt": before}} if before else account_filter


async def _claim(keys: AsyncCollection, account_id: str, key: str, field: str, record_id: str) -> str:
    """Insert the key naming `record_id`, or read the record id the key already names."""
    key_id = account_key(account_id, key)
    try:
        await keys.insert_one({"_id": key_id, "account_id": account_id, field: record_id})
        return record_id
    except DuplicateKeyError:
        doc = await keys.find_one({"_id": key_id})
        if doc is None:
            raise StoreInconsistent(f"{keys.name} key of account {account_id} is taken but unreadable") from None
        return str(doc[field])


async def _insert_or_read(records: AsyncCollection, record: R) -> tuple[R, bool]:
    try:
        await records.insert_one(record.document())
        return record, True
    except DuplicateKeyError:
        doc = await records.find_one({"_id": record.id})
        if doc is None:
            raise StoreInconsistent(f"{records.name} id of account {record.account_id} is taken but unreadable") from None
        return type(record).model_validate(doc), False


async def _get(records: AsyncCollection, account_id: str, record_id: str) -> dict | None:
    """The record of the account with this id: read by `_id` alone, then held to the account."""
    doc = await records.find_one({"_id": record_id})
    return doc if doc is not None and doc["account_id"] == account_id else None


class MongoLeads:
    def __init__(self, db: AsyncDatabase) -> None:
        self._leads = db[LEADS]
        self._keys = db[LEAD_KEYS]

    async def claim(self, account_id: str, match_key: str, lead_id: str) -> str:
        return await _claim(self._keys, account_id, match_key, "lead_id", lead_id)

    async def add(self, lead: Lead) -> tuple[Lead, bool]:
        return await _insert_or_read(self._leads, lead)

    async def get(self, account_id: str, lead_id: str) -> Lead | None:
        doc = await _get(self._leads, account_id, lead_id)
        return Lead.model_validate(doc) if doc else None

    async def find_by_phone(self, account_id: str, phone_e164: str) -> Lead | None:
        key = await self._keys.find_one({"_id": account_key(account_id, phone_e164)})
        return await self.get(account_id, key["lead_id"]) if key else None

    async def page(self, account_id: str, *, before: str | None, limit: int) -> list[Lead]:
        cursor = self._leads.find(_newest_first({"account_id": account_id}, before)).sort("_id", DESCENDING)
        return [Lead.model_validate(doc) async for doc in cursor.limit(limit)]


class MongoCases:
    def __init__(self, db: AsyncDatabase) -> None:
        self._cases = db[CASES]
        self._keys = db[CASE_KEYS]

    async def claim(self, account_id: str, command_id: str, case_id: str) -> str:
        return await _claim(self._keys, account_id, command_id, "case_id", case_id)

    async def add(self, case: Case) -> tuple[Case, bool]:
        return await _insert_or_read(self._cases, case)

    async def get(self, account_id: str, case_id: str) -> Case | None:
        doc = await _get(self._cases, account_id, case_id)
        return Case.model_validate(doc) if doc else None

    async def page(self, account_id: str, lead_id: str, *, before: str | None, limit: int) -> list[Case]:
        query = _newest_first({"account_id": account_id, "lead_id": lead_id}, before)
        cursor = self._cases.find(query).sort("_id", DESCENDING).limit(limit)
        return [Case.model_validate(doc) async for doc in cursor]

    async def count_by_lead(self, account_id: str, lead_ids: Sequence[str]) -> dict[str, int]:
        if not lead_ids:
            return {}
        cursor = await self._cases.aggregate(
            [
                {"$match": {"account_id": account_id, "lead_id": {"$in": list(lead_ids)}}},
                {"$group": {"_id": "$lead_id", "count": {"$sum": 1}}},
            ]
        )
        counts = {doc["_id"]: doc["count"] async for doc in cursor}
        return {lead_id: counts.get(lead_id, 0) for lead_id in lead_ids}


class MongoOutbox:
    def __init__(self, db: AsyncDatabase) -> None:
        self._outbox = db[OUTBOX]

    async def add(self, entry: OutboxEntry) -> bool:
        try:
            await self._outbox.insert_one(entry.document())
            return True
        except DuplicateKeyError:
            return False

    async def remove(self, entry: OutboxEntry) -> None:
        await self._outbox.delete_one({"_id": entry.id})

    async def due(self, *, deadline_before: datetime, limit: int) -> list[OutboxEntry]:
        # Spans every account on purpose: each entry is sent as its own account's events.
        cursor = self._outbox.find({"deadline": {"$lt": deadline_before}}).sort("deadline", ASCENDING).limit(limit)
        return [OutboxEntry.model_validate(doc) async for doc in cursor]


class MongoRelayClaims:
    def __init__(self, db: AsyncDatabase) -> None:
        self._claims = db[RELAY_CLAIMS]

    async def claim(self, key: str, account_id: str, at: datetime) -> bool:
        try:
            await self._claims.insert_one({"_id": key, "account_id": account_id, "claimed_at": at})
            return True
        except DuplicateKeyError:
            return False
