"""Settings of the call-control process: `SWITCHBOARD_CALL_CONTROL_*`, plus the shared `SWITCHBOARD_*` ones."""

from enum import StrEnum
from typing import Self

from pydantic import AnyHttpUrl, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict
from switchboard.service import ServiceSettings


class TelephonyKind(StrEnum):
    simulated = "simulated"
    ari = "ari"


class AriTransferMode(StrEnum):
    dialplan = "dialplan"
    """`POST /ari/channels/{id}/continue`: the channel leaves the Stasis app and the dial plan dials the destination."""
    redirect = "redirect"
    """`POST /ari/channels/{id}/redirect`: Asterisk transfers the channel to an endpoint directly."""


class CallControlSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_CALL_CONTROL_", extra="ignore", populate_by_name=True)

    mongo_database: str = Field(default="call_control", description="The service's own database.")
    http_port: int | None = Field(default=9502, description="Webhook, simulated PBX API, admin API, /healthz.")

    telephony: TelephonyKind = Field(
        default=TelephonyKind.simulated,
        description="The phone system that carries out transfers and hang-ups: the simulated PBX or Asterisk ARI.",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Secret of the PBX webhook (HMAC key or header value); without one the webhook refuses all.",
    )
    default_region: str = Field(
        default="US",
        pattern=r"^[A-Z]{2}$",
        description="Country used to read national numbers when a command carries no account country.",
    )
    abandoned_after_seconds: float = Field(
        default=30.0,
        gt=0,
        description=(
            "A transfer or hang-up still marked in progress this long after its command's deadline is taken as "
            "abandoned (its process died), so the call accepts a new one."
        ),
    )
    simulated_rejected_destinations: list[str] = Field(
        default_factory=list,
        description="Destinations (E.164 or extensions) the simulated PBX refuses, to rehearse a failed transfer.",
    )

    ari_url: AnyHttpUrl | None = Field(
        default=None, description="Base URL of Asterisk's HTTP server, e.g. http://pbx:8088 (paths start with /ari)."
    )
    ari_username: str | None = None
    ari_password: SecretStr | None = None
    ari_transfer_mode: AriTransferMode = AriTransferMode.dialplan
    ari_context: str = Field(
        default="switchboard-transfer",
        min_length=1,
        description="Dial plan context a transferred channel continues in.",
    )
    ari_priority: int = Field(default=1, ge=1)
    ari_number_endpoint: str = Field(
        default="PJSIP/{destination}@trunk",
        description="Redirect mode: the endpoint of an E.164 destination; `{destination}` is replaced.",
    )
    ari_extension_endpoint: str = Field(
        default="PJSIP/{destination}",
        description="Redirect mode: the endpoint of an internal extension; `{destination}` is replaced.",
    )
    ari_timeout_seconds: float = Field(default=5.0, gt=0, description="Upper bound of one ARI request.")

    @model_validator(mode="after")
    def _ari_is_complete(self) -> Self:
        if self.telephony is TelephonyKind.ari:
            missing = [
                f"SWITCHBOARD_CALL_CONTROL_{name.upper()}"
                for name in ("ari_url", "ari_username", "ari_password")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"telephony 'ari' needs {', '.join(missing)}")
        for template in (self.ari_number_endpoint, self.ari_extension_endpoint):
            if "{destination}" not in template:
                raise ValueError(f"ARI endpoint template {template!r} must contain {{destination}}")
        return self
