"""The leads database: leads, cases, and the relay's claims.

Races are decided by inserts into unique indexes only (DESIGN.md section 4): one lead per
`(account_id, match_key)`, one case per `command_id`. Whoever gets `DuplicateKeyError` lost and
reads the winner's document. The one update, `event_published`, is written by the inserter (or,
after a crash, the relay) with the same value, never as a guard.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from leads_svc.model import Case, Lead
from switchboard.mongo import IndexSpec

LEADS = "leads"
CASES = "cases"
RELAY_CLAIMS = "relay_claims"

INDEXES: list[IndexSpec] = [
    IndexSpec(LEADS, [("account_id", 1), ("match_key", 1)], unique=True, name="one_lead_per_caller"),
    IndexSpec(LEADS, [("account_id", 1), ("_id", -1)], name="account_newest"),
    IndexSpec(LEADS, [("event_published", 1), ("created_at", 1)], name="unpublished"),
    IndexSpec(CASES, [("command_id", 1)], unique=True, name="one_case_per_command"),
    IndexSpec(CASES, [("account_id", 1), ("lead_id", 1), ("_id", -1)], name="lead_newest"),
    IndexSpec(CASES, [("event_published", 1), ("created_at", 1)], name="unpublished"),
]


class StoreInconsistent(RuntimeError):
    """A unique index refused an insert, yet the document that holds the key cannot be read."""


class Leads(Protocol):
    async def add(self, lead: Lead) -> tuple[Lead, bool]:
        """The stored lead of `lead`'s account and match key, and whether this call inserted it."""

    async def get(self, account_id: str, lead_id: str) -> Lead | None: ...

    async def find_by_phone(self, account_id: str, phone_e164: str) -> Lead | None: ...

    async def page(self, account_id: str, *, before: str | None, limit: int) -> list[Lead]:
        """Newest first; `before` is the id of the last lead of the previous page."""

    async def mark_published(self, account_id: str, lead_id: str) -> None: ...

    async def unpublished(self, *, created_before: datetime, limit: int) -> list[Lead]: ...


class Cases(Protocol):
    async def add(self, case: Case) -> tuple[Case, bool]:
        """The stored case of `case`'s command, and whether this call inserted it."""

    async def page(self, account_id: str, lead_id: str, *, before: str | None, limit: int) -> list[Case]: ...

    async def count_by_lead(self, account_id: str, lead_ids: Sequence[str]) -> dict[str, int]: ...

    async def mark_published(self, account_id: str, case_id: str) -> None: ...

    async def unpublished(self, *, created_before: datetime, limit: int) -> list[Case]: ...


class RelayClaims(Protocol):
    async def claim(self, key: str, account_id: str, at: datetime) -> bool:
        """True for exactly one of several relays claiming the same key."""


def _newest_first(account_filter: dict, before: str | None) -> dict:
    return {**account_filter, "_id": {"$lt": before}} if before else account_filter


class MongoLeads:
    def __init__(self, db: AsyncDatabase) -> None:
        self._leads = db[LEADS]

    async def add(self, lead: Lead) -> tuple[Lead, bool]:
        try:
            await self._leads.insert_one(lead.document())
            return lead, True
        except DuplicateKeyError:
            doc = await self._leads.find_one({"account_id": lead.account_id, "match_key": lead.match_key})
            if doc is None:
                raise StoreInconsistent(f"lead key of account {lead.account_id} is taken but unreadable") from None
            return Lead.model_validate(doc), False

    async def get(self, account_id: str, lead_id: str) -> Lead | None:
        doc = await self._leads.find_one({"account_id": account_id, "_id": lead_id})
        return Lead.model_validate(doc) if doc else None

    async def find_by_phone(self, account_id: str, phone_e164: str) -> Lead | None:
        doc = await self._leads.find_one({"account_id": account_id, "match_key": phone_e164})
        return Lead.model_validate(doc) if doc else None

    async def page(self, account_id: str, *, before: str | None, limit: int) -> list[Lead]:
        cursor = self._leads.find(_newest_first({"account_id": account_id}, before)).sort("_id", DESCENDING)
        return [Lead.model_validate(doc) async for doc in cursor.limit(limit)]

    async def mark_published(self, account_id: str, lead_id: str) -> None:
        await self._leads.update_one({"account_id": account_id, "_id": lead_id}, {"$set": {"event_published": True}})

    async def unpublished(self, *, created_before: datetime, limit: int) -> list[Lead]:
        # The relay's scan spans every account on purpose: it only re-sends each lead's own event,
        # which carries that lead's account_id.
        cursor = self._leads.find({"event_published": False, "created_at": {"$lt": created_before}})
        return [Lead.model_validate(doc) async for doc in cursor.sort("created_at", 1).limit(limit)]


class MongoCases:
    def __init__(self, db: AsyncDatabase) -> None:
        self._cases = db[CASES]

    async def add(self, case: Case) -> tuple[Case, bool]:
        try:
            await self._cases.insert_one(case.document())
            return case, True
        except DuplicateKeyError:
            doc = await self._cases.find_one({"account_id": case.account_id, "command_id": case.command_id})
            if doc is None:
                raise StoreInconsistent(f"case of command {case.command_id} is taken but unreadable") from None
            return Case.model_validate(doc), False

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

    async def mark_published(self, account_id: str, case_id: str) -> None:
        await self._cases.update_one({"account_id": account_id, "_id": case_id}, {"$set": {"event_published": True}})

    async def unpublished(self, *, created_before: datetime, limit: int) -> list[Case]:
        cursor = self._cases.find({"event_published": False, "created_at": {"$lt": created_before}})
        return [Case.model_validate(doc) async for doc in cursor.sort("created_at", 1).limit(limit)]


class MongoRelayClaims:
    def __init__(self, db: AsyncDatabase) -> None:
        self._claims = db[RELAY_CLAIMS]

    async def claim(self, key: str, account_id: str, at: datetime) -> bool:
        try:
            await self._claims.insert_one({"_id": key, "account_id": account_id, "claimed_at": at})
            return True
        except DuplicateKeyError:
            return False
