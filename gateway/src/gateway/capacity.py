"""Who holds the gateway's in-flight slots, so that no tenant can take them all.

A request first holds one of a small pool of slots while its API key is checked; once the key is
known it holds a slot of that key, of the key's account and of the gateway as a whole instead. A key
(or an account) with its share in use is refused on its own (429), without touching anyone else's
share; only when the whole gateway is full is everyone refused (503). The counters live in this
process and hold only keys and accounts with requests under way.
"""

from __future__ import annotations

import enum


class Refusal(enum.Enum):
    key = "key"
    account = "account"
    gateway = "gateway"


class Capacity:
    def __init__(self, *, total: int, per_key: int, per_account: int, unauthenticated: int) -> None:
        self._total = total
        self._per_key = per_key
        self._per_account = per_account
        self._unauthenticated_limit = unauthenticated
        self.unauthenticated = 0
        self.in_flight = 0
        self._keys: dict[str, int] = {}
        self._accounts: dict[str, int] = {}

    def enter_unauthenticated(self) -> bool:
        if self.unauthenticated >= self._unauthenticated_limit:
            return False
        self.unauthenticated += 1
        return True

    def leave_unauthenticated(self) -> None:
        self.unauthenticated -= 1

    def enter(self, key_id: str, account_id: str) -> Refusal | None:
        """Take a slot for this key and account, or say whose share is used up."""
        if self._keys.get(key_id, 0) >= self._per_key:
            return Refusal.key
        if self._accounts.get(account_id, 0) >= self._per_account:
            return Refusal.account
        if self.in_flight >= self._total:
            return Refusal.gateway
        self._keys[key_id] = self._keys.get(key_id, 0) + 1
        self._accounts[account_id] = self._accounts.get(account_id, 0) + 1
        self.in_flight += 1
        return None

    def leave(self, key_id: str, account_id: str) -> None:
        self.in_flight -= 1
        _decrement(self._keys, key_id)
        _decrement(self._accounts, account_id)

    def held_by_key(self, key_id: str) -> int:
        return self._keys.get(key_id, 0)


def _decrement(counts: dict[str, int], name: str) -> None:
    left = counts[name] - 1
    if left:
        counts[name] = left
    else:
        del counts[name]
