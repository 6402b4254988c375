"""The gateway process's settings: env prefix `SWITCHBOARD_GATEWAY_` for its own fields.

The Kafka, MongoDB, topic-prefix and telemetry settings come from the shared `SWITCHBOARD_*` names.
"""

from __future__ import annotations

import os
import socket

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from switchboard.settings import SwitchboardSettings

DEV_KEY_PEPPER = "switchboard-development-pepper-not-for-production"
"""Used only when `allow_dev_pepper` is set explicitly: keys hashed with it are worthless in production."""

LOCAL_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"]
LOCAL_ORIGINS = [
    "http://127.0.0.1:*",
    "http://localhost:*",
    "http://[::1]:*",
    "https://127.0.0.1:*",
    "https://localhost:*",
    "https://[::1]:*",
]


class MissingSecret(RuntimeError):
    """A required secret is not configured; the message says which and how to set it."""


class GatewaySettings(SwitchboardSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_GATEWAY_", extra="ignore", populate_by_name=True)

    mongo_database: str = Field(default="gateway", description="The gateway's own database: API keys only.")
    host: str = "127.0.0.1"
    port: int = Field(default=9443, ge=0, le=65535)
    tls_certfile: str | None = Field(default=None, description="PEM certificate; HTTPS when set with tls_keyfile.")
    tls_keyfile: str | None = Field(default=None, description="PEM private key of tls_certfile.")

    key_pepper: SecretStr | None = Field(
        default=None,
        description="Server-side secret mixed into every API key hash (HMAC-SHA256). Required.",
    )
    allow_dev_pepper: bool = Field(
        default=False,
        description="Development only: use a fixed, public pepper when key_pepper is not set.",
    )

    tool_timeout: float = Field(
        default=4.0,
        gt=0,
        le=60,
        description="Seconds a tool call may take end to end before it is answered as unavailable.",
    )
    tool_timeouts: dict[str, float] = Field(
        default_factory=dict,
        description='Per-tool overrides of tool_timeout by tool name, e.g. {"lookup_contact": 6}.',
    )
    tools_timeout: float = Field(
        default=3.0, gt=0, le=60, description="Seconds to wait for a persona's tool list (tools/list)."
    )
    reply_margin: float = Field(
        default=0.1,
        ge=0,
        le=5,
        description="Seconds kept back from a tool's deadline to answer the agent in time after a timeout.",
    )
    api_request_overhead: float = Field(
        default=1.0,
        ge=0,
        le=10,
        description=(
            "Seconds added to an API Request tool's own timeout for its deadline at the gateway (the trip "
            "through Kafka and persona-svc): the timeout an administrator sets is the one that holds."
        ),
    )
    repeat_window_seconds: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description=(
            "A side-effecting tool called again on the same call with the same arguments within this many "
            "seconds has one effect and returns the first result (0: only an Idempotency-Key header decides)."
        ),
    )
    tools_cache_seconds: float = Field(default=30.0, ge=0, description="How long a persona's tool list is reused.")
    key_cache_seconds: float = Field(
        default=30.0,
        ge=0,
        description=(
            "How long an API key lookup is reused. A revocation announced on gateway.events takes effect at "
            "once; one that could not be announced (Kafka unreachable) takes effect within this time."
        ),
    )

    rate_limit_per_second: float = Field(default=20.0, gt=0, description="Sustained requests per second per API key.")
    rate_limit_burst: int = Field(default=40, ge=1, description="Requests per API key allowed in a burst.")
    max_body_bytes: int = Field(default=256 * 1024, ge=1024, description="Largest accepted request body (413 above).")
    allowed_hosts: list[str] = Field(
        default_factory=lambda: list(LOCAL_HOSTS),
        description='Host header values accepted on the MCP endpoint ("name:*" for any port, "*" for any host).',
    )
    allowed_origins: list[str] = Field(
        default_factory=lambda: list(LOCAL_ORIGINS),
        description='Origin header values accepted when a request carries one ("*" for any).',
    )
    max_in_flight: int = Field(
        default=64,
        ge=1,
        description=(
            "Requests this replica serves at once; more are answered 503 busy at once. About the calls "
            "per second a replica can serve times the latency a caller accepts (50/s x 1 s = 50)."
        ),
    )
    max_pending: int = Field(
        default=10_000, ge=1, description="Tool calls waiting for replies before new ones are refused."
    )
    max_in_flight_per_key: int = Field(
        default=16,
        ge=1,
        description="Requests one API key may have served at once; more are answered 429 (its share of max_in_flight).",
    )
    max_in_flight_per_account: int = Field(
        default=32,
        ge=1,
        description="Requests one account's keys together may have served at once; more are answered 429.",
    )
    max_unauthenticated: int = Field(
        default=16,
        ge=1,
        description="Requests whose API key is still being checked, at once; more are answered 503 busy.",
    )
    max_header_bytes: int = Field(
        default=16 * 1024, ge=1024, le=1024 * 1024, description="Largest request line and headers (431 above)."
    )
    header_timeout: float = Field(
        default=5.0, gt=0, le=60, description="Seconds a request's headers may take to arrive (408 after)."
    )
    body_timeout: float = Field(
        default=5.0, gt=0, le=60, description="Seconds a request's body may take to arrive once its headers did (408 after)."
    )
    instance_id: str = Field(default_factory=lambda: f"gw-{socket.gethostname()}-{os.getpid()}")

    @model_validator(mode="after")
    def _tls_pair(self) -> GatewaySettings:
        if bool(self.tls_certfile) != bool(self.tls_keyfile):
            raise ValueError(
                "set both SWITCHBOARD_GATEWAY_TLS_CERTFILE and SWITCHBOARD_GATEWAY_TLS_KEYFILE, or neither"
            )
        return self

    @property
    def tls(self) -> bool:
        return bool(self.tls_certfile and self.tls_keyfile)

    def pepper(self) -> bytes:
        """The API key pepper, or a clear error when none is configured."""
        if self.key_pepper is not None and self.key_pepper.get_secret_value():
            value = self.key_pepper.get_secret_value()
            if len(value) < 16:
                raise MissingSecret("SWITCHBOARD_GATEWAY_KEY_PEPPER must be at least 16 characters long.")
            return value.encode()
        if self.allow_dev_pepper:
            return DEV_KEY_PEPPER.encode()
        raise MissingSecret(
            "SWITCHBOARD_GATEWAY_KEY_PEPPER is not set: the gateway hashes API keys with this secret and "
            "will not start without it (for local development only, set SWITCHBOARD_GATEWAY_ALLOW_DEV_PEPPER=true)."
        )

    def timeout_for(self, tool_name: str) -> float:
        return self.tool_timeouts.get(tool_name, self.tool_timeout)
