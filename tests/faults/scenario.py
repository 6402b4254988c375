"""One fault scenario: steady load, the fault, recovery, then the ledger audited against the stores."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from tests.faults.audit import audit, figures, settle
from tests.faults.harness import FaultSystem
from tests.faults.load import Load

Fault = Callable[[], Awaitable[float]]
"""Injects the fault and returns when it ended (time.monotonic())."""


async def under_load(target: FaultSystem, scenario: str, fault: Fault, *, rate: float = 15.0) -> dict[str, Any]:
    """Run `fault` under load; returns the figures, and fails on any lost, duplicated or late effect."""
    async with Load(target, scenario, rate=rate) as load:
        started = time.monotonic()
        await load.wait_recovered(started, timeout=60)
        began = time.monotonic()
        ended = await fault()
        recovery = await load.wait_recovered(ended)
    stored = await settle(target, load.ledger)
    findings = audit(load.ledger, stored)
    numbers = figures(
        scenario, load.ledger, findings, recovery_s=recovery, fault_s=ended - began, ticks_skipped=load.skipped
    )
    assert not findings.problems(), f"{scenario}: {findings.problems()}\nfigures: {numbers}"
    return numbers
