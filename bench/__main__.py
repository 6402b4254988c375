"""`python -m bench` (`make bench`): measure the whole system against the single-process baseline.

    python -m bench                 # the full run, about ten minutes
    python -m bench --quick         # a few seconds per step: checks that the harness works
    python -m bench --name mine     # results in bench/results/mine.json and mine.md

Steps: start the system (free ports, own topics and databases), seed the demo account, add native
contacts; warm up; latency against offered load for the system and the baseline, rate by rate;
a 2025-era client at one rate; CPU at idle; saturation with and without the per-key rate limit;
a profile of the gateway under load; lookup scaling with the number of contacts. The run has its
own Kafka and FerretDB on free ports (deleted at the end), unless `--shared-servers`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import machine, report
from bench.cpu import CpuSnapshot, CpuUsage
from bench.load import LEGACY
from bench.profiled import MODULE, OUTPUT, START, STOP
from bench.runner import Target, measure, targets
from bench.scaling import contacts_scaling
from bench.system import BenchSystem, ProcessSpec, rate_limit_env
from bench.workload import insert_contacts
from contacts_svc.repository import INDEXES as CONTACT_INDEXES
from switchboard.mongo import connect, ensure_indexes
from switchboard.testing.system import GATEWAY

RESULTS = Path(__file__).parent / "results"
RUNNING: list[BenchSystem] = []
"""The system of the run under way, so an interrupted run still stops it (see main)."""
PROFILED_GATEWAY = ProcessSpec("gateway", "bench.profiled", GATEWAY.port_env, GATEWAY.host_env, 0)


@dataclass(frozen=True)
class Plan:
    rates: tuple[float, ...]
    duration: float
    low_rate_duration: float
    warmup: float
    warmup_rate: float
    contacts: int
    scaling_sizes: tuple[int, ...]
    scaling_lookups: int
    saturation_duration: float
    profile_rate: float
    profile_duration: float
    idle_seconds: float


FULL = Plan(
    rates=(20, 50, 100, 200, 250, 300),
    duration=20,
    low_rate_duration=30,
    warmup=60,
    warmup_rate=50,
    contacts=100,
    scaling_sizes=(1_000, 10_000, 100_000, 1_000_000),
    scaling_lookups=20,
    saturation_duration=10,
    profile_rate=200,
    profile_duration=15,
    idle_seconds=10,
)
QUICK = Plan(
    rates=(20, 100),
    duration=3,
    low_rate_duration=3,
    warmup=2,
    warmup_rate=20,
    contacts=100,
    scaling_sizes=(1_000, 3_000),
    scaling_lookups=5,
    saturation_duration=3,
    profile_rate=50,
    profile_duration=3,
    idle_seconds=2,
)


def say(message: str) -> None:
    print(f"bench {time.strftime('%H:%M:%S')}: {message}", flush=True)


def headline(row: dict[str, Any]) -> str:
    lat = row["latency_ms"]
    return (
        f"{row['target']:<11} {row['offered_rate']:>5.0f}/s: ok {row['ok']}, errors {row['errors']}, refused "
        f"{row['refused']}, p50 {lat['p50']} ms, p99 {lat['p99']} ms, CPU {row['cpu']['ms_per_call']} ms/call, "
        f"other load {row['cpu']['other_processes_cores']} cores, CPU probe {row.get('cpu_probe_ms', '-')} ms"
    )


def saturated(row: dict[str, Any]) -> bool:
    """Far past what the target can serve: higher rates would only pile up more timeouts or refusals."""
    return row["errors"] + row["refused"] > row["calls"] / 2


async def load_curve(bench: BenchSystem, plan: Plan, results: dict[str, Any]) -> None:
    found = targets(bench)
    done: set[str] = set()
    for rate in plan.rates:
        duration = plan.low_rate_duration if rate <= 20 else plan.duration
        for name in ("switchboard", "baseline"):
            if name in done:
                continue
            row = await measure(bench, found[name], rate=rate, duration=duration, contacts=plan.contacts, tag=f"{name}-{rate:g}")
            results["curve"].append(row)
            say(headline(row))
            if saturated(row):
                say(f"{name} saturated at {rate:g}/s: no higher rates for it")
                done.add(name)


async def idle_cpu(bench: BenchSystem, seconds: float) -> dict[str, Any]:
    """Cores each process uses with no load at all: the floor under every measurement."""
    pids = {**bench.pids(), **bench.pids(baseline=True)}
    before, started = CpuSnapshot.take(pids), time.perf_counter()
    await asyncio.sleep(seconds)
    usage = CpuUsage.between(before, CpuSnapshot.take(pids))
    wall = time.perf_counter() - started
    cores = {name: round(s / wall, 3) for name, s in usage.processes.items()}
    return {
        "seconds": round(wall, 1),
        "cores_by_process": cores,
        "switchboard_cores": round(sum(cores[name] for name in bench.pids()), 3),
        "baseline_cores": round(sum(cores[name] for name in bench.pids(baseline=True)), 3),
    }


IN_FLIGHT_SECONDS = 0.5
"""The saturation test bounds the gateway's requests in flight at the sustained rate times this."""

