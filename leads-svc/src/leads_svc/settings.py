"""Settings of the leads-svc process: `SWITCHBOARD_LEADS_*`, plus the shared `SWITCHBOARD_*` connections."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from switchboard.service import ServiceSettings


class LeadsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_LEADS_")

    mongo_database: str = Field(default="leads", description="leads-svc's own database.")
    http_port: int | None = Field(default=9504, description="Port of the admin/read API and /healthz.")
    event_publish_timeout: float = Field(
        default=2.0,
        gt=0,
        description="Seconds a handler waits for Kafka to take an event before leaving it to the relay.",
    )
    relay_interval: float = Field(
        default=10.0, gt=0, description="Seconds between two passes of the relay over unpublished events."
    )
    relay_grace: float = Field(
        default=30.0,
        gt=0,
        description="Seconds after a command's deadline when the events it did not get out are the relay's.",
    )
