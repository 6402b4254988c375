"""The markdown summary of a run, and the sizes of the collections the run left behind."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient

from bench.system import BenchSystem
from switchboard.testing.system import DATABASE_ENV

TARGET_LOW_RATE = 20
TARGET_SUSTAINED = 250
TARGET_SUSTAINED_P99_MS = 150


async def collection_sizes(bench: BenchSystem) -> dict[str, dict[str, int]]:
    client: AsyncMongoClient = AsyncMongoClient(bench.env["SWITCHBOARD_MONGO_URI"])
    try:
        sizes: dict[str, dict[str, int]] = {}
        for service in DATABASE_ENV:
            db = client[bench.database(service)]
            sizes[service] = {name: await db[name].count_documents({}) for name in sorted(await db.list_collection_names())}
        return sizes
    finally:
        await client.close()


def _row(results: dict[str, Any], target: str, rate: float) -> dict[str, Any] | None:
    return next((r for r in results["curve"] if r["target"] == target and r["offered_rate"] == rate), None)


def verdicts(results: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for each target of the brief; met is None when not measured."""
    out: list[tuple[str, str, bool | None]] = []
    low, base = _row(results, "switchboard", TARGET_LOW_RATE), _row(results, "baseline", TARGET_LOW_RATE)
    if low:
        lat = low["latency_ms"]
        out.append(("p50 <= 15 ms at 20/s", f"{lat['p50']} ms", lat["p50"] <= 15))
        out.append(("p99 <= 50 ms at 20/s", f"{lat['p99']} ms", lat["p99"] <= 50))
    sustained = _row(results, "switchboard", TARGET_SUSTAINED)
    if sustained:
        lat = sustained["latency_ms"]
        fine = lat["p99"] <= TARGET_SUSTAINED_P99_MS and sustained["errors"] == 0 and sustained["throughput_per_s"] >= 0.95 * TARGET_SUSTAINED
        out.append(
            (
                ">= 250 calls/s, p99 <= 150 ms, no errors",
                f"{sustained['throughput_per_s']}/s, p99 {lat['p99']} ms, {sustained['errors']} errors",
                fine,
            )
        )
    if low and base:
        p50 = low["latency_ms"]["p50"] / base["latency_ms"]["p50"]
        p99 = low["latency_ms"]["p99"] / base["latency_ms"]["p99"]
        out.append(("p50 <= 3x baseline (20/s)", f"{p50:.1f}x", p50 <= 3))
        out.append(("p99 <= 4x baseline (20/s)", f"{p99:.1f}x", p99 <= 4))
    for row in results["saturation"]:
        if (row["rate_limit_per_s"] or row.get("max_in_flight")) and "refused_latency_ms" in row:
            refused = row["refused_latency_ms"]["p99"]
            out.append(
                (
                    f"excess refused within 50 ms (p99), {_bound(row)}",
                    f"{refused} ms, {row['refused']} refused",
                    refused <= 50,
                )
            )
    return out


def _bound(row: dict[str, Any]) -> str:
    if row["rate_limit_per_s"]:
        return f"rate limit {row['rate_limit_per_s']:g}/s"
    if row.get("max_in_flight"):
        return f"max in flight {row['max_in_flight']}"
    return "none"


def _yes(met: bool | None) -> str:
    return {True: "met", False: "NOT met", None: "not measured"}[met]


def idle_cores(results: dict[str, Any], row: dict[str, Any]) -> float:
    idle = results.get("idle") or {}
    return idle.get("baseline_cores" if row["target"] == "baseline" else "switchboard_cores", 0.0)


def marginal_ms(results: dict[str, Any], row: dict[str, Any]) -> float:
    """CPU per call above the idle floor (the consumers' polling, background relays)."""
    cpu = row["cpu"]
    floor = idle_cores(results, row) * cpu.get("wall_s", row["duration_s"]) * 1000 / max(cpu.get("served", row["calls"]), 1)
    return max(cpu["ms_per_call"] - floor, 0.01)


def cpu_bound(results: dict[str, Any], row: dict[str, Any], cores: int) -> int:
    """Calls/s the cores left after the idle floor could serve at this run's marginal CPU per call
    (load generator included), if nothing else ran on the machine."""
    generator_ms = row["cpu"]["load_generator_cores"] * 1000 / max(row["offered_rate"], 1)
    return int((cores - idle_cores(results, row)) * 1000 / (marginal_ms(results, row) + generator_ms))