UNBOUNDED = 1_000_000


def sustained_rate(results: dict[str, Any], plan: Plan) -> float:
    """The highest offered rate the system served in time (p99 within the sustained target's bound)
    without an error or a refusal: the rate an operator would set a limit at (the lowest planned
    rate if none)."""
    clean = [
        r["offered_rate"]
        for r in results["curve"]
        if r["target"] == "switchboard"
        and r["errors"] == 0
        and r["refused"] == 0
        and r["latency_ms"]["p99"] <= report.TARGET_SUSTAINED_P99_MS
    ]
    return max(clean, default=min(plan.rates))


async def saturation(bench: BenchSystem, plan: Plan, results: dict[str, Any]) -> None:
    """Twice the sustained rate: against a per-key limit at the sustained rate, against the gateway's
    bound on requests in flight (sustained rate x IN_FLIGHT_SECONDS), and with neither."""
    limit = sustained_rate(results, plan)
    unbounded = {"SWITCHBOARD_GATEWAY_MAX_IN_FLIGHT": str(UNBOUNDED)}
    await bench.restart_gateway({**rate_limit_env(limit, max(int(limit // 4), 1)), **unbounded})
    row = await measure(bench, targets(bench)["switchboard"], rate=2 * limit, duration=plan.saturation_duration, contacts=plan.contacts, tag="limited")
    results["saturation"].append({"rate_limit_per_s": limit, **row})
    say("rate limit " + headline(row))
    bound = max(int(limit * IN_FLIGHT_SECONDS), 1)
    await bench.restart_gateway({"SWITCHBOARD_GATEWAY_MAX_IN_FLIGHT": str(bound)})
    row = await measure(bench, targets(bench)["switchboard"], rate=2 * limit, duration=plan.saturation_duration, contacts=plan.contacts, tag="in-flight")
    results["saturation"].append({"rate_limit_per_s": None, "max_in_flight": bound, **row})
    say(f"max in flight {bound} " + headline(row))
    await bench.restart_gateway(unbounded)
    row = await measure(bench, targets(bench)["switchboard"], rate=2 * limit, duration=plan.saturation_duration, contacts=plan.contacts, tag="overload")
    results["saturation"].append({"rate_limit_per_s": None, **row})
    say("no limit  " + headline(row))


async def profile_gateway(bench: BenchSystem, plan: Plan, rate: float, name: str, results: dict[str, Any]) -> None:
    output = RESULTS / f"{name}-gateway-profile.txt"
    output.unlink(missing_ok=True)
    await bench.restart_gateway({MODULE: "gateway", OUTPUT: str(output)}, spec=PROFILED_GATEWAY)
    gateway = bench.system.get(GATEWAY.name)
    bench.system.signal(gateway, START)
    row = await measure(
        bench, targets(bench)["switchboard"], rate=rate, duration=plan.profile_duration, contacts=plan.contacts, tag="profile"
    )
    bench.system.signal(gateway, STOP)
    for _ in range(600):
        if output.exists():
            break
        await asyncio.sleep(0.1)
    await bench.restart_gateway({})
    results["profile"] = {"file": output.name, **{k: row[k] for k in ("offered_rate", "duration_s", "latency_ms", "cpu")}}
    say(f"gateway profile at {rate:g}/s in {output}")


async def scaling(bench: BenchSystem, plan: Plan, results: dict[str, Any]) -> None:
    database = f"bench_{bench.run_id}_scale"
    client = connect(bench.env["SWITCHBOARD_MONGO_URI"], app_name="switchboard-bench")
    try:
        await ensure_indexes(client[database], CONTACT_INDEXES)
        results["contacts_scaling"] = await contacts_scaling(client, database, plan.scaling_sizes, lookups=plan.scaling_lookups)
        for row in results["contacts_scaling"]:
            say(f"{row['contacts']} contacts: inserted in {row['insert_seconds']} s, lookup p50 {row['lookup_ms']['p50']} ms")
    finally:
        await client.drop_database(database)
        await client.close()


async def run(plan: Plan, name: str, skip: set[str], *, private_servers: bool) -> dict[str, Any]:
    results: dict[str, Any] = {
        "name": name,
        "machine_before": machine.describe(),
        "plan": plan.__dict__,
        "private_servers": private_servers,
        "curve": [],
        "saturation": [],
    }
    say(f"load average {results['machine_before']['load_average']}; starting the system")
    bench = await BenchSystem.start(private_servers=private_servers)
    RUNNING.append(bench)
    try:
        assert bench.demo is not None
        client = connect(bench.env["SWITCHBOARD_MONGO_URI"], app_name="switchboard-bench")
        try:
            seconds = await insert_contacts(client, bench.database("contacts"), bench.demo.account_id, plan.contacts)
        finally:
            await client.close()
        say(f"{plan.contacts} native contacts inserted in {seconds:.2f} s; baseline starting")
        await bench.start_baseline()
        results["idle"] = await idle_cpu(bench, plan.idle_seconds)
        say(f"idle: {results['idle']['switchboard_cores']} cores for the system, {results['idle']['baseline_cores']} for the baseline")
        for target in targets(bench).values():
            await measure(bench, target, rate=plan.warmup_rate, duration=plan.warmup, contacts=plan.contacts, tag=f"warmup-{target.name}")
        await load_curve(bench, plan, results)
        if "era" not in skip:
            rate = min(100, sustained_rate(results, plan))
            row = await measure(bench, targets(bench)["switchboard"], rate=rate, duration=plan.duration, contacts=plan.contacts, era=LEGACY, tag="legacy")
            results["legacy_era"] = row
            say("2025 era  " + headline(row))
        if "saturation" not in skip:
            await saturation(bench, plan, results)
        if "profile" not in skip:
            await profile_gateway(bench, plan, min(plan.profile_rate, sustained_rate(results, plan)), name, results)
        results["collections"] = await report.collection_sizes(bench)
        if "scaling" not in skip:
            await scaling(bench, plan, results)
    finally:
        RUNNING.remove(bench)
        bench.stop()
    results["machine_after"] = machine.describe()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds per step, to check the harness")
    parser.add_argument("--name", help="results file name (default: quick or full, with the date)")
    parser.add_argument("--skip", action="append", default=[], choices=["era", "saturation", "profile", "scaling"])
    parser.add_argument("--rates", help="offered rates of the load curve, comma-separated (default: the plan's)")
    parser.add_argument(
        "--shared-servers",
        action="store_true",
        help="use the shared Kafka and FerretDB of scripts/infra instead of starting a private pair",
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    if args.rates:
        plan = dataclasses.replace(plan, rates=tuple(float(r) for r in args.rates.split(",")))
    name = args.name or f"{'quick' if args.quick else 'full'}-{time.strftime('%Y%m%d-%H%M')}"
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        results = asyncio.run(run(plan, name, set(args.skip), private_servers=not args.shared_servers))
    finally:
        for bench in RUNNING:
            bench.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=1) + "\n")
    (RESULTS / f"{name}.md").write_text(report.markdown(results))
    say(f"results in {RESULTS / name}.json and .md")


if __name__ == "__main__":
    main()
