"""Settings of the persona-svc process: `SWITCHBOARD_PERSONA_*`, plus the shared `SWITCHBOARD_*` connection settings."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from switchboard.service import ServiceSettings


class PersonaSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_PERSONA_", extra="ignore", populate_by_name=True)

    mongo_database: str = Field(default="persona", description="The service's own database.")
    http_port: int | None = Field(default=9501, description="Port of the admin API and the health checks.")
    egress_max_response_bytes: int = Field(
        default=262_144, ge=1024, le=16_777_216, description="API Request tools read at most this much of a response."
    )
    egress_max_body_chars: int = Field(
        default=4000, ge=100, le=100_000, description="At most this much response text is given to the model."
    )
    egress_max_redirects: int = Field(
        default=3, ge=0, le=10, description="Redirects an API Request follows, each one checked like the first URL."
    )
    egress_user_agent: str = Field(default="Switchboard-ApiRequest/1.0", max_length=200)
    cache_ttl_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description=(
            "How long a cached account, persona, user, queue or tool set is used at most: the bound on "
            "staleness if an announcement of a change is lost; 0 turns the cache off."
        ),
    )
    cache_max_entries: int = Field(default=10_000, ge=1, description="Entries the read cache keeps at most (least recently used go first).")
