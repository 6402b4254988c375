"""Who is calling: one number, every source of the account at once, one merged answer.

The native store and each connected address book are asked concurrently; each gets until a common
deadline (the per-source timeout, cut short by the command's deadline). A source that fails or is
late is named in `unavailable_sources` and the lookup answers with what the others found.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping
from typing import Protocol

from contacts_svc.cache import LookupCache
from contacts_svc.connectors import Connector, SearchQuery, SourceUnavailable
from contacts_svc.model import Contact, SourceConnection, SourceStatus
from switchboard.contracts.contacts import ContactLookup, ContactMatch, ContactPhone, ContactSource
from switchboard.messaging import Unavailable

log = logging.getLogger(__name__)

PRIORITY = {ContactSource.native: 0, ContactSource.google: 1, ContactSource.microsoft: 2}
"""Which source's record leads when several hold the same person: the account's own data first."""


class NativeContacts(Protocol):
    async def find_by_number(self, account_id: str, e164: str, *, limit: int) -> list[Contact]: ...


class Connections(Protocol):
    async def list(self, account_id: str) -> list[SourceConnection]: ...


class ContactFinder:
    def __init__(
        self,
        contacts: NativeContacts,
        connections: Connections,
        connectors: Mapping[ContactSource, Connector],
        cache: LookupCache,
        *,
        source_timeout: float,
        max_matches: int,
    ) -> None:
        self._contacts = contacts
        self._connections = connections
        self._connectors = dict(connectors)
        self._cache = cache
        self._source_timeout = source_timeout
        self._max_matches = max_matches

    async def find(self, account_id: str, e164: str, region: str | None, *, budget: float) -> ContactLookup:
        cached = self._cache.get(account_id, e164)
        if cached is not None:
            return cached
        generation = self._cache.generation
        deadline = asyncio.get_running_loop().time() + min(budget, self._source_timeout)
        query = SearchQuery(account_id=account_id, e164=e164, region=region, deadline=deadline)

        native = asyncio.ensure_future(self._ask(ContactSource.native, self._native(query), query))
        connections: list[SourceConnection] = []
        if not self._cache.has_no_sources(account_id):
            try:
                async with asyncio.timeout_at(deadline):
                    connections = await self._connections.list(account_id)
            except TimeoutError:
                native.cancel()
                raise Unavailable("The contact directory is not answering right now; try again in a moment.") from None
            except BaseException:
                native.cancel()
                raise
            if not connections:
                self._cache.put_no_sources(account_id, generation=generation)
        asks: list[Awaitable[tuple[ContactSource, list[ContactMatch] | None]]] = [native]
        unavailable: set[ContactSource] = set()
        for connection in connections:
            connector = self._connectors.get(connection.source)
            if connector is None:
                continue
            if connection.status is not SourceStatus.connected:
                unavailable.add(connection.source)
                continue
            asks.append(self._ask(connection.source, connector.search(connection, query), query))

        found: list[ContactMatch] = []
        for source, matches in await asyncio.gather(*asks):
            if matches is None:
                unavailable.add(source)
            else:
                found.extend(matches)
        contacts = merge(found)[: self._max_matches]
        result = ContactLookup(
            phone_number=e164,
            found=bool(contacts),
            contacts=contacts,
            unavailable_sources=sorted(unavailable, key=PRIORITY.__getitem__),
        )
        self._cache.put(account_id, e164, result, generation=generation)
        return result

    async def _native(self, query: SearchQuery) -> list[ContactMatch]:
        contacts = await self._contacts.find_by_number(query.account_id, query.e164, limit=self._max_matches)
        return [c.as_match() for c in contacts]

    @staticmethod
    async def _ask(
        source: ContactSource, search: Awaitable[list[ContactMatch]], query: SearchQuery
    ) -> tuple[ContactSource, list[ContactMatch] | None]:
        try:
            async with asyncio.timeout_at(query.deadline):
                return source, await search
        except TimeoutError:
            log.info("%s did not answer a lookup of account %s in time", source, query.account_id)
        except SourceUnavailable as e:
            log.warning("%s unavailable for account %s: %s", source, query.account_id, e)
        except Exception as e:
            log.warning("%s failed a lookup of account %s: %s", source, query.account_id, type(e).__name__)
        return source, None


def merge(matches: list[ContactMatch]) -> list[ContactMatch]:
    """One entry per person: matches with the same name (ignoring case and spacing) are merged.

    The record of the highest-priority source leads; the others add the numbers, company and email it
    lacks and are listed in `also_in`.
    """
    groups: dict[str, list[ContactMatch]] = {}
    for match in sorted(matches, key=lambda m: PRIORITY[m.source]):
        groups.setdefault(" ".join(match.name.casefold().split()), []).append(match)
    merged = []
    for group in groups.values():
        lead = group[0]
        phones: dict[str, ContactPhone] = {}
        for match in group:
            for phone in match.phone_numbers:
                known = phones.get(phone.number)
                if known is None or (known.label is None and phone.label is not None):
                    phones[phone.number] = phone
        merged.append(
            ContactMatch(
                name=lead.name,
                company=next((m.company for m in group if m.company), None),
                email=next((m.email for m in group if m.email), None),
                phone_numbers=list(phones.values()),
                source=lead.source,
                also_in=sorted({m.source for m in group} - {lead.source}, key=PRIORITY.__getitem__),
            )
        )
    return merged
