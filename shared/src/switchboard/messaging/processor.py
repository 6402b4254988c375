"""The transport-free heart of the command-consumer runtime: one command in, at most one reply out.

Order of checks, each one before any side effect:
decode and validate -> drop if past the deadline -> claim the command id (or return the stored
reply) -> run the handler -> store the reply. A command whose operation `reads_only` skips the
claim and the stored reply: it is answered afresh however often it arrives. Kafka (consumer.py) and the in-memory bus
(memory.py) both drive this same class.

A driver that passes `send` gets a new reply sent while it is being stored, instead of after:
the stored reply only serves a redelivery or a replay of the command id, which finds the claim and
waits for the stored reply either way, so the caller need not wait for the write. `process`
returns once both are done, so the driver commits the offset after the reply is stored.

Work a handler hands to `after_reply` (announcing the facts it stored) runs once the reply is sent,
still inside `process`, so the caller does not wait for it and the offset is committed after it.

An operation that `claims_while_reading` has its handler started while its command id is being
claimed: the handler reads, then awaits `claimed()` before its first write. If the claim was lost
(a redelivery), the handler stops there, or its read-only answer is thrown away, and the stored
reply is the answer, exactly as if the claim had come first.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from switchboard.contracts import OPERATIONS, Command, CommandType, Contract, ErrorCode, Reply, utcnow
from switchboard.messaging.errors import DomainError, StoreUnavailable, Unavailable
from switchboard.messaging.idempotency import ProcessedCommands, StoredCommand, wait_for_reply
from switchboard.mongo import store_failed

log = logging.getLogger(__name__)

Handler = Callable[[Command[Any]], Awaitable[Contract]]

FollowUp = Callable[[], Awaitable[object]]

_follow_ups: ContextVar[list[FollowUp] | None] = ContextVar("switchboard_follow_ups", default=None)


async def after_reply(work: FollowUp) -> None:
    """Run `work` after the command's reply is sent, when a command runtime is handling one; else now.

    For what the caller need not wait for: announcing facts the handler already stored. The runtime
    runs it before the command counts as done (before the offset is committed), logs its failure,
    and never lets it change the reply. Called outside a command (an admin request, a unit test of a
    handler), it runs at once.
    """
    pending = _follow_ups.get()
    if pending is None:
        await work()
    else:
        pending.append(work)


class ClaimLost(Exception):
    """Raised by `claimed()` when another delivery of the command holds its claim."""


_claims: ContextVar[tuple[Command[Any], asyncio.Future[StoredCommand | None]] | None] = ContextVar(
    "switchboard_claim", default=None
)


async def claimed() -> None:
    """Return once this command is claimed; call it before a handler's first write.

    Only operations that `claims_while_reading` are started before their claim; for every other
    command, and outside a command runtime, this returns at once. Raises `ClaimLost` when another
    delivery holds the claim, the store's error when the claim could not be made, and `Unavailable`
    when claiming took the rest of the command's time (nothing may be done after its deadline).
    """
    pending = _claims.get()
    if pending is None:
        return
    command, claim = pending
    if await asyncio.shield(claim) is not None:
        raise ClaimLost()
    if command.expired():
        raise Unavailable(OUT_OF_TIME_MESSAGE)


UNAVAILABLE_MESSAGE = "The service is temporarily unavailable; try again in a moment."
OUT_OF_TIME_MESSAGE = "The request ran out of time before it was carried out, so nothing was done; try again in a moment."


class Outcome(StrEnum):
    handled = "handled"
    failed = "failed"
    duplicate = "duplicate"
    expired = "expired"
    in_progress = "in_progress"
    poison = "poison"


@dataclass(frozen=True)
class Processed:
    outcome: Outcome
    command: Command[Any] | None = None
    reply: Reply | None = None
    dead_letter_reason: str | None = None
    sent: bool = False
    """The reply was already handed to the driver's `send`."""

    @property
    def reply_to(self) -> str | None:
        return self.command.reply_to if self.command else None


ReplySender = Callable[["Processed"], Awaitable[None]]


