"""tools/list and tools/call for one authenticated caller: catalog, validation, routing, error mapping.

A tool call is answered as a tool result (`isError` with a sentence the model can act on) for
business failures, bad arguments, timeouts and overload; only an unknown tool or a persona outside
the caller's account is a protocol error. A side-effecting tool's repeats are one effect
(`gateway.repeats`): a repeat gets the first call's result, marked `repeat` in its structured content.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS
from opentelemetry import trace
from pymongo.errors import PyMongoError

from gateway import results, schemas
from gateway.catalog import Catalogs, PersonaNotFound, ToolEntry
from gateway.routes import InvalidArguments
from gateway.model import Caller
from gateway.repeats import Claim, Repeats, fingerprint
from gateway.settings import GatewaySettings
from switchboard.budget import Budget
from switchboard.contracts import Contract, ErrorCode
from switchboard.messaging import Busy, RequestFailed, RequestTimeout
from switchboard.messaging.requester import Requester
from switchboard.phone import mask
from switchboard.telemetry import meter, tracer

log = logging.getLogger(__name__)

_tool_duration = meter.create_histogram(
    "switchboard.gateway.tool.duration", unit="ms", description="Time to answer one tools/call, by tool and outcome."
)
_tool_errors = meter.create_counter(
    "switchboard.gateway.tool.errors", description="Tool calls that did not succeed, by tool and outcome."
)
_tool_timeouts = meter.create_counter(
    "switchboard.gateway.tool.timeouts",
    description="Tool calls answered as unavailable because a service did not reply in time.",
)


class Outcome:
    ok = "ok"
    tool_error = "tool_error"
    invalid_arguments = "invalid_arguments"
    timeout = "timeout"
    busy = "busy"
    unknown_tool = "unknown_tool"
    persona_not_found = "persona_not_found"
    failed = "failed"


def persona_error(e: PersonaNotFound) -> MCPError:
    return MCPError(code=INVALID_PARAMS, message=e.message)


class Tools:
    def __init__(
        self, settings: GatewaySettings, requester: Requester, catalogs: Catalogs, repeats: Repeats | None = None
    ) -> None:
        self._settings = settings
        self._requester = requester
        self._catalogs = catalogs
        self._repeats = repeats

    async def list_tools(self, caller: Caller) -> types.ListToolsResult:
        try:
            catalog = await self._catalogs.get(caller, timeout=self._settings.tools_timeout)
        except PersonaNotFound as e:
            raise persona_error(e) from None
        except (RequestTimeout, Busy, TimeoutError):
            raise MCPError(
                code=INTERNAL_ERROR, message="The tool list is temporarily unavailable; try again in a moment."
            ) from None
        except RequestFailed as e:
            raise MCPError(code=INTERNAL_ERROR, message=e.error.message) from None
        return types.ListToolsResult(tools=list(catalog.tools))

    async def call_tool(
        self, caller: Caller, name: str, arguments: dict[str, Any] | None, parent: trace.Span | None = None
    ) -> types.CallToolResult:
        started = time.perf_counter()
        context = trace.set_span_in_context(parent) if parent is not None else None
        metric_name = "unknown"
        outcome = Outcome.failed
        shown = name[:64]
        with tracer.start_as_current_span(f"tool {shown}", context=context) as span:
            span.set_attributes(
                {
                    "switchboard.tool.name": shown,
                    "switchboard.account_id": caller.account_id,
                    "switchboard.persona_id": caller.persona_id,
                    "switchboard.call_id": caller.call_id,
                }
            )
            if caller.caller_id_number:
                span.set_attribute("switchboard.caller_id", mask(caller.caller_id_number) or "")
            try:
                budget = Budget(self._settings.timeout_for(name), margin=self._settings.reply_margin)
                result, outcome, metric_name = await self._call(caller, name, arguments or {}, budget)
                return result
            except _Protocol as p:
                outcome = p.outcome
                raise p.error from None
            finally:
                span.set_attribute("switchboard.outcome", outcome)
                if parent is not None:
                    parent.set_attributes({"switchboard.tool.name": shown, "switchboard.outcome": outcome})
                if outcome != Outcome.ok:
                    span.set_status(trace.StatusCode.ERROR, outcome)
                attributes = {"tool": metric_name, "outcome": outcome}
                _tool_duration.record((time.perf_counter() - started) * 1000, attributes)
                if outcome != Outcome.ok:
                    _tool_errors.add(1, attributes)
                if outcome == Outcome.timeout:
                    _tool_timeouts.add(1, {"tool": metric_name})

    async def _call(
        self, caller: Caller, name: str, arguments: dict[str, Any], budget: Budget
    ) -> tuple[types.CallToolResult, str, str]:
        metric_name = "unknown"
        try:
            try:
                catalog = await self._catalogs.get(caller, timeout=budget.remaining())
            except PersonaNotFound as e:
                raise _Protocol(persona_error(e), Outcome.persona_not_found) from None
            entry = catalog.get(name)
            if entry is None:
                raise _Protocol(
                    MCPError(code=INVALID_PARAMS, message=f"Unknown tool: {name[:100]}"), Outcome.unknown_tool
                )
            metric_name = entry.metric_name
            required = entry.tool.input_schema.get("required", ())
            # An optional argument sent as null or "" is left out: strict function schemas (OpenAI's)
            # make every argument required, so models fill the ones they mean to leave out.
            given = {k: v for k, v in arguments.items() if k in required or (v is not None and v != "")}
            problems = schemas.argument_problems(entry.validator, given)
            if problems:
                return (
                    results.error(f"Invalid arguments for {name}: {' '.join(problems)}"),
                    Outcome.invalid_arguments,
                    metric_name,
                )
            if entry.route.own_timeout is not None:
                budget = budget.extended(entry.route.own_timeout + self._settings.api_request_overhead)
            claim = await self._claim(caller, entry, given)
            if claim is not None and claim.conflict:
                return results.error(results.IDEMPOTENCY_CONFLICT), Outcome.invalid_arguments, metric_name
            try:
                result = await entry.route.run(
                    given, caller.context(catalog.region), self._requester, budget, claim.command_id if claim else None
                )
            except (RequestFailed, Busy) as e:
                if claim is not None and (isinstance(e, Busy) or e.error.code is ErrorCode.unavailable):
                    await self._release(caller, entry, given, claim)  # nothing was done: a retry may act
                raise
        except _Protocol:
            raise
        except InvalidArguments as e:
            return results.error(f"Invalid arguments for {name}: {e.sentence}"), Outcome.invalid_arguments, metric_name
        except RequestFailed as e:
            return results.error(e.error.message), Outcome.tool_error, metric_name
        except (RequestTimeout, TimeoutError):
            return results.error(results.unavailable(name)), Outcome.timeout, metric_name
        except Busy:
            return results.error(results.BUSY), Outcome.busy, metric_name
        except Exception:
            log.exception("tool %s failed for account %s call %s", name, caller.account_id, caller.call_id)
            return results.error(results.UNEXPECTED), Outcome.failed, metric_name
        answer = results.success(result, repeat=claim is not None and claim.repeat)
        return answer, Outcome.tool_error if answer.is_error else Outcome.ok, metric_name

    async def _claim(self, caller: Caller, entry: ToolEntry, arguments: dict[str, Any]) -> Claim | None:
        """The repeat claim of a side-effecting call (None for a read, or with no claim store)."""
        if self._repeats is None or not entry.side_effecting:
            return None
        if caller.idempotency_key is None and self._settings.repeat_window_seconds <= 0:
            return None
        try:
            return await self._repeats.claim(
                fingerprint(caller.account_id, caller.call_id, entry.name, arguments),
                window=self._settings.repeat_window_seconds,
                idempotency_key=caller.idempotency_key,
                account_id=caller.account_id,
            )
        except PyMongoError as e:
            # Acting without the claim could act twice; the agent is told to try again instead.
            log.warning("repeat claim of %s failed: %s", entry.metric_name, e)
            raise RequestTimeout("the repeat claim could not be made") from None

    async def _release(self, caller: Caller, entry: ToolEntry, arguments: dict[str, Any], claim: Claim) -> None:
        assert self._repeats is not None
        try:
            await self._repeats.release(
                fingerprint(caller.account_id, caller.call_id, entry.name, arguments),
                claim,
                idempotency_key=caller.idempotency_key,
                account_id=caller.account_id,
            )
        except Exception as e:
            log.warning("could not release the repeat claim of %s: %s", entry.metric_name, e)


class _Protocol(Exception):
    """A protocol error to raise to the client, with the outcome to record."""

    def __init__(self, error: MCPError, outcome: str) -> None:
        self.error = error
        self.outcome = outcome
