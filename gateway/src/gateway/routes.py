"""Where each kind of tool goes, declared and run in one place.

A route turns a tool call's validated arguments into the commands that carry it out, under the
tool's one deadline (`Budget`): every command takes the time left of it, so a custom transfer's two
steps (resolve the user or queue with persona-svc, then transfer with call-control) together stay
within it, and each command carries a deadline after which no service acts on it. `command_id` is
the id of the command that acts (the repeat claim's, see `gateway.repeats`); reads get their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from switchboard.budget import Budget
from switchboard.contracts import OPERATIONS, CallContext, CommandType, Contract, GlobalTool
from switchboard.contracts.call_control import TargetKind, TransferCall, TransferResult, TransferTarget
from switchboard.contracts.persona import (
    ApiRequestTool,
    ApiResponse,
    ResolveTransfer,
    RunApiRequest,
    TransferDestination,
    TransferToQueueTool,
    TransferToUserTool,
)
from switchboard.messaging.requester import Requester

SAFE_METHODS = frozenset({"GET", "HEAD"})
"""API Request methods that change nothing at the other end (RFC 9110 safe methods)."""


class InvalidArguments(Exception):
    """Arguments that fit the tool's schema but not its contract model; the sentence names them."""

    def __init__(self, error: ValidationError) -> None:
        fields = [".".join(str(p) for p in err["loc"]) or "arguments" for err in error.errors()]
        self.sentence = " ".join(f"Argument '{field}' is invalid." for field in dict.fromkeys(fields))
        super().__init__(self.sentence)


class Route(Protocol):
    @property
    def side_effecting(self) -> bool:
        """Calling it changes something (a lead, a transfer, a POST): its repeats are one effect."""

    @property
    def own_timeout(self) -> float | None:
        """The tool's own timeout where its configuration sets one; else the gateway's."""

    async def run(
        self,
        arguments: dict[str, Any],
        context: CallContext,
        requester: Requester,
        budget: Budget,
        command_id: str | None,
    ) -> Contract: ...


@dataclass(frozen=True, slots=True)
class GlobalRoute:
    tool: GlobalTool
    command: CommandType
    args: type[Contract]

    @property
    def side_effecting(self) -> bool:
        return not OPERATIONS[self.command].reads_only

    @property
    def own_timeout(self) -> float | None:
        return None

    async def run(
        self, arguments: dict[str, Any], context: CallContext, requester: Requester, budget: Budget, command_id: str | None
    ) -> Contract:
        try:
            args = self.args.model_validate(arguments)
        except ValidationError as e:
            raise InvalidArguments(e) from None
        return await requester.request(self.command, context, args, timeout=budget.remaining(), command_id=command_id)


@dataclass(frozen=True, slots=True)
class TransferRoute:
    spec: TransferToUserTool | TransferToQueueTool
    side_effecting = True
    own_timeout = None

    async def run(
        self, arguments: dict[str, Any], context: CallContext, requester: Requester, budget: Budget, command_id: str | None
    ) -> TransferResult:
        resolve = ResolveTransfer(tool_name=self.spec.name)
        destination = await requester.request(
            CommandType.resolve_transfer, context, resolve, timeout=budget.remaining()
        )
        assert isinstance(destination, TransferDestination)
        target = TransferTarget(
            kind=TargetKind(destination.target_kind), id=destination.target_id, name=destination.target_name
        )
        args = TransferCall(destination_number=destination.destination_number, target=target)
        result = await requester.request(
            CommandType.transfer_call, context, args, timeout=budget.remaining(), command_id=command_id
        )
        assert isinstance(result, TransferResult)
        return result


@dataclass(frozen=True, slots=True)
class ApiRequestRoute:
    spec: ApiRequestTool

    @property
    def side_effecting(self) -> bool:
        return self.spec.method not in SAFE_METHODS

    @property
    def own_timeout(self) -> float | None:
        return self.spec.timeout_seconds

    async def run(
        self, arguments: dict[str, Any], context: CallContext, requester: Requester, budget: Budget, command_id: str | None
    ) -> ApiResponse:
        args = RunApiRequest(tool_name=self.spec.name, variables=arguments)
        result = await requester.request(
            CommandType.run_api_request, context, args, timeout=budget.remaining(), command_id=command_id
        )
        assert isinstance(result, ApiResponse)
        return result
