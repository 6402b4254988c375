"""Steady load through the gateway, and the ledger of every tool call it made.

The load is open-loop: a tool call starts every 1/rate seconds whatever the others are doing, as
agents on live calls would, up to `MAX_WAITING` calls in flight. Every call has a call id of its own.
The mix:

- `create_lead` (a lead and a case), callers drawn from a small pool so that leads repeat;
- `transfer_call` and `hangup_call`, each on a call first placed on call-control's simulated PBX
  (`POST /pbx/v1/calls`), one action per call;
- the read-only tools `is_office_open`, `lookup_contact`, `check_user_availability`.

Tool calls are raw JSON-RPC POSTs (a stateless 2025-era `tools/call` needs no `initialize`).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.faults.harness import TOOL_TIMEOUT, FaultSystem

ANSWER_GRACE = 20.0
"""How much longer than the tool deadline the driver waits for an answer before calling it missing."""

MAX_WAITING = 24
"""Calls in flight at most: a tick that finds this many still waiting is skipped (and counted), so
that a slow moment on a loaded machine does not snowball into a backlog the system never drains."""

CALLERS = [f"+1415555{n:04d}" for n in range(110, 150)]
TRANSFER_DESTINATION = "+12125550143"
MIX = (
    "create_lead",
    "transfer_call",
    "is_office_open",
    "create_lead",
    "hangup_call",
    "lookup_contact",
    "create_lead",
    "transfer_call",
    "check_user_availability",
    "hangup_call",
)
SIDE_EFFECTS = ("create_lead", "transfer_call", "hangup_call")


class Outcome:
    ok = "ok"
    tool_error = "tool_error"
    """A tool result with isError: a sentence for the model."""
    rpc_error = "rpc_error"
    http_error = "http_error"
    no_answer = "no_answer"
    """No HTTP answer at all before the driver gave up: never acceptable."""
    not_placed = "not_placed"
    """The simulated PBX did not take the call, so no tool call was made (not a tool call outcome)."""


@dataclass
class ToolCall:
    tool: str
    call_id: str
    started: float
    started_at: datetime
    caller: str | None = None
    ended: float | None = None
    outcome: str = ""
    status: int | None = None
    text: str = ""
    structured: dict[str, Any] | None = None

    @property
    def seconds(self) -> float:
        assert self.ended is not None
        return self.ended - self.started

    @property
    def acknowledged(self) -> bool:
        return self.outcome == Outcome.ok


@dataclass
class Ledger:
    calls: list[ToolCall] = field(default_factory=list)

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [c for c in self.calls if c.outcome != Outcome.not_placed]

    def acknowledged(self, tool: str) -> list[ToolCall]:
        return [c for c in self.calls if c.tool == tool and c.acknowledged]

    def failed(self) -> list[ToolCall]:
        return [c for c in self.tool_calls if c.ended is not None and not c.acknowledged]

    def finished(self) -> list[ToolCall]:
        return sorted((c for c in self.tool_calls if c.ended is not None), key=lambda c: c.started)

    def recovered_at(self, since: float, *, run: int) -> float | None:
        """Start of the first `run` consecutive calls after `since` of which all but one were acknowledged.

        One failure is let pass: on a loaded 2-core machine a single call can time out with no fault.
        """
        calls = [c for c in self.finished() if c.started >= since]
        for first in range(len(calls) - run + 1):
            window = calls[first : first + run]
            if sum(not c.acknowledged for c in window) <= 1 and window[0].acknowledged:
                return window[0].started
        return None


class Load:
    def __init__(self, target: FaultSystem, scenario: str, *, rate: float = 15.0) -> None:
        self._target = target
        self._demo = target.demo
        self._scenario = scenario
        self._interval = 1.0 / rate
        self._numbers = itertools.count(1)
        self._tools = itertools.cycle(MIX)
        self._callers = itertools.cycle(CALLERS)
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        # A fresh connection per call: a kept-alive one that the server closes as it is reused fails
        # the request in the client, which says nothing about the system under test.
        self._http = httpx.AsyncClient(
            timeout=TOOL_TIMEOUT + ANSWER_GRACE, limits=httpx.Limits(max_connections=200, max_keepalive_connections=0)
        )
        self.ledger = Ledger()
        self.skipped = 0

    async def __aenter__(self) -> Load:
        self._runner = asyncio.create_task(self._run(), name=f"load-{self._scenario}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop starting calls and wait for every started one to end."""
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
            self._runner = None
        if self._tasks:
            await asyncio.wait(self._tasks)
        await self._http.aclose()

    async def wait_recovered(self, since: float, *, run: int = 10, timeout: float = 60) -> float:
        """Seconds from `since` (a fault's end) until calls succeed again, `run` in a row; waits for it."""
        give_up = time.monotonic() + timeout
        while (recovered := self.ledger.recovered_at(since, run=run)) is None:
            if time.monotonic() > give_up:
                after = [c for c in self.ledger.finished() if c.started >= since]
                raise AssertionError(
                    f"{self._scenario}: no {run} tool calls in a row succeeded within {timeout:.0f}s after the fault; "
                    f"{sum(c.acknowledged for c in after)} of {len(after)} calls since then succeeded, "
                    f"{self.skipped} ticks skipped; last failures: {[c.text[:120] for c in self.ledger.failed()[-3:]]}"
                )
            await asyncio.sleep(0.2)
        return max(recovered - since, 0.0)

    async def _run(self) -> None:
        next_start = time.monotonic()
        while True:
            if len(self._tasks) < MAX_WAITING:
                task = asyncio.create_task(self._one(next(self._tools), f"{self._scenario}-{next(self._numbers)}"))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            else:
                self.skipped += 1
            next_start += self._interval
            await asyncio.sleep(max(next_start - time.monotonic(), 0))

    async def _one(self, tool: str, call_id: str) -> None:
        call = ToolCall(tool, call_id, time.monotonic(), datetime.now(UTC))
        self.ledger.calls.append(call)
        if tool in ("transfer_call", "hangup_call") and not await self._place_call(call):
            call.outcome, call.ended = Outcome.not_placed, time.monotonic()
            return
        if tool == "create_lead":
            call.caller = next(self._callers)
        await self._call_tool(call, self._arguments(call))

    def _arguments(self, call: ToolCall) -> dict[str, Any]:
        match call.tool:
            case "create_lead":
                return {"name": "Caller under load", "intent": f"Asks about order {call.call_id}"}
            case "transfer_call":
                return {"destination_number": TRANSFER_DESTINATION}
            case "lookup_contact":
                return {"phone_number": self._demo.caller_number}
            case "check_user_availability":
                return {"user_id": self._demo.available_user}
        return {}

    async def _place_call(self, call: ToolCall) -> bool:
        body = {"account_id": self._demo.account_id, "call_id": call.call_id, "persona_id": self._demo.persona_id}
        try:
            answer = await self._http.post(self._target.pbx_url, json=body, headers=self._target.admin_headers)
        except httpx.HTTPError as e:
            call.text = f"placing the call failed: {type(e).__name__}"
            return False
        call.text = answer.text[:300]
        return answer.status_code == 201

    async def _call_tool(self, call: ToolCall, arguments: dict[str, Any]) -> None:
        request = {
            "jsonrpc": "2.0",
            "id": call.call_id,
            "method": "tools/call",
            "params": {"name": call.tool, "arguments": arguments},
        }
        headers = {
            **self._demo.headers(call.call_id, caller_id_number=call.caller),
            "Accept": "application/json, text/event-stream",
        }
        call.started, call.started_at = time.monotonic(), datetime.now(UTC)
        try:
            answer = await self._http.post(self._demo.mcp_url, json=request, headers=headers)
        except httpx.HTTPError as e:
            call.ended, call.outcome, call.text = time.monotonic(), Outcome.no_answer, f"{type(e).__name__}: {e}"
            return
        call.ended, call.status = time.monotonic(), answer.status_code
        _read_answer(call, answer)


def _read_answer(call: ToolCall, answer: httpx.Response) -> None:
    if answer.status_code != 200:
        call.outcome, call.text = Outcome.http_error, answer.text[:1000]
        return
    body = answer.json()
    if "error" in body:
        call.outcome, call.text = Outcome.rpc_error, str(body["error"].get("message", ""))
        return
    result = body["result"]
    call.text = " ".join(part.get("text", "") for part in result.get("content", []))
    call.structured = result.get("structuredContent")
    call.outcome = Outcome.tool_error if result.get("isError") else Outcome.ok
