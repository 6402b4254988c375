"""One measured run: place the live calls it needs, offer the load, and account for the CPU it cost."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from bench.cpu import CpuSnapshot, CpuUsage, load_average, process_cpu_seconds
from bench.machine import cpu_probe_ms
from bench.load import MODERN, McpClient, run_open_loop
from bench.stats import summarise
from bench.system import BenchSystem
from bench.workload import Workload, calls_needed, live_call_ids, place_calls


@dataclass(frozen=True)
class Target:
    """Where the load goes: the gateway of the system, or the single-process baseline."""

    name: str
    url: str
    baseline: bool = False


def targets(bench: BenchSystem) -> dict[str, Target]:
    found = {"switchboard": Target("switchboard", bench.gateway_url + "/ucp/v2/mcp")}
    if bench.baseline is not None:
        found["baseline"] = Target("baseline", bench.baseline.base_url + "/ucp/v2/mcp", baseline=True)
    return found


async def measure(
    bench: BenchSystem,
    target: Target,
    *,
    rate: float,
    duration: float,
    contacts: int,
    era: str = MODERN,
    tag: str,
    seed: int = 1,
) -> dict[str, Any]:
    demo = bench.demo
    assert demo is not None
    live = live_call_ids(f"{bench.run_id}-{tag}", calls_needed(rate, duration))
    await place_calls(bench.urls["call-control"], bench.env["SWITCHBOARD_ADMIN_TOKEN"], demo.account_id, demo.persona_id, live)
    workload = Workload(live_calls=live, contacts=contacts, users=[demo.available_user, demo.dnd_user], seed=seed)
    client = McpClient(target.url, api_key=demo.api_key, account_id=demo.account_id, persona_id=demo.persona_id, era=era)
    pids = bench.pids(baseline=target.baseline)
    load_before = load_average()
    probe = cpu_probe_ms()
    before, generator_before, started = CpuSnapshot.take(pids), process_cpu_seconds(os.getpid()), time.perf_counter()
    try:
        samples = await run_open_loop(client.call_tool, workload.next, rate=rate, duration=duration, seed=seed)
    finally:
        await client.close()
    wall = time.perf_counter() - started
    usage = CpuUsage.between(before, CpuSnapshot.take(pids))
    generator = process_cpu_seconds(os.getpid()) - generator_before
    summary = summarise(samples, duration)
    served = max(summary["calls"] - summary["refused"], 1)
    summary["cpu"] = {
        "wall_s": round(wall, 2),
        "served": served,
        "ms_per_call": round(usage.total() / served * 1000, 2),
        "ms_per_call_by_process": {name: round(s / served * 1000, 2) for name, s in usage.processes.items()},
        "load_generator_cores": round(generator / wall, 2),
        "machine_busy_cores": round(usage.machine_busy / wall, 2),
        "other_processes_cores": round(max(usage.machine_busy - usage.total() - generator, 0.0) / wall, 2),
    }
    return {
        "target": target.name,
        "era": era,
        "offered_rate": rate,
        "duration_s": duration,
        "load_average_before": [round(v, 2) for v in load_before],
        "cpu_probe_ms": probe,
        **summary,
        "error_texts": dict(client.error_texts.most_common(5)),
    }
