"""A short cache of what tool calls read: accounts, personas, users, queues and personas' tool sets.

Invalidation:
- every entry lives at most `ttl` seconds: the bound on staleness if an announcement is lost;
- an admin change drops every entry of its account in the replica that made it, before the change
  is announced, and in every other replica when its `persona.events` event arrives;
- a read that started before an invalidation does not store its (possibly stale) result;
- a missing document is never stored, so one created a moment ago is found at once.

Only the command handlers read through the cache; the admin API reads the database, so an admin
sees their own writes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Generic, TypeVar, cast

from cachetools import TTLCache
from pydantic import BaseModel

from switchboard.contracts import Contract
from switchboard.contracts.persona import PersonaUpdated, QueueUpdated, UserDndChanged, UserUpdated
from switchboard.service import Component

from persona_svc.model import CustomTool
from persona_svc.repository import (
    ACCOUNTS,
    PERSONA_TOOLS,
    PERSONAS,
    QUEUES,
    TOOLS,
    USERS,
    Repositories,
    Store,
    ToolStore,
)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

Key = tuple[str, ...]
"""The account id first, so that an account's entries can be found."""


class ReadCache:
    def __init__(self, ttl: float, max_entries: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._entries: TTLCache[Key, Any] = TTLCache(max_entries, ttl, timer=clock)
        """Least recently used first out past `max_entries`; each entry gone `ttl` after it was stored."""
        self.generation = 0
        """Bumped by every invalidation; a value loaded under an older generation is not stored."""

    @property
    def enabled(self) -> bool:
        return self._ttl > 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: Key, load: Callable[[], Awaitable[T | None]]) -> T | None:
        """The cached value of `key`, or what `load` returns (kept unless None or overtaken)."""
        if not self.enabled:
            return await load()
        cached = self._entries.get(key)
        if cached is not None:
            return cast(T, cached)
        generation = self.generation
        value = await load()
        if value is not None and generation == self.generation:
            self._entries[key] = value
        return value

    def forget_account(self, account_id: str) -> None:
        self.generation += 1
        for key in [k for k in self._entries if k[0] == account_id]:
            self._entries.pop(key, None)

    def forget_all(self) -> None:
        self.generation += 1
        self._entries.clear()

    async def on_event(self, event: Contract) -> None:
        """Invalidation by the events of other replicas (and this one's own, harmlessly again)."""
        match event:
            case PersonaUpdated() | UserDndChanged() | UserUpdated() | QueueUpdated():
                self.forget_account(event.account_id)


class Invalidation:
    """Starts the reader of `persona.events`, then empties the cache.

    The reader starts at the end of the topic, so an event published before it was positioned is
    never seen; emptying the cache once it is positioned drops whatever was read before then.
    """

    def __init__(self, reader: Component, cache: ReadCache) -> None:
        self._reader = reader
        self._cache = cache

    async def start(self) -> None:
        await self._reader.start()
        self._cache.forget_all()

    async def stop(self) -> None:
        await self._reader.stop()


class CachedStore(Generic[M]):
    """`get` through the cache; everything else goes to `store`, and a write drops its account."""

    def __init__(self, store: Store[M], cache: ReadCache, name: str) -> None:
        self._store = store
        self._cache = cache
        self._name = name

    async def get(self, **key: str) -> M | None:
        parts = (key["account_id"], self._name, *(key[k] for k in sorted(key) if k != "account_id"))
        return await self._cache.get(parts, partial(self._store.get, **key))

    async def list(self, account_id: str, **where: str) -> list[M]:
        return await self._store.list(account_id, **where)

    async def list_all(self) -> list[M]:
        return await self._store.list_all()

    async def put(self, item: M) -> bool:
        try:
            return await self._store.put(item)
        finally:
            self._cache.forget_account(getattr(item, "account_id"))

    async def delete(self, **key: str) -> bool:
        try:
            return await self._store.delete(**key)
        finally:
            self._cache.forget_account(key["account_id"])

    async def delete_all(self, account_id: str, **where: str) -> int:
        try:
            return await self._store.delete_all(account_id, **where)
        finally:
            self._cache.forget_account(account_id)


class CachedTools(CachedStore[CustomTool]):
    """Also a persona's tool set through the cache, kept as a tuple that callers cannot change."""

    def __init__(self, store: ToolStore, cache: ReadCache) -> None:
        super().__init__(store, cache, TOOLS)
        self._tools = store

    async def of_persona(self, account_id: str, persona_id: str) -> list[CustomTool]:
        key = (account_id, PERSONA_TOOLS, persona_id)
        tools = await self._cache.get(key, partial(self._set, account_id, persona_id))
        return list(tools or ())

    async def _set(self, account_id: str, persona_id: str) -> tuple[CustomTool, ...]:
        return tuple(await self._tools.of_persona(account_id, persona_id))


def cached_repositories(repos: Repositories, cache: ReadCache) -> Repositories:
    """The stores as the command handlers read them."""
    return Repositories(
        accounts=CachedStore(repos.accounts, cache, ACCOUNTS),
        personas=CachedStore(repos.personas, cache, PERSONAS),
        tools=CachedTools(repos.tools, cache),
        users=CachedStore(repos.users, cache, USERS),
        queues=CachedStore(repos.queues, cache, QUEUES),
    )
