"""Kafka clients configured for this system: low latency, no loss. One place, used by every process."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from switchboard.settings import SwitchboardSettings

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36


def producer(settings: SwitchboardSettings, *, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=client_id,
        # A reply or a command that was acknowledged must survive a broker failover: all in-sync
        # replicas acknowledge, and the idempotent producer turns its own retries into one write.
        acks="all",
        enable_idempotence=True,
        # A waiting caller is the whole point: send at once instead of batching for throughput.
        linger_ms=0,
        request_timeout_ms=10_000,
        retry_backoff_ms=50,
    )


def consumer(
    settings: SwitchboardSettings,
    *topics: str,
    group_id: str | None,
    client_id: str,
    session_timeout_ms: int = 10_000,
    fetch_max_wait_ms: int | None = None,
) -> AIOKafkaConsumer:
    """A consumer that hands over a record as soon as it arrives.

    `fetch_max_wait_ms` is how long the broker holds a fetch open while no record is there; a record
    arriving meanwhile is answered at once, so the wait costs a lone record nothing and sets how
    often an idle consumer polls. aiokafka sends no new fetch to a broker while one is in flight, and
    none while records fetched from it wait to be taken: a partition paused with `pause()` would be
    fetched again only after the open fetch returns, up to this long, which is why the command
    runtime applies back-pressure by not taking records instead (see `consumer`). Commands and
    replies use `settings.kafka_fetch_max_wait_ms`; readers of events pass their own.
    """
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group_id,
        client_id=client_id,
        # Offsets are committed by the runtime only after the reply is sent (at-least-once).
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_min_bytes=1,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms if fetch_max_wait_ms is None else fetch_max_wait_ms,
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=max(session_timeout_ms // 4, 250),
        max_poll_interval_ms=60_000,
        isolation_level="read_uncommitted",
    )


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] | None = None


async def ensure_topics(settings: SwitchboardSettings, specs: list[TopicSpec]) -> None:
    """Create the topics that do not exist yet (idempotent; replication factor 1 on one broker)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="switchboard-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if not missing:
            return
        response = await admin.create_topics(
            [
                NewTopic(
                    s.name,
                    num_partitions=s.partitions,
                    replication_factor=settings.kafka_replication_factor,
                    topic_configs=s.config or {},
                )
                for s in missing
            ]
        )
        for name, code, *_ in response.topic_errors:
            if code not in (0, TOPIC_ALREADY_EXISTS):
                raise RuntimeError(f"creating Kafka topic {name!r} failed with error code {code}")
    finally:
        await admin.close()


async def partitions_of(settings: SwitchboardSettings, topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="switchboard-admin")
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    for entry in described:
        if entry["topic"] == topic and entry["error_code"] == 0:
            return sorted(p["partition"] for p in entry["partitions"])
    raise RuntimeError(f"Kafka topic {topic!r} does not exist")


async def delete_topics(settings: SwitchboardSettings, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="switchboard-admin")
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()
