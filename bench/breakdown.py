"""`python -m bench.breakdown`: where one tool call's time goes, stage by stage, on a quiet system.

Starts the system (as `python -m bench` does) with every process writing its spans to one file,
sends each tool of the mix one call at a time (closed loop, a short pause between calls, so nothing
queues), to the system and to the baseline, and reads the traces back: for each tool, the median
of each stage of the critical path.

    gateway in      HTTP request received until the command is handed to the producer
    command send    the producer's send_and_wait of the command (until the broker acknowledged it)
    to service      command acknowledged until the service started processing it (the fetch)
    service         the service's processing of the command: its handler and database calls, the
                    reply's send, and what it does after the reply (announcing facts)
    database        the service's MongoDB commands (the sum of their spans: concurrent reads add up)
    reply send      the service's send of the reply, until acknowledged
    back            reply acknowledged until the gateway's tool span ended (the gateway's fetch and wake-up)
    gateway out     tool span ended until the HTTP request's span ended (the MCP answer)

and two counts of the whole trace (every process): `db requests`, its MongoDB requests, and `db in
a row`, how many of them had to wait for the one before (requests sent at once count as one).

Results: `bench/results/<name>.md` and `.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.load import McpClient, ToolCall
from bench.runner import targets
from bench.system import BenchSystem
from bench.workload import MIX, Workload, calls_needed, live_call_ids, place_calls, insert_contacts
from switchboard.mongo import connect

RESULTS = Path(__file__).parent / "results"
STAGES = ("gateway in", "command send", "to service", "service", "database", "reply send", "back", "gateway out")
COUNTS = ("db requests", "db in a row")


def _ms(nanoseconds: int) -> float:
    return nanoseconds / 1e6


def stages(spans: list[dict[str, Any]]) -> dict[str, float] | None:
    """One trace's stages and counts (see the module's docstring), or None if it is not a complete tool call."""
    by_name: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for span in spans:
        by_name[span["kind"] + ":" + span["name"].split(" ")[-1]].append(span)
    roots = [s for s in spans if s["parent_id"] is None]
    tool = next((s for s in spans if s["name"].startswith("tool ")), None)
    command = next((s for s in spans if s["kind"] == "PRODUCER" and s["service"] == "switchboard-gateway"), None)
    process = next((s for s in spans if s["kind"] == "CONSUMER" and s["name"].endswith(" process")), None)
    reply = next(
        (s for s in spans if s["kind"] == "PRODUCER" and process is not None and s["parent_id"] == process["span_id"]),
        None,
    )
    if not roots or tool is None or command is None or process is None or reply is None:
        return None
    root = roots[0]
    database = sum(
        s["end"] - s["start"]
        for s in spans
        if s["kind"] == "CLIENT" and s["attributes"].get("db.system") == "mongodb" and s["service"] == process["service"]
    )
    requests = sorted(
        (s for s in spans if s["kind"] == "CLIENT" and s["attributes"].get("db.system") == "mongodb"),
        key=lambda s: s["start"],
    )
    in_a_row, busy_until = 0, -1
    for request in requests:
        if request["start"] >= busy_until:
            in_a_row += 1
        busy_until = max(busy_until, request["end"])
    return {
        "db requests": len(requests),
        "db in a row": in_a_row,
        "total": _ms(root["end"] - root["start"]),
        "gateway in": _ms(command["start"] - root["start"]),
        "command send": _ms(command["end"] - command["start"]),
        "to service": _ms(process["start"] - command["end"]),
        "service": _ms(process["end"] - process["start"]),
        "database": _ms(database),
        "reply send": _ms(reply["end"] - reply["start"]),
        "back": _ms(tool["end"] - reply["end"]),
        "gateway out": _ms(root["end"] - tool["end"]),
    }


def read_traces(path: Path) -> dict[str, list[dict[str, Any]]]:
    traces: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if path.exists():
        for line in path.read_text().splitlines():
            span = json.loads(line)
            traces[span["trace_id"]].append(span)
    return traces


async def sequential(client: McpClient, calls: list[ToolCall], pause: float) -> list[tuple[str, float, str]]:
    answers = []
    for call in calls:
        started = time.perf_counter()
        outcome = await client.call_tool(call)
        answers.append((call.tool, (time.perf_counter() - started) * 1000, outcome))
        await asyncio.sleep(pause)
    return answers


def median(values: list[float]) -> float:
    return round(statistics.median(values), 2) if values else float("nan")


async def run(per_tool: int, pause: float, name: str) -> dict[str, Any]:
    spans = RESULTS / f"{name}-spans.jsonl"
    spans.unlink(missing_ok=True)
    RESULTS.mkdir(exist_ok=True)
    bench = await BenchSystem.start(extra_env={"SWITCHBOARD_OTEL_FILE": str(spans)})
    try:
        assert bench.demo is not None
        demo = bench.demo
        client = connect(bench.env["SWITCHBOARD_MONGO_URI"], app_name="switchboard-bench")
        try:
            await insert_contacts(client, bench.database("contacts"), demo.account_id, 100)
        finally:
            await client.close()
        await bench.start_baseline()
        results: dict[str, Any] = {"name": name, "per_tool": per_tool, "pause_s": pause, "targets": {}}
        for target in targets(bench).values():
            count = per_tool * len(MIX) + 20
            live = live_call_ids(f"{bench.run_id}-{target.name}", calls_needed(count / 10, 10) + per_tool * 2)
            await place_calls(bench.urls["call-control"], bench.env["SWITCHBOARD_ADMIN_TOKEN"], demo.account_id, demo.persona_id, live)
            workload = Workload(live_calls=live, contacts=100, users=[demo.available_user, demo.dnd_user])
            mcp = McpClient(target.url, api_key=demo.api_key, account_id=demo.account_id, persona_id=demo.persona_id)
            try:
                await sequential(mcp, [workload.next() for _ in range(20)], pause)  # warm-up
                drawn: dict[str, list[ToolCall]] = defaultdict(list)
                while any(len(drawn[tool]) < per_tool for tool in MIX):
                    call = workload.next()
                    if len(drawn[call.tool]) < per_tool:
                        drawn[call.tool].append(call)
                calls = [call for n in range(per_tool) for tool in MIX for call in drawn[tool][n : n + 1]]
                answers = await sequential(mcp, calls, pause)
            finally:
                await mcp.close()
            by_tool: dict[str, dict[str, Any]] = {}
            for tool in MIX:
                mine = [a for a in answers if a[0] == tool]
                by_tool[tool] = {
                    "client_p50_ms": median([a[1] for a in mine]),
                    "errors": sum(1 for a in mine if a[2] != "ok"),
                }
            results["targets"][target.name] = by_tool
        await asyncio.sleep(1)  # the last spans reach the file
    finally:
        bench.stop()
    per_tool_stages: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for trace in read_traces(spans).values():
        found = stages(trace)
        tool = next((s["name"].removeprefix("tool ") for s in trace if s["name"].startswith("tool ")), None)
        if found is None or tool is None:
            continue
        for stage, value in found.items():
            per_tool_stages[tool][stage].append(value)
    results["stages_ms"] = {
        tool: {stage: median(values) for stage, values in found.items()} | {"traces": len(found["total"])}
        for tool, found in per_tool_stages.items()
    }
    return results


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"# Stage breakdown `{results['name']}`",
        "",
        f"{results['per_tool']} calls per tool, one at a time, {results['pause_s'] * 1000:.0f} ms apart; medians in ms. "
        "Stages as in `bench/breakdown.py`: `service` includes the reply's send and the work after it, "
        "`database` sums the service's MongoDB spans (concurrent ones add up).",
        "",
        "| tool | client (system) | client (baseline) | span total | " + " | ".join(STAGES + COUNTS) + " |",
        "|---|" + "---:|" * (3 + len(STAGES) + len(COUNTS)),
    ]
    for tool in MIX:
        system = results["targets"].get("switchboard", {}).get(tool, {})
        baseline = results["targets"].get("baseline", {}).get(tool, {})
        found = results["stages_ms"].get(tool, {})
        cells = [str(system.get("client_p50_ms")), str(baseline.get("client_p50_ms")), str(found.get("total"))]
        cells += [str(found.get(stage)) for stage in STAGES + COUNTS]
        lines.append(f"| {tool} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.breakdown", description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-tool", type=int, default=40)
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between calls")
    parser.add_argument("--name", default=f"breakdown-{time.strftime('%Y%m%d-%H%M')}")
    args = parser.parse_args()
    results = asyncio.run(run(args.per_tool, args.pause, args.name))
    (RESULTS / f"{args.name}.json").write_text(json.dumps(results, indent=1) + "\n")
    (RESULTS / f"{args.name}.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
