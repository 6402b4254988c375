"""Changes to an account's contacts and sources: the admin API's use cases.

Each change is written first, then this replica's cache forgets what it touched, then its event is
announced through the outbox (other replicas invalidate on it). Writing the same contact twice
changes nothing and announces nothing, so seeding scripts and re-imports can run again safely.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from uuid import uuid4

from pydantic import SecretStr

from contacts_svc.cache import LookupCache
from contacts_svc.connectors import Connector, NotConfigured, ReauthorizationRequired, SourceUnavailable
from contacts_svc.importing import ParsedImport, RowError
from contacts_svc.outbox import ContactEvents, new_event_id
from contacts_svc.model import Contact, ContactInput, InvalidContact, SourceConnection, normalise_phones, now
from contacts_svc.repository import AccountSettingsRepository, ContactRepository, NumberIndexBusy, SourceRepository
from switchboard.contracts.contacts import (
    ContactCreated,
    ContactDeleted,
    ContactSource,
    ContactSourceConnected,
    ContactSourceDisconnected,
    ContactUpdated,
)
from switchboard.messaging import Conflict, InvalidArgument, Unavailable

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    created = "created"
    updated = "updated"
    unchanged = "unchanged"


@dataclass(frozen=True)
class Written:
    contact: Contact
    outcome: Outcome


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


def derived_id(name: str, numbers: list[str]) -> str:
    """The id of an imported contact that brought none: the same person imported twice is one contact."""
    digest = hashlib.sha256("\x1f".join([" ".join(name.casefold().split()), *sorted(numbers)]).encode())
    return f"imp-{digest.hexdigest()[:24]}"


class ContactBook:
    def __init__(
        self,
        contacts: ContactRepository,
        settings: AccountSettingsRepository,
        events: ContactEvents,
        cache: LookupCache,
        *,
        clock: Callable[[], datetime] = now,
    ) -> None:
        self._contacts = contacts
        self._settings = settings
        self._events = events
        self._cache = cache
        self._clock = clock

    async def region(self, account_id: str, given: str | None) -> str | None:
        """How national numbers of an admin write are read: the request's region, else the account's."""
        return given or await self._settings.region(account_id)

    async def set_region(self, account_id: str, region: str | None) -> None:
        await self._settings.set_region(account_id, region, self._clock())

    async def get(self, account_id: str, contact_id: str) -> Contact | None:
        return await self._contacts.get(account_id, contact_id)

    async def list(self, account_id: str, *, after: str | None, limit: int, number: str | None) -> list[Contact]:
        return await self._contacts.list(account_id, after=after, limit=limit, number=number)

    async def create(self, account_id: str, data: ContactInput, region: str | None) -> Written:
        return await self.put(account_id, uuid4().hex, data, region)

    async def put(self, account_id: str, contact_id: str | None, data: ContactInput, region: str | None) -> Written:
        """Create or replace one contact. Raises InvalidContact for a bad number, before any write."""
        try:
            return await self._put(account_id, contact_id, data, region)
        except NumberIndexBusy:
            raise Conflict("Many contacts with the same number were being saved at once; try again.") from None

    async def _put(self, account_id: str, contact_id: str | None, data: ContactInput, region: str | None) -> Written:
        phones = normalise_phones(data.phone_numbers, region)
        at = self._clock()
        candidate = Contact(
            account_id=account_id,
            contact_id=contact_id or derived_id(data.name, [p.number for p in phones]),
            name=data.name,
            company=data.company,
            email=data.email,
            phones=phones,
            created_at=at,
            updated_at=at,
        )
        for _ in range(3):
            if await self._contacts.insert(candidate):
                self._cache.forget_numbers(account_id, candidate.numbers)
                await self._events.announce(
                    account_id,
                    ContactCreated(
                        event_id=new_event_id(),
                        account_id=account_id,
                        contact_id=candidate.contact_id,
                        name=candidate.name,
                        phone_numbers=candidate.numbers,
                        changed_at=at,
                    ),
                )
                return Written(candidate, Outcome.created)
            existing = await self._contacts.get(account_id, candidate.contact_id)
            if existing is None:
                continue
            if existing.same_content(candidate):
                return Written(existing, Outcome.unchanged)
            updated = candidate.model_copy(update={"created_at": existing.created_at})
            await self._contacts.replace(updated)
            self._cache.forget_numbers(account_id, [*existing.numbers, *updated.numbers])
            await self._events.announce(
                account_id,
                ContactUpdated(
                    event_id=new_event_id(),
                    account_id=account_id,
                    contact_id=updated.contact_id,
                    name=updated.name,
                    phone_numbers=updated.numbers,
                    previous_phone_numbers=existing.numbers,
                    changed_at=at,
                ),
            )
            return Written(updated, Outcome.updated)
        raise Conflict("The contact was created and deleted concurrently while saving it; try again.")

    async def delete(self, account_id: str, contact_id: str) -> Contact | None:
        deleted = await self._contacts.delete(account_id, contact_id)
        if deleted is None:
            return None
        self._cache.forget_numbers(account_id, deleted.numbers)
        await self._events.announce(
            account_id,
            ContactDeleted(
                event_id=new_event_id(),
                account_id=account_id,
                contact_id=contact_id,
                phone_numbers=deleted.numbers,
                changed_at=self._clock(),
            ),
        )
        return deleted

    async def import_contacts(self, account_id: str, parsed: ParsedImport, region: str | None) -> ImportReport:
        report = ImportReport(errors=list(parsed.errors), ignored_columns=parsed.ignored_columns)
        for row in parsed.rows:
            try:
                written = await self.put(account_id, row.contact_id, row.data, region)
            except InvalidContact as e:
                report.errors.append(RowError(row.row, str(e)))
                continue
            except Conflict as e:  # its numbers' slots kept going to concurrent writers: this row only
                report.errors.append(RowError(row.row, e.message))
                continue
            setattr(report, written.outcome.value, getattr(report, written.outcome.value) + 1)
        report.errors.sort(key=lambda e: e.row)
        return report


class SourceLinks:
    """Connecting and disconnecting an account's external address books."""

    def __init__(
        self,
        sources: SourceRepository,
        connectors: dict[ContactSource, Connector],
        events: ContactEvents,
        cache: LookupCache,
        *,
        verify_timeout: float,
        clock: Callable[[], datetime] = now,
    ) -> None:
        self._sources = sources
        self._connectors = connectors
        self._events = events
        self._cache = cache
        self._verify_timeout = verify_timeout
        self._clock = clock

    async def list(self, account_id: str) -> list[SourceConnection]:
        return await self._sources.list(account_id)

    async def connect(self, account_id: str, source: ContactSource, refresh_token: SecretStr) -> SourceConnection:
        """Store the account's grant once the provider has accepted its refresh token."""
        connector = self._connectors.get(source)
        if connector is None:
            raise InvalidArgument(f"{source} is not a source that can be connected; use google or microsoft.")
        at = self._clock()
        pending = SourceConnection(account_id=account_id, source=source, refresh_token=refresh_token, connected_at=at)
        try:
            async with asyncio.timeout(self._verify_timeout):
                token = await connector.verify(pending)
        except NotConfigured:
            raise Conflict(f"{source} contacts are not configured on this service (no OAuth client).") from None
        except ReauthorizationRequired:
            raise InvalidArgument(
                f"{source} refused the refresh token; complete the account's consent again and send the new token."
            ) from None
        except (SourceUnavailable, TimeoutError):
            raise Unavailable(f"{source} could not be reached to check the token; try again in a moment.") from None
        connection = pending.model_copy(
            update={
                "refresh_token": token.refresh_token or refresh_token,
                "access_token": token.value,
                "access_token_expires_at": token.expires_at,
            }
        )
        await self._sources.save(connection)
        try:
            async with asyncio.timeout(self._verify_timeout):
                await connector.warm_up(connection)
        except (SourceUnavailable, TimeoutError) as e:
            log.info("warming up the %s search of account %s failed: %s", source, account_id, type(e).__name__)
        self._cache.forget_account(account_id)
        await self._events.announce(
            account_id,
            ContactSourceConnected(event_id=new_event_id(), account_id=account_id, source=source, changed_at=at),
        )
        log.info("account %s connected its %s contacts", account_id, source)
        return connection

    async def disconnect(self, account_id: str, source: ContactSource) -> bool:
        if not await self._sources.delete(account_id, source):
            return False
        self._cache.forget_account(account_id)
        await self._events.announce(
            account_id,
            ContactSourceDisconnected(
                event_id=new_event_id(), account_id=account_id, source=source, changed_at=self._clock()
            ),
        )
        log.info("account %s disconnected its %s contacts", account_id, source)
        return True
