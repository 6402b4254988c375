"""A short cache of complete lookup results, per (account, E.164 number).

Invalidation:
- every entry lives at most `ttl` seconds: the bound on staleness for Google and Microsoft, whose
  changes this service does not observe;
- a native change drops the entries of the numbers it touched (old and new) in this replica at
  once, and in every other replica when its `contact.*` event arrives; connecting or disconnecting a
  source drops the whole account the same way;
- a lookup that started before an invalidation does not store its (possibly stale) result;
- results with unavailable sources are never stored, so the next lookup asks those sources again.

It also remembers, for as long, which accounts have no connected source (most use the native store
alone): their lookups then skip reading the account's connections. Connecting a source drops the
account as above, so the next lookup reads them again. Connections themselves (they hold OAuth
tokens that a lookup may refresh) are never kept here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from cachetools import TTLCache
from switchboard.contracts import Contract
from switchboard.contracts.contacts import (
    ContactCreated,
    ContactDeleted,
    ContactLookup,
    ContactSourceConnected,
    ContactSourceDisconnected,
    ContactUpdated,
)

Key = tuple[str, str]


class LookupCache:
    def __init__(self, ttl: float, max_entries: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        # Least recently used first out past `max_entries`; each entry gone `ttl` after it was stored.
        self._entries: TTLCache[Key, ContactLookup] = TTLCache(max_entries, ttl, timer=clock)
        self._unconnected: TTLCache[str, bool] = TTLCache(max_entries, ttl, timer=clock)
        self.generation = 0
        """Bumped by every invalidation; a result computed under an older generation is not stored."""

    @property
    def enabled(self) -> bool:
        return self._ttl > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, account_id: str, e164: str) -> ContactLookup | None:
        return self._entries.get((account_id, e164))

    def put(self, account_id: str, e164: str, result: ContactLookup, *, generation: int) -> None:
        if not self.enabled or generation != self.generation or result.unavailable_sources:
            return
        self._entries[(account_id, e164)] = result

    def has_no_sources(self, account_id: str) -> bool:
        """True when the account was seen without a connected source less than `ttl` ago."""
        return self._unconnected.get(account_id, False)

    def put_no_sources(self, account_id: str, *, generation: int) -> None:
        if not self.enabled or generation != self.generation:
            return
        self._unconnected[account_id] = True

    def forget_numbers(self, account_id: str, numbers: Iterable[str]) -> None:
        self.generation += 1
        for number in numbers:
            self._entries.pop((account_id, number), None)

    def forget_account(self, account_id: str) -> None:
        self.generation += 1
        self._unconnected.pop(account_id, None)
        for key in [k for k in self._entries if k[0] == account_id]:
            self._entries.pop(key, None)

    async def on_event(self, event: Contract) -> None:
        """Invalidation by the events of other replicas (and this one's own, harmlessly again)."""
        match event:
            case ContactCreated() | ContactDeleted():
                self.forget_numbers(event.account_id, event.phone_numbers)
            case ContactUpdated():
                self.forget_numbers(event.account_id, [*event.phone_numbers, *event.previous_phone_numbers])
            case ContactSourceConnected() | ContactSourceDisconnected():
                self.forget_account(event.account_id)