def curve_table(results: dict[str, Any], rows: list[dict[str, Any]], cores: int) -> str:
    lines = [
        "| target | offered/s | ok/s | errors | p50 ms | p95 ms | p99 ms | max ms | CPU ms/call | above idle | CPU bound/s | other load (cores) | CPU probe ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (r["offered_rate"], r["target"] != "switchboard")):
        lat = r["latency_ms"]
        lines.append(
            f"| {r['target']} | {r['offered_rate']:g} | {r['throughput_per_s']} | {r['errors']} | {lat['p50']} | "
            f"{lat['p95']} | {lat['p99']} | {lat['max']} | {r['cpu']['ms_per_call']} | {marginal_ms(results, r):.1f} | "
            f"{cpu_bound(results, r, cores)} | {r['cpu']['other_processes_cores']} | {r.get('cpu_probe_ms', '-')} |"
        )
    return "\n".join(lines)


def ratio_table(results: dict[str, Any]) -> str:
    lines = ["| offered/s | p50 ratio | p99 ratio | CPU ratio |", "|---:|---:|---:|---:|"]
    for rate in sorted({r["offered_rate"] for r in results["curve"]}):
        ours, base = _row(results, "switchboard", rate), _row(results, "baseline", rate)
        if ours and base:
            lines.append(
                f"| {rate:g} | {ours['latency_ms']['p50'] / base['latency_ms']['p50']:.1f}x | "
                f"{ours['latency_ms']['p99'] / base['latency_ms']['p99']:.1f}x | "
                f"{ours['cpu']['ms_per_call'] / max(base['cpu']['ms_per_call'], 0.01):.1f}x |"
            )
    return "\n".join(lines)


def tools_table(row: dict[str, Any]) -> str:
    lines = ["| tool | calls | ok/s | errors | p50 ms | p95 ms | p99 ms | max ms |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for tool, t in row["tools"].items():
        lat = t["latency_ms"]
        lines.append(
            f"| {tool} | {t['calls']} | {t['throughput_per_s']} | {t['errors']} | {lat['p50']} | {lat['p95']} | {lat['p99']} | {lat['max']} |"
        )
    return "\n".join(lines)


def cpu_table(row: dict[str, Any]) -> str:
    by_process = row["cpu"]["ms_per_call_by_process"]
    return "| " + " | ".join(by_process) + " | total |\n|" + "---:|" * (len(by_process) + 1) + "\n| " + " | ".join(
        f"{v}" for v in by_process.values()
    ) + f" | {row['cpu']['ms_per_call']} |"


def markdown(results: dict[str, Any]) -> str:
    m = results["machine_before"]
    parts = [
        f"# Benchmark {results['name']}",
        "",
        f"{m['date']}, commit {m['commit']}{' (with uncommitted changes)' if m['uncommitted_changes'] else ''}; "
        f"{m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, Linux {m['kernel']}, Python {m['python']}. "
        f"Load average before: {m['load_average']}, after: {results['machine_after']['load_average']}. "
        f"CPU probe before: {m.get('cpu_probe_ms', '-')} ms, after: {results['machine_after'].get('cpu_probe_ms', '-')} ms. "
        "Everything co-located: load generator, gateway, four services, Kafka, FerretDB.",
        "",
        "## Targets",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
        *[f"| {name} | {measured} | {_yes(met)} |" for name, measured, met in verdicts(results)],
        "",
        "## Latency against offered load",
        "",
        curve_table(results, results["curve"], m["cores"]),
        "",
        "CPU ms/call: all the target's processes (for the system: gateway, services, Kafka, FerretDB) "
        "over the calls served; above idle: less what they burn with no load at all; CPU bound/s: the "
        "calls per second the cores left after the idle floor could serve at that marginal cost "
        "(load generator included) if nothing else ran on the machine; CPU probe: the best of three "
        "timings of one fixed Python loop just before the step (`bench/machine.py`): the same code "
        "measured at a slower probe is slower.",
        "",
        "Switchboard as a ratio of the single-process baseline:",
        "",
        ratio_table(results),
    ]
    for rate in (TARGET_LOW_RATE, TARGET_SUSTAINED):
        row = _row(results, "switchboard", rate)
        if row:
            parts += ["", f"## Per tool at {rate}/s", "", tools_table(row), "", "CPU ms per tool call by process:", "", cpu_table(row)]
    if results.get("legacy_era"):
        row = results["legacy_era"]
        parts += ["", "## 2025-era client (stateless tools/call) at 100/s", "", curve_table(results, [row], m["cores"])]
    if results["saturation"]:
        parts += [
            "",
            "## Past saturation",
            "",
            "| gateway bound | offered/s | ok/s | refused (429 or busy) | refused p99 ms | errors | served p50 ms | served p99 ms |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in results["saturation"]:
            refused = r.get("refused_latency_ms", {}).get("p99", "-")
            parts.append(
                f"| {_bound(r)} | {r['offered_rate']:g} | {r['throughput_per_s']} | {r['refused']} | {refused} | "
                f"{r['errors']} | {r['latency_ms']['p50']} | {r['latency_ms']['p99']} |"
            )
    if results.get("idle"):
        idle = results["idle"]
        parts += [
            "",
            "## At idle",
            "",
            f"With no load the system uses {idle['switchboard_cores']} cores and the baseline {idle['baseline_cores']}: "
            f"{idle['cores_by_process']}.",
        ]
    if results.get("contacts_scaling"):
        parts += ["", "## lookup_contact's native query against the number of contacts", "", "| contacts | insert s | lookups | p50 ms | p99 ms | max ms | plan |", "|---:|---:|---:|---:|---:|---:|---|"]
        for r in results["contacts_scaling"]:
            plan = "; ".join(r["plan"] or []) if isinstance(r["plan"], list) else str(r["plan"])
            parts.append(
                f"| {r['contacts']} | {r['insert_seconds']} | {r['lookups']} | {r['lookup_ms']['p50']} | {r['lookup_ms']['p99']} | "
                f"{r['lookup_ms']['max']} | {plan} (pushdown: {r['filter_pushdown']}) |"
            )
    if results.get("collections"):
        parts += ["", "## Collection sizes after the load runs", "", "```", *[f"{s}: {c}" for s, c in results["collections"].items()], "```"]
    return "\n".join(parts) + "\n"
