"""Whether a run of hostile input left a mark inside the system: an ERROR or a traceback in any
process's log, or a command in a dead-letter topic. A fuzzer that only checks the answers would
pass a crash hidden behind a 200 (a handler that failed, a command the runtime gave up on)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from switchboard.contracts import Topic
from switchboard.testing.system import System

COMMAND_TOPICS = (Topic.call_control_commands, Topic.contacts_commands, Topic.leads_commands, Topic.persona_commands)
_marks = re.compile(r" (ERROR|CRITICAL) |^Traceback ")


@dataclass
class CleanRun:
    system: System
    env: Mapping[str, str]
    _log_sizes: dict[Path, int] = field(default_factory=dict)
    _dead_letters: dict[str, int] = field(default_factory=dict)

    @classmethod
    async def begin(cls, system: System, env: Mapping[str, str]) -> CleanRun:
        run = cls(system, env)
        run._log_sizes = {r.log: r.log.stat().st_size if r.log.exists() else 0 for r in system.running}
        run._dead_letters = await run._dead_letter_counts()
        return run

    async def problems(self) -> list[str]:
        """One line per mark the run left; empty for a clean run."""
        found = []
        for log, size in self._log_sizes.items():
            with open(log, "rb") as f:
                f.seek(size)
                lines = f.read().decode("utf-8", "replace").splitlines()
            found += [f"{log.name}: {line[:300]}" for line in lines if _marks.search(line)]
        after = await self._dead_letter_counts()
        found += [
            f"{topic}: {after[topic] - before} dead letter(s)"
            for topic, before in self._dead_letters.items()
            if after[topic] > before
        ]
        return found

    async def _dead_letter_counts(self) -> dict[str, int]:
        prefix = self.env.get("SWITCHBOARD_TOPIC_PREFIX", "")
        topics = [f"{prefix}{topic.dead_letter}" for topic in COMMAND_TOPICS]
        consumer = AIOKafkaConsumer(bootstrap_servers=self.env["SWITCHBOARD_KAFKA_BOOTSTRAP"])
        await consumer.start()
        try:
            partitions = [TopicPartition(topic, 0) for topic in topics]
            ends = await consumer.end_offsets(partitions)
            return {tp.topic: ends[tp] for tp in partitions}
        finally:
            await consumer.stop()
