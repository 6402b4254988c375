"""Settings of the contacts-svc process: `SWITCHBOARD_CONTACTS_*` (connection settings stay `SWITCHBOARD_*`)."""

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from switchboard.service import ServiceSettings


class ContactsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_CONTACTS_", extra="ignore", populate_by_name=True)

    mongo_database: str = "contacts"
    http_port: int | None = 9503

    source_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        le=30,
        description="How long one lookup waits for one source; the command's deadline shortens it further.",
    )
    reply_margin_seconds: float = Field(
        default=0.25,
        ge=0,
        le=5,
        description="Time kept back before the command's deadline to store and send the reply.",
    )
    max_matches: int = Field(default=10, ge=1, le=100, description="At most this many contacts in one lookup result.")
    cache_ttl_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="How long a complete lookup result is reused; 0 turns the cache off.",
    )
    cache_max_entries: int = Field(default=10_000, ge=1)

    google_api_base: str = Field(default="https://people.googleapis.com", description="Google People API base URL.")
    google_token_url: str = "https://oauth2.googleapis.com/token"
    google_client_id: str | None = None
    google_client_secret: SecretStr | None = None

    microsoft_api_base: str = Field(default="https://graph.microsoft.com", description="Microsoft Graph base URL.")
    microsoft_token_url: str = "https://login.microsoftonline.com/common/oauth2/v2.0/token"
    microsoft_client_id: str | None = None
    microsoft_client_secret: SecretStr | None = None
    microsoft_scope: str = "offline_access https://graph.microsoft.com/Contacts.Read"
    microsoft_page_size: int = Field(default=500, ge=1, le=1000)
    microsoft_max_pages: int = Field(
        default=20, ge=1, description="Pages of a mailbox's contacts one lookup reads at most."
    )

    http_connect_timeout_seconds: float = Field(default=2.0, gt=0)
    source_retries: int = Field(
        default=1, ge=0, le=5, description="Retries of one source request after a 429, a 5xx or a network error."
    )

    event_publish_timeout_seconds: float = Field(
        default=2.0, gt=0, description="How long a change waits for Kafka to take its event before leaving it to the relay."
    )
    relay_interval_seconds: float = Field(default=10.0, gt=0, description="How often the outbox relay looks for due events.")
    relay_grace_seconds: float = Field(
        default=30.0, gt=0, description="How old an unsent event must be before the relay sends it."
    )

    import_max_bytes: int = Field(default=10_000_000, ge=1, description="Largest CSV or vCard body an import accepts.")
    import_max_rows: int = Field(default=50_000, ge=1)
    max_body_bytes: int = Field(
        default=10_100_000, ge=1024, description="Largest request body: an import's file plus room for its form."
    )

    @model_validator(mode="after")
    def _oauth_clients_are_complete(self) -> "ContactsSettings":
        for provider in ("google", "microsoft"):
            client_id = getattr(self, f"{provider}_client_id")
            secret = getattr(self, f"{provider}_client_secret")
            if (client_id is None) != (secret is None):
                raise ValueError(
                    f"set both SWITCHBOARD_CONTACTS_{provider.upper()}_CLIENT_ID and "
                    f"SWITCHBOARD_CONTACTS_{provider.upper()}_CLIENT_SECRET, or neither"
                )
        return self
