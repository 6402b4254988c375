"""One fault scenario: steady load, the fault, recovery, then the ledger audited against the stores."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest

from tests.faults.audit import (
    RELEASED_CLAIM,
    after_released_claims,
    all_after_released_claims,
    audit,
    effects_of_failed_calls,
    figures,
    settle,
)
from tests.faults.harness import FaultSystem
from tests.faults.load import Ledger, Load

Fault = Callable[[], Awaitable[float]]
"""Injects the fault and returns when it ended (time.monotonic())."""


async def under_load(
    target: FaultSystem,
    scenario: str,
    fault: Fault,
    *,
    hits: tuple[str, ...],
    noted: Mapping[str, float] | None = None,
    rate: float = 15.0,
) -> dict[str, Any]:
    """Run `fault` under load; returns the figures, and fails on any lost, duplicated or late effect.

    It fails too when the fault took no effect: no attempt of the tools in `hits` under way while
    it lasted failed or was refused. `noted` is what the fault measured itself (read once it ended),
    added to the figures. Findings that are all the known defect `RELEASED_CLAIM` mark the test as an
    expected failure, with the findings as its reason; any other finding fails it.
    """
    async with Load(target, scenario, rate=rate) as load:
        started = time.monotonic()
        await load.wait_recovered(started, timeout=60)
        began = time.monotonic()
        ended = await fault()
        recovery = await load.wait_recovered(ended)
    stored = await settle(target, load.ledger)
    findings = audit(load.ledger, stored)
    hit = load.ledger.failed_during(began, ended, hits)
    numbers = figures(
        scenario,
        load.ledger,
        findings,
        recovery_s=recovery,
        fault_s=ended - began,
        ticks_skipped=load.skipped,
        failed_attempts_during_fault=len(hit),
        failed_calls_with_an_effect=effects_of_failed_calls(load.ledger, stored),
        released_claims=len(after_released_claims(load.ledger, stored, target.demo.account_id)),
        **(noted or {}),
    )
    assert_took_effect(scenario, load.ledger, began, ended, hits)
    released = after_released_claims(load.ledger, stored, target.demo.account_id)
    if all_after_released_claims(findings, released):
        pytest.xfail(f"{scenario}: {RELEASED_CLAIM}: {findings.problems()}")
    assert not findings.problems(), f"{scenario}: {findings.problems()}\nfigures: {numbers}"
    return numbers


def assert_took_effect(scenario: str, ledger: Ledger, began: float, ended: float, hits: tuple[str, ...]) -> None:
    """Some attempt of `hits` under way during the fault failed or was refused: the fault did something."""
    hit = ledger.failed_during(began, ended, hits)
    under_way = ledger.under_way(began, ended, hits)
    assert hit, (
        f"{scenario}: the fault took no effect: none of the {len(under_way)} attempts of {', '.join(hits)} "
        f"under way during its {ended - began:.1f}s failed or was refused"
    )
