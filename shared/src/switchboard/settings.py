"""The settings base every process subclasses, with its own env prefix for its own fields.

Connection settings are shared by all processes and read from `SWITCHBOARD_*` whatever the prefix,
so one environment (a shell, compose, CI) wires the whole system.
"""

from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_PREFIX = "change-me"
"""How the sample configurations (docker-compose.yml) mark a secret nobody has set yet."""


class SwitchboardSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_", extra="ignore", populate_by_name=True)

    kafka_bootstrap: str = Field(
        default="127.0.0.1:19092",
        validation_alias="SWITCHBOARD_KAFKA_BOOTSTRAP",
        description="Kafka bootstrap servers, comma-separated host:port.",
    )
    mongo_uri: str = Field(
        default="mongodb://127.0.0.1:27117",
        validation_alias="SWITCHBOARD_MONGO_URI",
        description="MongoDB (or MongoDB-wire-compatible) connection string.",
    )
    topic_prefix: str = Field(
        default="",
        validation_alias="SWITCHBOARD_TOPIC_PREFIX",
        description="Prepended to every topic name; lets several systems (or test runs) share one broker.",
    )
    kafka_replication_factor: int = Field(
        default=1,
        ge=1,
        validation_alias="SWITCHBOARD_KAFKA_REPLICATION_FACTOR",
        description="Replication factor of the topics the system creates (3 on a production cluster).",
    )
    kafka_fetch_max_wait_ms: int = Field(
        default=100,
        ge=0,
        le=500,
        validation_alias="SWITCHBOARD_KAFKA_FETCH_MAX_WAIT_MS",
        description="How long the broker holds an empty fetch of a command or reply consumer (see messaging.kafka.consumer).",
    )
    kafka_commit_interval_ms: int = Field(
        default=200,
        ge=0,
        le=5_000,
        validation_alias="SWITCHBOARD_KAFKA_COMMIT_INTERVAL_MS",
        description=(
            "How often a command runtime commits the offsets of the commands it answered (0: after every fetch). "
            "A crash redelivers at most this much; the processed-commands record answers a redelivery."
        ),
    )
    log_level: str = Field(default="INFO", validation_alias="SWITCHBOARD_LOG_LEVEL")
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT",
        description="OTLP/HTTP endpoint; traces and metrics are exported there when set.",
    )
    otel_metric_export_interval: int = Field(
        default=5000,
        ge=100,
        validation_alias="OTEL_METRIC_EXPORT_INTERVAL",
        description="Milliseconds between two OTLP metric exports (the OpenTelemetry variable; 5 s here).",
    )
    otel_file: str | None = Field(
        default=None,
        validation_alias="SWITCHBOARD_OTEL_FILE",
        description="Also append finished spans as JSON lines to this file (tests, local debugging).",
    )

    local_mode: bool = Field(
        default=False,
        validation_alias="SWITCHBOARD_LOCAL_MODE",
        description="A machine of one developer: placeholder secrets (change-me-...) are accepted.",
    )

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> Self:
        if self.local_mode:
            return self
        for name, value in self:
            if isinstance(value, SecretStr) and value.get_secret_value().startswith(PLACEHOLDER_PREFIX):
                raise ValueError(
                    f"{name} is still the placeholder {PLACEHOLDER_PREFIX}-...: set a real secret, or "
                    "SWITCHBOARD_LOCAL_MODE=true on a developer's own machine"
                )
        return self

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"
