"""MongoDB repositories of contacts-svc (database `contacts`). Every key starts with the account id.

Everything a caller lookup reads is found by `_id` alone: a contact is keyed
`<account_id>/<contact_id>`, a connected source `<account_id>/<source>`, the account's settings
`<account_id>`, and a number through the slots of `contact_numbers` (`ContactRepository`). Ids and
E.164 numbers never contain `/` (`IDENTIFIER`), so keys are unambiguous. MongoDB answers such a read
from its `_id` index, and so does the project's FerretDB build (infra/ferretdb/build); FerretDB
1.24 (SQLite) hands only a filter on `_id` alone to SQLite, and decodes and matches every document
of the collection in Go for any other.

Races are decided by inserts into unique indexes (a contact's `_id`, a number slot's `_id`); `$set`
updates are only used for admin edits and for filling in tokens, which nobody needs to win.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from contacts_svc.model import CONNECTABLE, AccessToken, Contact, PhoneEntry, SourceConnection, SourceStatus
from switchboard.contracts.contacts import ContactSource
from switchboard.mongo import IndexSpec, put_by_id

CONTACTS = "contacts"
CONTACT_NUMBERS = "contact_numbers"
SOURCES = "sources"
ACCOUNT_SETTINGS = "account_settings"
OUTBOX = "outbox"
RELAY_CLAIMS = "relay_claims"

INDEXES = [
    # Pages the admin list on MongoDB; `_id` already decides which insert creates a contact.
    IndexSpec(CONTACTS, [("account_id", 1), ("contact_id", 1)], unique=True, name="account_contact"),
    IndexSpec(OUTBOX, [("created_at", 1)], name="created"),
    IndexSpec(RELAY_CLAIMS, [("claimed_at", 1)], name="claimed"),
]

SLOT_CLAIM_ATTEMPTS = 32
"""Slots of one number a write may lose to concurrent writers before it gives up."""
_MAX_READS_AT_ONCE = 16

_CONTACT_FIELDS = {"_id": 0, "account_id": 1, "contact_id": 1, "name": 1, "company": 1, "email": 1, "phones": 1, "created_at": 1, "updated_at": 1}


def contact_key(account_id: str, contact_id: str) -> str:
    return f"{account_id}/{contact_id}"


def slot_key(account_id: str, e164: str, n: int) -> str:
    return f"{account_id}/{e164}/{n}"


def _contact_document(contact: Contact) -> dict[str, Any]:
    return {"_id": contact_key(contact.account_id, contact.contact_id), **contact.model_dump(mode="python")}


def slot_document(account_id: str, e164: str, n: int, contact_id: str) -> dict[str, Any]:
    return {"_id": slot_key(account_id, e164, n), "account_id": account_id, "e164": e164, "contact_id": contact_id}


def _contact(doc: dict[str, Any]) -> Contact:
    return Contact(
        account_id=doc["account_id"],
        contact_id=doc["contact_id"],
        name=doc["name"],
        company=doc.get("company"),
        email=doc.get("email"),
        phones=[PhoneEntry(**p) for p in doc.get("phones", [])],
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )


class NumberIndexBusy(Exception):
    """So many concurrent writers added the same number that this write lost every slot it tried."""


class ContactRepository:
    """Contacts, and the index that finds them by number with reads by `_id` only.

    The index of a number in an account is a chain of slots in `contact_numbers`, keyed
    `<account_id>/<e164>/<n>` for n = 0, 1, 2, ...; each slot names one contact that held the number.
    Slots are only ever inserted: before a contact is written, each of its numbers gets a slot naming
    it unless the chain has one already, at the first free n (a concurrent writer that took that n
    first makes the insert fail, and the next n is tried). A chain therefore has no gaps, and a reader
    walks it by `_id` until the first missing n.

    Replacing or deleting a contact leaves its slots in place; a lookup reads each named contact by
    `_id` and keeps it only if it still exists and still holds the number. The same contact named
    twice (two concurrent writes of it) is one match. So a chain is as long as the number of distinct
    contacts that ever held the number in the account, and a lookup reads that many slots and
    contacts (plus the missing slot that ends the chain), however many contacts the account or the
    store holds; each read is an index read.

    A contact is written only after its slots, so a crash in between leaves a slot naming a contact
    that does not hold the number (skipped by lookups), never a contact its number does not find.
    """

    def __init__(self, db: AsyncDatabase) -> None:
        self._contacts = db[CONTACTS]
        self._slots = db[CONTACT_NUMBERS]

    async def insert(self, contact: Contact) -> bool:
        """True when this call created the contact; False when the id is taken in the account."""
        await self._index_numbers(contact)
        try:
            await self._contacts.insert_one(_contact_document(contact))
            return True
        except DuplicateKeyError:
            return False

    async def replace(self, contact: Contact) -> None:
        await self._index_numbers(contact)
        document = _contact_document(contact)
        del document["_id"], document["created_at"]
        await self._contacts.update_one({"_id": contact_key(contact.account_id, contact.contact_id)}, {"$set": document})

    async def get(self, account_id: str, contact_id: str) -> Contact | None:
        doc = await self._contacts.find_one({"_id": contact_key(account_id, contact_id)}, _CONTACT_FIELDS)
        return _contact(doc) if doc else None

    async def delete(self, account_id: str, contact_id: str) -> Contact | None:
        """The deleted contact, or None when there was none (or a concurrent delete got it first)."""
        contact = await self.get(account_id, contact_id)
        if contact is None:
            return None
        result = await self._contacts.delete_one({"_id": contact_key(account_id, contact_id)})
        return contact if result.deleted_count else None

    async def find_by_number(self, account_id: str, e164: str, *, limit: int) -> list[Contact]:
        """The contacts holding `e164`, by contact id, at most `limit`: reads by `_id` only."""
        return await self._holding(account_id, e164, after=None, limit=limit)

    async def list(
        self, account_id: str, *, after: str | None, limit: int, number: str | None = None
    ) -> list[Contact]:
        """A page of the account's contacts by contact id; with `number`, of those holding it (by `_id` reads)."""
        if number is not None:
            return await self._holding(account_id, number, after=after, limit=limit)
        query: dict[str, Any] = {"account_id": account_id}
        if after is not None:
            query["contact_id"] = {"$gt": after}
        cursor = self._contacts.find(query, _CONTACT_FIELDS).sort("contact_id", ASCENDING).limit(limit)
        return [_contact(doc) async for doc in cursor]

    async def _holding(self, account_id: str, e164: str, *, after: str | None, limit: int) -> list[Contact]:
        named = sorted({slot["contact_id"] for slot in await self._chain(account_id, e164)})
        candidates = [contact_id for contact_id in named if after is None or contact_id > after]
        found: list[Contact] = []
        for start in range(0, len(candidates), _MAX_READS_AT_ONCE):
            batch = candidates[start : start + _MAX_READS_AT_ONCE]
            contacts = await asyncio.gather(*(self.get(account_id, contact_id) for contact_id in batch))
            found += [c for c in contacts if c is not None and e164 in c.numbers]
            if len(found) >= limit:
                break
        return found[:limit]

    async def _chain(self, account_id: str, e164: str, *, start: int = 0) -> list[dict[str, Any]]:
        """The slots of a number from n = `start` up to the first missing one.

        Read by `_id`, a few at once: two first (most numbers have one slot, or none), then twice as
        many each round.
        """
        slots: list[dict[str, Any]] = []
        n, reads = start, 2
        while True:
            found = await asyncio.gather(
                *(self._slots.find_one({"_id": slot_key(account_id, e164, i)}) for i in range(n, n + reads))
            )
            for slot in found:
                if slot is None:
                    return slots
                slots.append(slot)
            n, reads = n + reads, min(reads * 2, _MAX_READS_AT_ONCE)

    async def _index_numbers(self, contact: Contact) -> None:
        for number in contact.numbers:
            await self._claim_slot(contact.account_id, number, contact.contact_id)

    async def _claim_slot(self, account_id: str, e164: str, contact_id: str) -> None:
        """Make the number's chain name the contact: nothing when a slot does, else an insert at its end."""
        n = 0
        for _ in range(SLOT_CLAIM_ATTEMPTS):
            chain = await self._chain(account_id, e164, start=n)
            if any(slot["contact_id"] == contact_id for slot in chain):
                return
            n += len(chain)
            try:
                await self._slots.insert_one(slot_document(account_id, e164, n, contact_id))
                return
            except DuplicateKeyError:
                continue
        raise NumberIndexBusy(
            f"{SLOT_CLAIM_ATTEMPTS} concurrent writes took every slot this one tried for a number of contact {contact_id!r}."
        )


