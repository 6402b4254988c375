"""API keys: their format, their hash, and authentication with a short cache.

A key reads `sbk_<key id>_<secret>`: the key id (64 random bits, hex) is public and names the
stored record; the secret carries 256 random bits. Only HMAC-SHA256(pepper, key) is stored, and
it is compared in constant time. Lookups (found or not) are cached for `key_cache_seconds`; a
revocation travels as a `key.revoked` event that every replica reads (`on_event`), so a revoked key
stops working everywhere within about a second, whatever is cached. Without the event (a replica
that missed it while down reads the database again when its cache expires) the cache bounds it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

from pymongo.errors import DuplicateKeyError

from gateway.model import ApiKeyRecord
from gateway.repository import ApiKeyStore
from switchboard.contracts import Contract, utcnow
from switchboard.contracts.keys import KeyRevoked

KEY_PATTERN = re.compile(r"^sbk_(?P<key_id>[0-9a-f]{16})_(?P<secret>[A-Za-z0-9_-]{43})$")
NEGATIVE_CACHE_SECONDS = 5.0


def digest(pepper: bytes, key: str) -> str:
    return hmac.new(pepper, key.encode(), hashlib.sha256).hexdigest()


def parse_key_id(key: str) -> str | None:
    """The key id of a well-formed key, else None (a malformed key is never looked up)."""
    match = KEY_PATTERN.match(key)
    return match.group("key_id") if match else None


@dataclass(frozen=True, slots=True)
class NewKey:
    key: str
    record: ApiKeyRecord


async def create_key(store: ApiKeyStore, pepper: bytes, account_id: str, label: str = "") -> NewKey:
    """Make and store a new key for the account. The plain key exists only in the returned value."""
    for _ in range(5):
        key_id = secrets.token_hex(8)
        key = f"sbk_{key_id}_{secrets.token_urlsafe(32)}"
        record = ApiKeyRecord(
            key_id=key_id, account_id=account_id, digest=digest(pepper, key), label=label, created_at=utcnow()
        )
        try:
            await store.insert(record)
        except DuplicateKeyError:
            continue
        return NewKey(key, record)
    raise RuntimeError("could not find an unused key id")


class Authenticator:
    def __init__(self, store: ApiKeyStore, pepper: bytes, *, cache_seconds: float, max_entries: int = 10_000) -> None:
        self._store = store
        self._pepper = pepper
        self._cache_seconds = cache_seconds
        self._max_entries = max_entries
        self._cache: OrderedDict[str, tuple[float, ApiKeyRecord | None]] = OrderedDict()
        self._revoked: OrderedDict[str, None] = OrderedDict()
        """Key ids announced revoked: refused even by a lookup that started before the event came."""

    async def authenticate(self, key: str | None) -> ApiKeyRecord | None:
        """The key's live record, or None for a missing, malformed, unknown or revoked key."""
        if not key:
            return None
        key_id = parse_key_id(key)
        if key_id is None:
            return None
        presented = digest(self._pepper, key)
        now = time.monotonic()
        cached = self._cache.get(presented)
        if cached is not None and cached[0] > now:
            record = cached[1]
        else:
            record = await self._store.find(key_id)
            if record is not None and not hmac.compare_digest(record.digest, presented):
                record = None
            ttl = self._cache_seconds if record is not None else min(self._cache_seconds, NEGATIVE_CACHE_SECONDS)
            self._remember(presented, now + ttl, record)
        if record is None or record.revoked or record.key_id in self._revoked:
            return None
        return record

    def revoke(self, key_id: str) -> None:
        """Stop accepting this key now: forget its cached lookups and refuse it from here on."""
        self._revoked[key_id] = None
        self._revoked.move_to_end(key_id)
        while len(self._revoked) > self._max_entries:
            self._revoked.popitem(last=False)
        for presented in [p for p, (_, r) in self._cache.items() if r is not None and r.key_id == key_id]:
            del self._cache[presented]

    async def on_event(self, event: Contract) -> None:
        if isinstance(event, KeyRevoked):
            self.revoke(event.key_id)

    def _remember(self, presented: str, expires: float, record: ApiKeyRecord | None) -> None:
        self._cache[presented] = (expires, record)
        self._cache.move_to_end(presented)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)
