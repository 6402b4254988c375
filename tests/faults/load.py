"""Steady load through the gateway, and the ledger of every tool call it made.

The load is open-loop: a tool call starts every 1/rate seconds whatever the others are doing, as
agents on live calls would, up to `MAX_WAITING` calls in flight. Every call has a call id of its own.
The mix:

- `create_lead` (a lead and a case), callers drawn from a small pool so that leads repeat;
- `transfer_call` and `hangup_call`, each on a call first placed on call-control's simulated PBX
  (`POST /pbx/v1/calls`), one action per call;
- the read-only tools `is_office_open`, `lookup_contact`, `check_user_availability`.

Tool calls are raw JSON-RPC POSTs (a stateless 2025-era `tools/call` needs no `initialize`).

A tool call is retried the way the README tells agents to: an answer that says to try again (a
retryable sentence, a 503 busy or a 429), or no HTTP answer at all, is followed by the same tool
call (same call id, same arguments) after `RETRY_PAUSE`, up to `TRIES` attempts, none started more
than `RETRY_WITHIN` seconds after the first (inside the gateway's 60 s repeat window, so the
gateway makes the attempts one effect). The ledger keeps every attempt and each call's final outcome.
"""

from __future__ import annotations

import asyncio
import itertools
import re
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

TRIES = 3
"""Attempts of one tool call at most: the first and two retries."""

RETRY_PAUSE = 1.0
"""Seconds between an answer that says to try again and the retry ("in a moment")."""

RETRY_WITHIN = 40.0
"""No retry starts later than this after the call's first attempt: the gateway's repeat window is
60 s, so every attempt of a call is the same call to it."""

RETRYABLE = re.compile(r"try again|temporarily unavailable|in a moment|retry", re.IGNORECASE)
"""What an answer that invites a retry says (tool results, 503 busy and 429 bodies alike)."""

RETRYABLE_STATUS = (429, 503)

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
class Attempt:
    """One HTTP request of a tool call, and its answer."""

    started: float
    started_at: datetime
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

    @property
    def retryable(self) -> bool:
        """The answer tells the agent to try again, or there was no answer at all."""
        if self.outcome == Outcome.no_answer:
            return True
        if self.outcome == Outcome.http_error:
            return self.status in RETRYABLE_STATUS
        return self.outcome in (Outcome.tool_error, Outcome.rpc_error) and RETRYABLE.search(self.text) is not None

    @property
    def repeat(self) -> bool:
        """The gateway answered with an earlier attempt's result: this attempt acted no second time."""
        return bool(self.structured and self.structured.get("repeat"))


@dataclass
class ToolCall:
    """One logical tool call (one call id, one tool, one set of arguments) and all its attempts.

    `ended`, `outcome`, `status`, `text` and `structured` are its final outcome: its last attempt's.
    """

    tool: str
    call_id: str
    started: float
    started_at: datetime
    caller: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
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

    def settle(self, attempt: Attempt) -> None:
        self.ended, self.outcome, self.status = attempt.ended, attempt.outcome, attempt.status
        self.text, self.structured = attempt.text, attempt.structured


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

    def attempts(self) -> list[tuple[ToolCall, Attempt]]:
        """Every finished attempt of every tool call, in the order they started."""
        made = [(c, a) for c in self.calls for a in c.attempts if a.ended is not None]
        return sorted(made, key=lambda made: made[1].started)

    def retried(self) -> list[ToolCall]:
        return [c for c in self.calls if len(c.attempts) > 1]

    def under_way(self, began: float, ended: float, tools: tuple[str, ...]) -> list[tuple[ToolCall, Attempt]]:
        """Finished attempts of `tools` that were under way at some moment between `began` and `ended`."""
        return [
            (call, attempt)
            for call, attempt in self.attempts()
            if call.tool in tools and attempt.started <= ended and attempt.ended is not None and attempt.ended >= began
        ]

    def failed_during(self, began: float, ended: float, tools: tuple[str, ...]) -> list[tuple[ToolCall, Attempt]]:
        """Attempts under way between `began` and `ended` that failed or were refused."""
        return [(call, attempt) for call, attempt in self.under_way(began, ended, tools) if not attempt.acknowledged]

    def recovered_at(self, since: float, *, run: int) -> float | None:
        """Start of the first `run` consecutive attempts after `since` of which all but one were acknowledged.

        Attempts, not calls: a call that failed and then succeeded on its retry has one failed
        attempt. One failure is let pass: on a loaded 2-core machine a single call can time out with
        no fault.
        """
        attempts = [a for _, a in self.attempts() if a.started >= since]
        for first in range(len(attempts) - run + 1):
            window = attempts[first : first + run]
            if sum(not a.acknowledged for a in window) <= 1 and window[0].acknowledged:
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
                after = [a for _, a in self.ledger.attempts() if a.started >= since]
                raise AssertionError(
                    f"{self._scenario}: no {run} tool calls in a row succeeded within {timeout:.0f}s after the fault; "
                    f"{sum(a.acknowledged for a in after)} of {len(after)} attempts since then succeeded, "
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
        call.arguments = self._arguments(call)
        await self._call_tool(call, call.arguments)

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
        """Call the tool, and again while the answer says to try again (same call id, same arguments)."""
        while True:
            attempt = await self._attempt(call, arguments)
            call.settle(attempt)
            if not attempt.retryable or len(call.attempts) >= TRIES:
                return
            if time.monotonic() + RETRY_PAUSE - call.attempts[0].started > RETRY_WITHIN:
                return
            await asyncio.sleep(RETRY_PAUSE)

    async def _attempt(self, call: ToolCall, arguments: dict[str, Any]) -> Attempt:
        request = {
            "jsonrpc": "2.0",
            "id": f"{call.call_id}#{len(call.attempts) + 1}",
            "method": "tools/call",
            "params": {"name": call.tool, "arguments": arguments},
        }
        headers = {
            **self._demo.headers(call.call_id, caller_id_number=call.caller),
            "Accept": "application/json, text/event-stream",
        }
        attempt = Attempt(time.monotonic(), datetime.now(UTC))
        if not call.attempts:
            call.started, call.started_at = attempt.started, attempt.started_at
        call.attempts.append(attempt)
        try:
            answer = await self._http.post(self._demo.mcp_url, json=request, headers=headers)
        except httpx.HTTPError as e:
            attempt.ended, attempt.outcome = time.monotonic(), Outcome.no_answer
            attempt.text = f"{type(e).__name__}: {e}"
            return attempt
        attempt.ended, attempt.status = time.monotonic(), answer.status_code
        _read_answer(attempt, answer)
        return attempt


def _read_answer(attempt: Attempt, answer: httpx.Response) -> None:
    if answer.status_code != 200:
        attempt.outcome, attempt.text = Outcome.http_error, answer.text[:1000]
        return
    body = answer.json()
    if "error" in body:
        attempt.outcome, attempt.text = Outcome.rpc_error, str(body["error"].get("message", ""))
        return
    result = body["result"]
    attempt.text = " ".join(part.get("text", "") for part in result.get("content", []))
    attempt.structured = result.get("structuredContent")
    attempt.outcome = Outcome.tool_error if result.get("isError") else Outcome.ok
