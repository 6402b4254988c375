"""Facts about the gateway's API keys, on `gateway.events`: every gateway replica reads them."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from switchboard.contracts.base import Contract
from switchboard.contracts.envelope import IDENTIFIER


class KeyRevoked(Contract):
    """An API key was revoked: every gateway stops accepting it at once, whatever it has cached."""

    event: Literal["key.revoked"] = "key.revoked"
    account_id: str = Field(pattern=IDENTIFIER)
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$", description="The key's public id (sbk_<key id>_...).")
    revoked_at: AwareDatetime
