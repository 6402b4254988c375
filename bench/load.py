"""An open-loop load generator of MCP tool calls over Streamable HTTP.

Each tool call is the single JSON-RPC POST a stateless MCP client sends: no `initialize` first
(a 2026-07-28 request carries its protocol version and capabilities in `params._meta` and the
`Mcp-Method`/`Mcp-Name` headers; a 2025-era stateless `tools/call` needs nothing before it), with
the call context headers, over a pool of keep-alive connections. An SDK `Client` per call would
spend more CPU on the client than the gateway spends on the call, and the load generator shares the
machine with the system it measures: it uses aiohttp, which costs a third of the CPU per request
that httpx did here, so the generator (one Python process, at most one core) does not fall behind
near saturation and count its own queue against the target.

Open loop: the calls are sent at Poisson arrival times fixed in advance, whatever the answers; a
call's latency is measured from its scheduled time, so a late send (the generator falling behind)
counts against the system rather than hiding its queueing.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from mcp.shared.inbound import MCP_METHOD_HEADER, MCP_NAME_HEADER, MCP_PROTOCOL_VERSION_HEADER
from mcp_types import CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, PROTOCOL_VERSION_META_KEY

from gateway import results

GIVE_UP_SECONDS = 15.0
"""A client stops waiting here: every tool's deadline is far shorter, so the call has failed anyway,
and an overloaded target does not keep a run going for minutes."""

MODERN = "2026-07-28"
LEGACY = "2025-06-18"
ERAS = (MODERN, LEGACY)


@dataclass(frozen=True, slots=True)
class ToolCall:
    tool: str
    arguments: dict[str, Any]
    call_id: str
    caller_id_number: str | None = None


@dataclass(frozen=True, slots=True)
class Sample:
    tool: str
    scheduled: float
    """Seconds from the start of the run."""
    latency: float
    """Seconds from the scheduled time to the complete answer."""
    lag: float
    """Seconds the send started after its scheduled time (the generator's own delay)."""
    outcome: str


class Outcome:
    ok = "ok"
    tool_error = "tool_error"
    busy = "busy"
    timeout = "timeout"
    rate_limited = "rate_limited"
    rpc_error = "rpc_error"
    gave_up = "gave_up"

    REFUSED = frozenset({busy, rate_limited})


class McpClient:
    def __init__(
        self, url: str, *, api_key: str, account_id: str, persona_id: str, era: str = MODERN, connections: int = 256
    ) -> None:
        if era not in ERAS:
            raise ValueError(f"era must be one of {ERAS}")
        self._url = url
        self._era = era
        self._headers = {
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            "x-api-key": api_key,
            "account_id": account_id,
            "persona_id": persona_id,
            MCP_PROTOCOL_VERSION_HEADER: era,
        }
        self._connections = connections
        self._http: aiohttp.ClientSession | None = None
        self._ids = 0
        self.error_texts: Counter[str] = Counter()
        """What failed calls said, to tell a bug from an overload."""

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections, force_close=False),
                timeout=aiohttp.ClientTimeout(total=30.0),
            )
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    def _request(self, call: ToolCall) -> tuple[bytes, dict[str, str]]:
        self._ids += 1
        params: dict[str, Any] = {"name": call.tool, "arguments": call.arguments}
        headers = {**self._headers, "call_id": call.call_id}
        if call.caller_id_number:
            headers["caller_id_number"] = call.caller_id_number
        if self._era == MODERN:
            params["_meta"] = {
                PROTOCOL_VERSION_META_KEY: MODERN,
                CLIENT_CAPABILITIES_META_KEY: {},
                CLIENT_INFO_META_KEY: {"name": "switchboard-bench", "version": "1"},
            }
            headers[MCP_METHOD_HEADER] = "tools/call"
            headers[MCP_NAME_HEADER] = call.tool
        body = {"jsonrpc": "2.0", "id": self._ids, "method": "tools/call", "params": params}
        return json.dumps(body).encode(), headers

    async def call_tool(self, call: ToolCall) -> str:
        body, headers = self._request(call)
        async with self._session().post(self._url, data=body, headers=headers) as response:
            answer = Answer(response.status, response.headers.get("content-type", ""), await response.read())
        outcome = classify(call.tool, answer)
        if outcome in (Outcome.tool_error, Outcome.rpc_error) or outcome.startswith("http_"):
            self.error_texts[f"{call.tool}: {answer.body[:300].decode(errors='replace')}"] += 1
        return outcome


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def classify(tool: str, response: Answer) -> str:
    if response.status == 429:
        return Outcome.rate_limited
    if response.status == 503 and response.content_type == "application/json":
        if response.json().get("error") == "busy":
            return Outcome.busy
    if response.status != 200:
        return f"http_{response.status}"
    answer = response.json()
    if "error" in answer:
        return Outcome.rpc_error
    result = answer.get("result") or {}
    if not result.get("isError"):
        return Outcome.ok
    text = " ".join(part.get("text", "") for part in result.get("content", []))
    if text == results.BUSY:
        return Outcome.busy
    if text == results.unavailable(tool):
        return Outcome.timeout
    return Outcome.tool_error


def poisson_schedule(rate: float, duration: float, rng: random.Random) -> list[float]:
    times, at = [], rng.expovariate(rate)
    while at < duration:
        times.append(at)
        at += rng.expovariate(rate)
    return times


async def run_open_loop(
    send: Callable[[ToolCall], Any], calls: Callable[[], ToolCall], *, rate: float, duration: float, seed: int = 1
) -> list[Sample]:
    """Send `calls()` at Poisson times of mean `rate` per second for `duration` seconds; every answer."""
    schedule = poisson_schedule(rate, duration, random.Random(seed))
    samples: list[Sample] = []
    start = time.perf_counter()

    async def one(at: float, call: ToolCall) -> None:
        sent = time.perf_counter() - start
        try:
            async with asyncio.timeout(GIVE_UP_SECONDS):
                outcome = await send(call)
        except TimeoutError:
            outcome = Outcome.gave_up
        except Exception as e:
            outcome = f"exception:{type(e).__name__}"
        samples.append(Sample(call.tool, at, time.perf_counter() - start - at, sent - at, outcome))

    tasks = set()
    for at in schedule:
        call = calls()
        delay = at - (time.perf_counter() - start)
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(at, call))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.gather(*list(tasks))
    return samples
