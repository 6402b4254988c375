"""What each kind of tool does on the bus: small functions, the requester and the deadline passed in.

Every request takes the time left of the one tool deadline (`Budget`), so a custom transfer's two
steps (resolve the user or queue, then transfer) together stay within it, and each command carries
a deadline after which no service acts on it. `command_id` is the id of the command that acts (the
repeat claim's, see `gateway.repeats`); reads get ids of their own.
"""

from __future__ import annotations

import time
from typing import Any

from gateway.catalog import ApiRequestRoute, GlobalRoute, TransferRoute
from switchboard.contracts import CallContext, CommandType, Contract
from switchboard.contracts.call_control import TargetKind, TransferCall, TransferResult, TransferTarget
from switchboard.contracts.persona import ApiResponse, ResolveTransfer, RunApiRequest, TransferDestination
from switchboard.messaging import RequestTimeout
from switchboard.messaging.requester import Requester


class Budget:
    """The time left of one tool call's deadline, less a margin to answer the agent in time."""

    def __init__(self, seconds: float, *, margin: float = 0.0, started: float | None = None) -> None:
        self.seconds = seconds
        self.margin = margin
        self.started = time.monotonic() if started is None else started
        self._end = self.started + max(seconds - margin, 0.0)

    def extended(self, seconds: float) -> Budget:
        """The same deadline counted from the same start, but `seconds` long when that is longer."""
        if seconds <= self.seconds:
            return self
        return Budget(seconds, margin=self.margin, started=self.started)

    def remaining(self) -> float:
        left = self._end - time.monotonic()
        if left <= 0:
            raise RequestTimeout("the tool's deadline passed")
        return left


async def run_global(
    route: GlobalRoute,
    args: Contract,
    context: CallContext,
    requester: Requester,
    budget: Budget,
    command_id: str | None = None,
) -> Contract:
    return await requester.request(route.command, context, args, timeout=budget.remaining(), command_id=command_id)


async def run_transfer(
    route: TransferRoute, context: CallContext, requester: Requester, budget: Budget, command_id: str | None = None
) -> TransferResult:
    destination = await requester.request(
        CommandType.resolve_transfer, context, ResolveTransfer(tool_name=route.spec.name), timeout=budget.remaining()
    )
    assert isinstance(destination, TransferDestination)
    args = TransferCall(
        destination_number=destination.destination_number,
        target=TransferTarget(
            kind=TargetKind(destination.target_kind), id=destination.target_id, name=destination.target_name
        ),
    )
    result = await requester.request(
        CommandType.transfer_call, context, args, timeout=budget.remaining(), command_id=command_id
    )
    assert isinstance(result, TransferResult)
    return result


async def run_api_request(
    route: ApiRequestRoute,
    arguments: dict[str, Any],
    context: CallContext,
    requester: Requester,
    budget: Budget,
    command_id: str | None = None,
) -> ApiResponse:
    args = RunApiRequest(tool_name=route.spec.name, variables=arguments)
    result = await requester.request(
        CommandType.run_api_request, context, args, timeout=budget.remaining(), command_id=command_id
    )
    assert isinstance(result, ApiResponse)
    return result
