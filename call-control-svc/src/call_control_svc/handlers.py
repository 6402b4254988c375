"""Call-control's handlers: the two tools (`transfer_call`, `hangup_call`) and the call lifecycle events.

Order inside a tool, each step before any side effect that follows it: the call is known and in a
state that allows the action -> the destination is valid and allowed -> the call's next action
attempt is claimed (unique insert; a loser re-reads and decides again), while the call's end is
read again beside the claim -> the call has not ended and the command's deadline has not passed ->
the phone system acts -> the claim is marked done -> the fact is announced. An end reported after
that second read reaches the phone system first, which then has no call to act on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from switchboard.contracts import Command, utcnow
from switchboard.contracts.call_control import (
    CallEnded,
    CallStarted,
    CallState,
    CallTransferred,
    HangupCall,
    HangupResult,
    TransferCall,
    TransferResult,
)
from switchboard.messaging import Conflict, DomainError, NotFound, Refused, Unavailable, claimed
from switchboard.phone import mask

from call_control_svc.destinations import resolve_destination
from call_control_svc.events import CallFacts
from call_control_svc.model import (
    ActionKind,
    ActionStatus,
    Call,
    CallAction,
    CallEnd,
    CallPolicy,
    CallRecord,
    Destination,
    EndedBy,
)
from call_control_svc.repository import Calls, Rules
from call_control_svc.telephony import Telephony, TelephonyError, TelephonyFailure

log = logging.getLogger(__name__)

CLAIM_ROUNDS = 3
"""A claim lost to an action that then failed is tried again on the next attempt, a bounded number of times."""

OUT_OF_TIME = "The request ran out of time before the phone system was asked, so nothing was done"

R = TypeVar("R")


async def transfer_call(
    command: Command[TransferCall],
    *,
    calls: Calls,
    rules: Rules,
    telephony: Telephony,
    facts: CallFacts,
    policy: CallPolicy,
) -> TransferResult:
    record, account_rules = await asyncio.gather(_known_call(command, calls), rules.get(command.account_id))
    _refuse_transfer(record, policy)
    destination = resolve_destination(
        command.args.destination_number, command.region or policy.default_region, account_rules
    )
    action, end = await asyncio.gather(
        _claim(command, calls, record, policy, ActionKind.transfer, _refuse_transfer, destination),
        calls.get_end(command.account_id, command.call_id),
    )
    assert isinstance(action, CallAction)  # _refuse_transfer settles nothing: it refuses or lets the claim go on
    if end is not None:
        await calls.finish(action, ActionStatus.failed, "the call ended before the transfer")
        raise Refused("The call has just ended; there is no caller to transfer.")
    if command.expired():
        await calls.finish(action, ActionStatus.failed, "deadline passed before the phone system was asked")
        raise Unavailable(f"{OUT_OF_TIME}; the caller is still on the line with you; try again in a moment.")
    assert record.call is not None
    try:
        await telephony.transfer(record.call, destination, timeout=command.remaining())
    except TelephonyError as e:
        await calls.finish(action, ActionStatus.failed, f"{e.failure}: {e.detail}")
        raise _transfer_failed(e, destination) from None
    done = await calls.finish(action, ActionStatus.succeeded)
    log.info("call %s transferred to %s (transfer %s)", command.call_id, mask(destination.number), done.id)
    await facts.transferred(done)
    target = command.args.target
    whom = f"{target.name} at {destination.number}" if target else destination.number
    then = f"; extension {destination.extension} will be dialled once the line answers" if destination.extension else ""
    return TransferResult(
        transfer_id=done.id,
        accepted=True,
        destination=destination.number,
        destination_kind=destination.kind,
        extension=destination.extension,
        target=target,
        message=f"Transfer accepted: the caller is being connected to {whom}{then}. The call leaves you now.",
    )


async def hangup_call(
    command: Command[HangupCall],
    *,
    calls: Calls,
    telephony: Telephony,
    facts: CallFacts,
    policy: CallPolicy,
) -> HangupResult:
    record = await _known_call(command, calls)
    settled = _settled_hangup(record, policy)
    if settled is not None:
        return settled
    action, end = await asyncio.gather(
        _claim(command, calls, record, policy, ActionKind.hangup, _settled_hangup),
        calls.get_end(command.account_id, command.call_id),
    )
    if isinstance(action, HangupResult):
        return action
    if end is not None:
        await calls.finish(action, ActionStatus.failed, "the call ended before the hang-up")
        return _already_ended()
    if command.expired():
        await calls.finish(action, ActionStatus.failed, "deadline passed before the phone system was asked")
        raise Unavailable(f"{OUT_OF_TIME}; the call is still connected; try again in a moment.")
    assert record.call is not None
    gone = False
    try:
        await telephony.hangup(record.call, timeout=command.remaining())
    except TelephonyError as e:
        if e.failure is not TelephonyFailure.gone:
            await calls.finish(action, ActionStatus.failed, f"{e.failure}: {e.detail}")
            raise Unavailable(f"The call could not be hung up ({e.detail}); it is still connected.") from None
        gone = True
    await calls.finish(action, ActionStatus.succeeded)
    end = CallEnd(
        account_id=command.account_id,
        call_id=command.call_id,
        reason="caller_gone" if gone else "agent_hangup",
        ended_by=EndedBy.pbx if gone else EndedBy.agent,
        ended_at=utcnow(),
        command_id=command.command_id,
    )
    if not await calls.record_end(end):
        return _already_ended()
    await facts.ended(end)
    if gone:
        return HangupResult(
            ended=True, already_ended=True, message="The caller had already hung up; the call has ended."
        )
    return HangupResult(ended=True, already_ended=False, message="The call has been ended.")


async def record_call_event(event: CallStarted | CallEnded | CallTransferred, *, calls: Calls) -> bool:
    """Apply a lifecycle event; False when it was already applied (a redelivery, or call-control's own event)."""
    now = utcnow()
    if isinstance(event, CallStarted):
        return await calls.record_start(Call.from_event(event, now))
    if isinstance(event, CallEnded):
        return await calls.record_end(CallEnd.from_event(event, now))
    # call.transferred is call-control's own fact: the action record it came from already holds it.
    return False


async def report_call_event(event: CallStarted | CallEnded, *, calls: Calls, facts: CallFacts) -> bool:
    """A lifecycle event the PBX reported over HTTP: applied now, then put on the topic when it was new."""
    new = await record_call_event(event, calls=calls)
    if new:
        await facts.reported(event)
    return new


async def _known_call(command: Command, calls: Calls) -> CallRecord:
    record = await calls.get(command.account_id, command.call_id)
    if record.call is None:
        raise NotFound(
            f"Call {command.call_id} is not a call of this account that call control knows about; "
            "it cannot be transferred or hung up."
        )
    return record


def _refuse_transfer(record: CallRecord, policy: CallPolicy) -> None:
    now = utcnow()
    state = record.state(now, policy.abandoned_after)
    if state is CallState.ended:
        raise Refused("The call has already ended; there is no caller to transfer.")
    if state is CallState.transferred:
        done = record.completed_transfer()
        where = f" to {done.destination.number}" if done and done.destination else ""
        raise Refused(f"The call was already transferred{where}; it is no longer connected to you.")
    running = record.running_action(now, policy.abandoned_after)
    if running is not None and running.kind is ActionKind.transfer:
        raise Conflict(
            "A transfer of this call is already in progress; wait for its result instead of transferring again."
        )
    if running is not None:
        raise Refused("The call is being hung up; it cannot be transferred.")


def _settled_hangup(record: CallRecord, policy: CallPolicy) -> HangupResult | None:
    now = utcnow()
    state = record.state(now, policy.abandoned_after)
    if state is CallState.ended:
        return _already_ended()
    if state is CallState.transferred:
        raise Refused(
            "The call was already transferred and is no longer connected to you; there is nothing to hang up."
        )
    running = record.running_action(now, policy.abandoned_after)
    if running is not None and running.kind is ActionKind.transfer:
        raise Conflict("A transfer of this call is in progress; wait for its result before hanging up.")
    if running is not None:
        return HangupResult(ended=True, already_ended=True, message="The call is already being hung up.")
    return None


def _already_ended() -> HangupResult:
    return HangupResult(ended=True, already_ended=True, message="The call has already ended.")


async def _claim(
    command: Command,
    calls: Calls,
    record: CallRecord,
    policy: CallPolicy,
    kind: ActionKind,
    settle: Callable[[CallRecord, CallPolicy], R | None],
    destination: Destination | None = None,
) -> CallAction | R:
    """Claim the call's next action attempt, or what `settle` says once another claimant got there first."""
    for _ in range(CLAIM_ROUNDS):
        action = CallAction.new(
            kind,
            account_id=command.account_id,
            call_id=command.call_id,
            attempt=record.next_attempt(),
            command_id=command.command_id,
            deadline=command.deadline,
            now=utcnow(),
            destination=destination,
            target=getattr(command.args, "target", None),
        )
        await claimed()
        if await calls.claim(action) is None:
            return action
        record = await calls.get(command.account_id, command.call_id)
        settled = settle(record, policy)
        if settled is not None:
            return settled
    raise Conflict("Another action on this call is under way; try again in a moment.")


def _transfer_failed(error: TelephonyError, destination: Destination) -> DomainError:
    still_there = "The caller is still on the line with you"
    match error.failure:
        case TelephonyFailure.gone:
            return Refused(
                "The phone system no longer has this call (the caller may have hung up), so it was not transferred."
            )
        case TelephonyFailure.rejected:
            return Refused(
                f"The phone system refused to transfer the call to {destination.number} ({error.detail}). "
                f"{still_there}; offer another destination or take a message."
            )
        case TelephonyFailure.not_controllable:
            return Refused(f"The phone system would not transfer the call right now ({error.detail}). {still_there}.")
        case _:
            return Unavailable(
                f"The transfer did not happen: {error.detail}. {still_there}; try again in a moment or take a message."
            )
