"""The clean-run audit the fuzzers rely on: it must see an ERROR line and a dead letter."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaProducer

from switchboard.contracts import Topic
from switchboard.messaging import kafka
from switchboard.testing.audit import COMMAND_TOPICS, CleanRun
from switchboard.testing.system import ALL, Running, System

pytestmark = pytest.mark.integration


async def test_an_error_line_or_a_dead_letter_makes_a_run_unclean(settings, tmp_path) -> None:
    await kafka.ensure_topics(settings, [kafka.TopicSpec(settings.topic(t.dead_letter), 1) for t in COMMAND_TOPICS])
    env = {"SWITCHBOARD_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "SWITCHBOARD_TOPIC_PREFIX": settings.topic_prefix}
    system = System(env, tmp_path)
    log = tmp_path / "leads.log"
    log.write_text("2026-12-02 10:00:00,000 ERROR before the run: not this run's\n")
    system.running.append(Running(ALL[0], 0, None, log))  # type: ignore[arg-type]

    audit = await CleanRun.begin(system, env)
    assert await audit.problems() == []

    with open(log, "a") as f:
        f.write("2026-12-02 10:00:01,000 INFO fine\n2026-12-02 10:00:02,000 ERROR leads_svc: boom\n")
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(settings.topic(Topic.leads_commands.dead_letter), b"poison")
    finally:
        await producer.stop()
    found = await audit.problems()
    assert any("ERROR leads_svc: boom" in line for line in found)
    assert f"{settings.topic(Topic.leads_commands.dead_letter)}: 1 dead letter(s)" in found
    assert len(found) == 2