def source_key(account_id: str, source: ContactSource) -> str:
    return f"{account_id}/{source.value}"


def _connection(doc: dict[str, Any]) -> SourceConnection:
    return SourceConnection(
        account_id=doc["account_id"],
        source=doc["source"],
        refresh_token=doc["refresh_token"],
        access_token=doc.get("access_token"),
        access_token_expires_at=doc.get("access_token_expires_at"),
        status=doc.get("status", SourceStatus.connected),
        last_error=doc.get("last_error"),
        connected_at=doc["connected_at"],
    )


class SourceRepository:
    """Connected address books and their OAuth tokens (the only place tokens are read or written)."""

    def __init__(self, db: AsyncDatabase) -> None:
        self._sources = db[SOURCES]

    async def save(self, connection: SourceConnection) -> None:
        """Connect, or reconnect with new tokens: one document per (account, source) either way."""
        document = {
            "account_id": connection.account_id,
            "source": connection.source.value,
            "refresh_token": connection.refresh_token.get_secret_value(),
            "access_token": connection.access_token.get_secret_value() if connection.access_token else None,
            "access_token_expires_at": connection.access_token_expires_at,
            "status": connection.status.value,
            "last_error": connection.last_error,
            "connected_at": connection.connected_at,
        }
        await put_by_id(self._sources, source_key(connection.account_id, connection.source), document)

    async def get(self, account_id: str, source: ContactSource) -> SourceConnection | None:
        doc = await self._sources.find_one({"_id": source_key(account_id, source)})
        return _connection(doc) if doc else None

    async def list(self, account_id: str) -> list[SourceConnection]:
        """The account's connections, by source: one read by `_id` per source that can be connected."""
        connections = await asyncio.gather(*(self.get(account_id, source) for source in CONNECTABLE))
        return sorted((c for c in connections if c is not None), key=lambda c: c.source.value)

    async def delete(self, account_id: str, source: ContactSource) -> bool:
        result = await self._sources.delete_one({"_id": source_key(account_id, source)})
        return bool(result.deleted_count)

    async def store_token(self, connection: SourceConnection, token: AccessToken) -> None:
        """Keep a refreshed access token, unless the connection was replaced meanwhile."""
        update: dict[str, Any] = {
            "access_token": token.value.get_secret_value(),
            "access_token_expires_at": token.expires_at,
            "status": SourceStatus.connected.value,
            "last_error": None,
        }
        if token.refresh_token is not None:
            update["refresh_token"] = token.refresh_token.get_secret_value()
        await self._sources.update_one(self._same_grant(connection), {"$set": update})

    async def mark_unauthorized(self, connection: SourceConnection, reason: str) -> None:
        await self._sources.update_one(
            self._same_grant(connection),
            {"$set": {"status": SourceStatus.reauthorization_required.value, "last_error": reason}},
        )

    @staticmethod
    def _same_grant(connection: SourceConnection) -> dict[str, Any]:
        """The connection's document as long as it holds this grant.

        Not `_id` alone, so FerretDB scans `sources` (at most two documents per account) for it; it
        runs only when a token is refreshed or refused, not on every lookup.
        """
        return {
            "_id": source_key(connection.account_id, connection.source),
            "refresh_token": connection.refresh_token.get_secret_value(),
        }


