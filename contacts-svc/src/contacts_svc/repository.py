"""MongoDB repositories of contacts-svc (database `contacts`). Every query filters by account_id.

Races are decided by inserts into unique indexes (a contact id per account, a source per account);
`$set` updates are only used for admin edits and for filling in tokens, which nobody needs to win.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from contacts_svc.model import AccessToken, Contact, PhoneEntry, SourceConnection, SourceStatus
from switchboard.contracts.contacts import ContactSource
from switchboard.mongo import IndexSpec

CONTACTS = "contacts"
SOURCES = "sources"
ACCOUNT_SETTINGS = "account_settings"
OUTBOX = "outbox"
RELAY_CLAIMS = "relay_claims"

INDEXES = [
    IndexSpec(CONTACTS, [("account_id", 1), ("contact_id", 1)], unique=True, name="account_contact"),
    # Multikey: one entry per stored E.164 number, so a caller lookup is one index hit however
    # many contacts the account has.
    IndexSpec(CONTACTS, [("account_id", 1), ("phone_e164", 1)], name="account_phone"),
    IndexSpec(SOURCES, [("account_id", 1), ("source", 1)], unique=True, name="account_source"),
    IndexSpec(ACCOUNT_SETTINGS, [("account_id", 1)], unique=True, name="account"),
    IndexSpec(OUTBOX, [("created_at", 1)], name="created"),
    IndexSpec(RELAY_CLAIMS, [("claimed_at", 1)], name="claimed"),
]

_CONTACT_FIELDS = {"_id": 0, "account_id": 1, "contact_id": 1, "name": 1, "company": 1, "email": 1, "phones": 1, "created_at": 1, "updated_at": 1}


def _contact_document(contact: Contact) -> dict[str, Any]:
    return {**contact.model_dump(mode="python"), "phone_e164": contact.numbers}


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


class ContactRepository:
    def __init__(self, db: AsyncDatabase) -> None:
        self._contacts = db[CONTACTS]

    async def insert(self, contact: Contact) -> bool:
        """True when this call created the contact; False when the id is taken in the account."""
        try:
            await self._contacts.insert_one(_contact_document(contact))
            return True
        except DuplicateKeyError:
            return False

    async def replace(self, contact: Contact) -> None:
        document = _contact_document(contact)
        del document["created_at"]
        await self._contacts.update_one(
            {"account_id": contact.account_id, "contact_id": contact.contact_id}, {"$set": document}
        )

    async def get(self, account_id: str, contact_id: str) -> Contact | None:
        doc = await self._contacts.find_one({"account_id": account_id, "contact_id": contact_id}, _CONTACT_FIELDS)
        return _contact(doc) if doc else None

    async def delete(self, account_id: str, contact_id: str) -> Contact | None:
        """The deleted contact, or None when there was none (or a concurrent delete got it first)."""
        contact = await self.get(account_id, contact_id)
        if contact is None:
            return None
        result = await self._contacts.delete_one({"account_id": account_id, "contact_id": contact_id})
        return contact if result.deleted_count else None

    async def find_by_number(self, account_id: str, e164: str, *, limit: int) -> list[Contact]:
        cursor = self._contacts.find({"account_id": account_id, "phone_e164": e164}, _CONTACT_FIELDS)
        return [_contact(doc) async for doc in cursor.sort("contact_id", ASCENDING).limit(limit)]

    async def list(
        self, account_id: str, *, after: str | None, limit: int, number: str | None = None
    ) -> list[Contact]:
        query: dict[str, Any] = {"account_id": account_id}
        if after is not None:
            query["contact_id"] = {"$gt": after}
        if number is not None:
            query["phone_e164"] = number
        cursor = self._contacts.find(query, _CONTACT_FIELDS).sort("contact_id", ASCENDING).limit(limit)
        return [_contact(doc) async for doc in cursor]


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
        await self._sources.replace_one(
            {"account_id": connection.account_id, "source": connection.source.value}, document, upsert=True
        )

    async def get(self, account_id: str, source: ContactSource) -> SourceConnection | None:
        doc = await self._sources.find_one({"account_id": account_id, "source": source.value})
        return _connection(doc) if doc else None

    async def list(self, account_id: str) -> list[SourceConnection]:
        cursor = self._sources.find({"account_id": account_id}).sort("source", ASCENDING)
        return [_connection(doc) async for doc in cursor]

    async def delete(self, account_id: str, source: ContactSource) -> bool:
        result = await self._sources.delete_one({"account_id": account_id, "source": source.value})
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
        return {
            "account_id": connection.account_id,
            "source": connection.source.value,
            "refresh_token": connection.refresh_token.get_secret_value(),
        }


class AccountSettingsRepository:
    """Per-account contacts settings; today only the region national numbers of admin writes are read with."""

    def __init__(self, db: AsyncDatabase) -> None:
        self._settings = db[ACCOUNT_SETTINGS]

    async def region(self, account_id: str) -> str | None:
        doc = await self._settings.find_one({"account_id": account_id}, {"region": 1})
        return doc.get("region") if doc else None

    async def set_region(self, account_id: str, region: str | None, now: datetime) -> None:
        await self._settings.update_one(
            {"account_id": account_id},
            {"$set": {"region": region, "updated_at": now}},
            upsert=True,
        )


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
