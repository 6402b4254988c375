"""The broker, then the database, killed (SIGKILL) under load and started again on their data.

These run on a private Kafka and FerretDB (own ports and state directory, started by scripts/infra),
never on the shared servers other tests use.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.faults.harness import TOOL_TIMEOUT, FaultSystem, PrivateInfra
from tests.faults.load import MIX
from tests.faults.scenario import under_load

pytestmark = [pytest.mark.faults, pytest.mark.timeout(480)]

DOWN_FOR = TOOL_TIMEOUT + 2.0
"""Seconds a killed server stays down before it is started again (the restart itself takes longer):
longer than a tool call's deadline, so that the calls made meanwhile fail and the fault shows."""


def crash_and_restart(servers: PrivateInfra, server: str):
    async def fault() -> float:
        servers.kill(server)
        await asyncio.sleep(DOWN_FOR)
        await asyncio.to_thread(servers.up)
        return time.monotonic()

    return fault


async def test_the_broker_killed_and_restarted_loses_and_repeats_nothing(
    private_system: FaultSystem, private_infra: PrivateInfra
) -> None:
    await under_load(private_system, "kafka-kill-restart", crash_and_restart(private_infra, "kafka"), hits=MIX)


async def test_the_database_killed_and_restarted_loses_and_repeats_nothing(
    private_system: FaultSystem, private_infra: PrivateInfra
) -> None:
    await under_load(private_system, "database-kill-restart", crash_and_restart(private_infra, "ferretdb"), hits=MIX)
