"""The gateway's own records: API keys, and who is calling on one HTTP request."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from switchboard.contracts import CallContext
from switchboard.contracts.envelope import CALL_ID, IDENTIFIER


class ApiKeyRecord(BaseModel):
    """A stored API key: only its HMAC, never the key itself."""

    model_config = ConfigDict(frozen=True)

    key_id: str = Field(description="The public part of the key, shown in listings (sbk_<key_id>_...).")
    account_id: str = Field(pattern=IDENTIFIER)
    digest: str = Field(description="Hex HMAC-SHA256 of the whole key with the server's pepper.")
    label: str = ""
    created_at: AwareDatetime
    revoked_at: AwareDatetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def prefix(self) -> str:
        return f"sbk_{self.key_id}"


class Caller(BaseModel):
    """One authenticated MCP request: the key's account and the call context from the headers.

    The account comes from the key; the `account_id` header may only confirm it.
    """

    model_config = ConfigDict(frozen=True)

    key_id: str
    account_id: str = Field(pattern=IDENTIFIER)
    persona_id: str = Field(pattern=IDENTIFIER)
    call_id: str = Field(pattern=CALL_ID)
    caller_id_number: str | None = Field(default=None, max_length=64)
    idempotency_key: str | None = Field(
        default=None, max_length=255, description="The client's Idempotency-Key header: its repeats are one effect."
    )

    def context(self, region: str | None = None) -> CallContext:
        return CallContext(
            account_id=self.account_id,
            persona_id=self.persona_id,
            call_id=self.call_id,
            caller_id_number=self.caller_id_number,
            region=region,
        )