class AccountSettingsRepository:
    """Per-account contacts settings, keyed by the account id.

    Today only the region national numbers of admin writes are read with.
    """

    def __init__(self, db: AsyncDatabase) -> None:
        self._settings = db[ACCOUNT_SETTINGS]

    async def region(self, account_id: str) -> str | None:
        doc = await self._settings.find_one({"_id": account_id}, {"region": 1})
        return doc.get("region") if doc else None

    async def set_region(self, account_id: str, region: str | None, now: datetime) -> None:
        await put_by_id(self._settings, account_id, {"account_id": account_id, "region": region, "updated_at": now})


@dataclass(frozen=True)
class OutboxEntry:
    event_id: str
    account_id: str
    payload: dict[str, Any]
    created_at: datetime


class OutboxRepository:
    """Change events not yet taken by Kafka, and the relay's claims on them.

    `due` and the claims housekeeping span every account on purpose: the relay re-sends each entry
    exactly as it was recorded, keyed by its own account.
    """

    def __init__(self, db: AsyncDatabase) -> None:
        self._outbox = db[OUTBOX]
        self._claims = db[RELAY_CLAIMS]

    async def add(self, event_id: str, account_id: str, payload: dict[str, Any], created_at: datetime) -> None:
        await self._outbox.insert_one(
            {"_id": event_id, "account_id": account_id, "payload": payload, "created_at": created_at}
        )

    async def remove(self, account_id: str, event_id: str) -> None:
        await self._outbox.delete_one({"_id": event_id, "account_id": account_id})

    async def due(self, *, created_before: datetime, limit: int) -> list[OutboxEntry]:
        cursor = self._outbox.find({"created_at": {"$lt": created_before}}).sort("created_at", ASCENDING).limit(limit)
        return [
            OutboxEntry(doc["_id"], doc["account_id"], doc["payload"], doc["created_at"]) async for doc in cursor
        ]

    async def claim(self, key: str, account_id: str, now: datetime) -> bool:
        """True for exactly one of several relays claiming the same key."""
        try:
            await self._claims.insert_one({"_id": key, "account_id": account_id, "claimed_at": now})
            return True
        except DuplicateKeyError:
            return False

    async def forget_claims(self, *, claimed_before: datetime) -> None:
        await self._claims.delete_many({"claimed_at": {"$lt": claimed_before}})