class CommandProcessor:
    def __init__(
        self,
        service: str,
        handlers: Mapping[CommandType, Handler],
        processed: ProcessedCommands,
        *,
        retry_interval: float = 0.1,
    ) -> None:
        self.service = service
        self._handlers = dict(handlers)
        self._processed = processed
        self._retry_interval = retry_interval

    @property
    def command_types(self) -> frozenset[CommandType]:
        return frozenset(self._handlers)

    def decode(self, value: bytes) -> Command[Any] | Processed:
        """The typed command, or a Processed saying why it is poison (or invalid, with a reply)."""
        try:
            raw = json.loads(value)
            command_type = CommandType(raw["type"])
        except (ValueError, KeyError, TypeError) as e:
            return Processed(Outcome.poison, dead_letter_reason=f"undecodable command: {e}")
        if command_type not in self._handlers:
            return Processed(Outcome.poison, dead_letter_reason=f"{self.service} does not handle {command_type}")
        model = OPERATIONS[command_type].command
        try:
            return model.model_validate(raw)
        except ValidationError as e:
            if all(err["loc"] and err["loc"][0] == "args" for err in e.errors()):
                return self._invalid_args(e, raw)
            return Processed(Outcome.poison, dead_letter_reason=f"invalid envelope: {e.errors()[:3]}")

    def _invalid_args(self, error: ValidationError, raw: dict[str, Any]) -> Processed:
        """A well-formed envelope whose args fail validation gets an invalid_argument reply."""
        try:
            envelope = Command[Any].model_validate({**raw, "args": {}})
        except ValidationError:
            return Processed(Outcome.poison, dead_letter_reason=f"invalid envelope: {error.errors()[:3]}")
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'][1:]) or 'arguments'}: {err['msg']}" for err in error.errors()[:5]
        )
        reply = Reply.failure(envelope, ErrorCode.invalid_argument, f"Invalid arguments: {problems}.")
        return Processed(Outcome.failed, command=envelope, reply=reply)

    async def process(self, value: bytes, *, send: ReplySender | None = None) -> Processed:
        decoded = self.decode(value)
        if isinstance(decoded, Processed):
            return decoded
        command = decoded
        while True:
            if command.expired():
                return Processed(Outcome.expired, command=command)
            try:
                return await self._process(command, send)
            except StoreUnavailable as e:
                log.warning("store unavailable for %s %s: %s; retrying", command.type, command.command_id, e)
                await asyncio.sleep(self._retry_interval)

    async def _process(self, command: Command[Any], send: ReplySender | None) -> Processed:
        if OPERATIONS[command.type].reads_only:
            processed, follow_ups = await self._run(command)
            if send is not None and command.reply_to and processed.reply is not None:
                processed = dataclasses.replace(processed, sent=True)
                await send(processed)
            await self._follow_up(command, follow_ups)
            return processed
        if OPERATIONS[command.type].claims_while_reading:
            claim = asyncio.ensure_future(self._processed.claim(command))
            try:
                processed, follow_ups = await self._run(command, claim=claim)
            except BaseException:
                claim.cancel()
                raise
            stored = await claim  # the store's error, if any, makes `process` start over
            if stored is None:
                return await self._answer(command, processed, follow_ups, send)
        else:
            stored = await self._processed.claim(command)
        if stored is not None and stored.account_id not in (None, command.account_id):
            log.warning("command id %s reused by another account; refused", command.command_id)
            return Processed(
                Outcome.failed,
                command=command,
                reply=Reply.failure(command, ErrorCode.conflict, "This command id was already used."),
            )
        if stored is not None:
            if stored.reply is not None:
                return Processed(Outcome.duplicate, command=command, reply=stored.reply)
            reply = await wait_for_reply(self._processed, command.command_id, until=command.deadline)
            if reply is None:
                return Processed(Outcome.in_progress, command=command)
            return Processed(Outcome.duplicate, command=command, reply=reply)

        if command.expired():
            # The claim itself took the rest of the time (a slow or recovering store): acting now
            # would be acting after the caller gave up.
            reply = Reply.failure(command, ErrorCode.unavailable, OUT_OF_TIME_MESSAGE)
            await self._complete(command, reply)
            return Processed(Outcome.expired, command=command, reply=reply)
        processed, follow_ups = await self._run(command)
        return await self._answer(command, processed, follow_ups, send)

    async def _answer(
        self, command: Command[Any], processed: Processed, follow_ups: list[FollowUp], send: ReplySender | None
    ) -> Processed:
        """Store the reply of a command this caller claimed, send it, then do the work left for after it."""
        assert processed.reply is not None
        if send is None or not command.reply_to:
            await self._complete(command, processed.reply)
        else:
            processed = dataclasses.replace(processed, sent=True)
            await asyncio.gather(self._complete(command, processed.reply), send(processed))
        await self._follow_up(command, follow_ups)
        return processed

    async def _run(
        self, command: Command[Any], *, claim: asyncio.Future[StoredCommand | None] | None = None
    ) -> tuple[Processed, list[FollowUp]]:
        """The handler's answer as a reply (its result, its domain error, or a failure), and the work
        it left for after the reply. With `claim`, the handler runs while the command is claimed."""
        dead_letter_reason = None
        outcome = Outcome.failed
        follow_ups: list[FollowUp] = []
        token = _follow_ups.set(follow_ups)
        claim_token = _claims.set((command, claim) if claim is not None else None)
        try:
            result = await self._handlers[command.type](command)
            reply = Reply.success(command, result)
            outcome = Outcome.handled
        except DomainError as e:
            reply = Reply.failure(command, e.code, e.message)
        except ClaimLost:
            return Processed(Outcome.duplicate, command=command), []
        except Exception as e:
            if isinstance(e, StoreUnavailable) or store_failed(e):
                log.warning("%s failed on its store: %s", command.type, e)
                reply = Reply.failure(command, ErrorCode.unavailable, UNAVAILABLE_MESSAGE)
            else:
                log.exception("handler for %s failed on command %s", command.type, command.command_id)
                reply = Reply.failure(command, ErrorCode.internal, "The service failed to process this request.")
                dead_letter_reason = f"handler raised {type(e).__name__}: {e}"
        finally:
            _follow_ups.reset(token)
            _claims.reset(claim_token)
        processed = Processed(outcome, command=command, reply=reply, dead_letter_reason=dead_letter_reason)
        return processed, follow_ups

    async def _follow_up(self, command: Command[Any], follow_ups: list[FollowUp]) -> None:
        for work in follow_ups:
            try:
                await work()
            except Exception:
                log.exception("work after the reply to %s %s failed", command.type, command.command_id)

    async def _complete(self, command: Command[Any], reply: Reply) -> None:
        try:
            await self._processed.complete(command, reply)
        except StoreUnavailable as e:
            log.warning("could not store the reply of %s: %s", command.command_id, e)
