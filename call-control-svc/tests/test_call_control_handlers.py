"""Transfer and hang-up handlers through the shared command runtime, with in-memory adapters."""

import asyncio
from datetime import timedelta
from functools import partial

import pytest
from call_control_svc import handlers
from call_control_svc.destinations import DestinationRules
from call_control_svc.events import CallFacts
from call_control_svc.memory import InMemoryCalls, InMemoryRules, RecordingTelephony
from call_control_svc.model import ActionStatus, CallEnd, CallPolicy, EndedBy
from call_control_svc.telephony import TelephonyError, TelephonyFailure
from switchboard.contracts import CallContext, Command, CommandType, ErrorCode, Topic, utcnow
from switchboard.contracts.call_control import (
    CallEnded,
    CallStarted,
    CallState,
    CallTransferred,
    HangupCall,
    HangupResult,
    TargetKind,
    TransferCall,
    TransferResult,
    TransferTarget,
)
from switchboard.messaging import CommandProcessor, Outcome, Refused, RequestFailed, Unavailable
from switchboard.messaging.events import RecordingEventPublisher
from switchboard.messaging.idempotency import InMemoryProcessedCommands
from switchboard.messaging.memory import InMemoryBus

POLICY = CallPolicy(default_region="US", abandoned_after=timedelta(seconds=30))


class World:
    def __init__(self) -> None:
        self.calls = InMemoryCalls()
        self.rules = InMemoryRules()
        self.telephony = RecordingTelephony()
        self.published = RecordingEventPublisher()
        facts = CallFacts(self.published)
        self.transfer = partial(
            handlers.transfer_call,
            calls=self.calls,
            rules=self.rules,
            telephony=self.telephony,
            facts=facts,
            policy=POLICY,
        )
        self.hangup = partial(
            handlers.hangup_call, calls=self.calls, telephony=self.telephony, facts=facts, policy=POLICY
        )
        self.processor = CommandProcessor(
            "call-control",
            {CommandType.transfer_call: self.transfer, CommandType.hangup_call: self.hangup},
            InMemoryProcessedCommands(),
        )
        self.bus = InMemoryBus()
        self.bus.register(Topic.call_control_commands, self.processor)

    async def start_call(self, call_id: str = "call-1", account_id: str = "acc-1") -> None:
        event = CallStarted(account_id=account_id, call_id=call_id, persona_id="per-1", caller_number="+14155550100")
        assert await handlers.record_call_event(event, calls=self.calls)

    async def state(self, call_id: str = "call-1", account_id: str = "acc-1") -> CallState:
        return (await self.calls.get(account_id, call_id)).state(utcnow(), POLICY.abandoned_after)

    def events(self, kind: type) -> list:
        return [e for _, _, e in self.published.published if isinstance(e, kind)]


def ctx(call_id: str = "call-1", account_id: str = "acc-1", region: str | None = "US") -> CallContext:
    return CallContext(account_id=account_id, persona_id="per-1", call_id=call_id, region=region)


async def transfer(world: World, number: str, *, call_id: str = "call-1", account_id: str = "acc-1", target=None):
    args = TransferCall(destination_number=number, target=target)
    return await world.bus.request(CommandType.transfer_call, ctx(call_id, account_id), args, timeout=5)


async def hangup(world: World, *, call_id: str = "call-1") -> HangupResult:
    return await world.bus.request(CommandType.hangup_call, ctx(call_id), HangupCall(), timeout=5)


@pytest.fixture
def world() -> World:
    return World()


async def test_transfer_normalises_the_destination_transfers_once_and_announces_it(world) -> None:
    await world.start_call()
    result = await transfer(world, "(415) 555-0123")
    assert isinstance(result, TransferResult)
    assert result.accepted and result.destination == "+14155550123" and result.destination_kind == "e164"
    assert world.telephony.transfers == [("call-1", world.telephony.transfers[0][1])]
    assert world.telephony.transfers[0][1].number == "+14155550123"
    assert await world.state() is CallState.transferred
    [event] = world.events(CallTransferred)
    assert event.transfer_id == result.transfer_id and event.destination == "+14155550123"


async def test_transfer_to_a_resolved_user_keeps_the_target(world) -> None:
    await world.start_call()
    target = TransferTarget(kind=TargetKind.user, id="u-7", name="Dana Scully")
    result = await transfer(world, "2001", target=target)
    assert result.target == target and result.destination_kind == "extension"
    assert "Dana Scully" in result.message
    assert world.events(CallTransferred)[0].target == target


@pytest.mark.parametrize("number", ["+1 415 555 0123 ext 22", "4155550123x22", "tel:+14155550123;ext=22", "+14155550123,,22"])
async def test_an_extension_is_dialled_after_the_connection_and_the_model_is_told(world, number) -> None:
    await world.start_call()
    result = await transfer(world, number)
    assert isinstance(result, TransferResult) and result.accepted
    assert (result.destination, result.extension) == ("+14155550123", "22")
    assert "extension 22" in result.message
    [(_, destination)] = world.telephony.transfers
    assert (destination.number, destination.extension) == ("+14155550123", "22")
    [event] = world.events(CallTransferred)
    assert event.extension == "22"


async def test_a_user_whose_number_carries_an_extension_is_reached_on_it(world) -> None:
    await world.start_call()
    target = TransferTarget(kind=TargetKind.user, id="u-7", name="Dana Scully")
    result = await transfer(world, "+14155550123;ext=4711", target=target)
    assert result.extension == "4711" and "Dana Scully" in result.message and "extension 4711" in result.message
    assert world.telephony.transfers[0][1].extension == "4711"


async def test_a_transfer_to_an_unreadable_extension_is_refused_and_nothing_happens(world) -> None:
    await world.start_call()
    with pytest.raises(RequestFailed) as failed:
        await transfer(world, "+14155550123 ext abc")
    assert failed.value.error.code is ErrorCode.invalid_argument
    assert world.telephony.transfers == [] and await world.state() is CallState.active
    assert (await world.calls.get("acc-1", "call-1")).actions == []


async def test_a_sip_call_id_is_transferred_and_hung_up_like_any_other(world) -> None:
    call_id = 'a84b4c76e66710@pc33.atlanta.example.com/x?y="z"'
    await world.start_call(call_id)
    result = await transfer(world, "2001", call_id=call_id)
    assert result.accepted and world.telephony.transfers[0][0] == call_id
    assert await world.state(call_id) is CallState.transferred
    await world.start_call("a84b4c76e66710@pc33.atlanta.example.com")
    assert await world.state("a84b4c76e66710@pc33.atlanta.example.com") is CallState.active


async def test_a_redelivered_transfer_command_returns_the_stored_reply_and_transfers_once(world) -> None:
    await world.start_call()
    command = Command[TransferCall].build(
        CommandType.transfer_call,
        ctx(),
        TransferCall(destination_number="+14155550123"),
        timeout=timedelta(seconds=5),
        reply_to="in-memory",
    )
    first = await world.bus.send(command)
    second = await world.bus.send(command)
    assert first.error is None and second == first
    assert len(world.telephony.transfers) == 1


async def test_a_second_transfer_is_refused_once_the_call_was_transferred(world) -> None:
    await world.start_call()
    await transfer(world, "+14155550123")
    with pytest.raises(RequestFailed) as refused:
        await transfer(world, "+12125550123")
    assert refused.value.error.code is ErrorCode.refused
    assert "already transferred to +14155550123" in refused.value.error.message
    assert len(world.telephony.transfers) == 1


async def test_concurrent_transfers_of_one_call_transfer_exactly_once(world) -> None:
    await world.start_call()
    outcomes = await asyncio.gather(*(transfer(world, "+14155550123") for _ in range(20)), return_exceptions=True)
    accepted = [o for o in outcomes if isinstance(o, TransferResult)]
    assert len(accepted) == 1
    assert all(
        isinstance(o, RequestFailed) and o.error.code in (ErrorCode.conflict, ErrorCode.refused)
        for o in outcomes
        if o not in accepted
    )
    assert len(world.telephony.transfers) == 1


async def test_transfer_after_hangup_is_refused_without_side_effect(world) -> None:
    await world.start_call()
    assert (await hangup(world)).already_ended is False
    with pytest.raises(RequestFailed) as refused:
        await transfer(world, "+14155550123")
    assert refused.value.error.code is ErrorCode.refused and "already ended" in refused.value.error.message
    assert world.telephony.transfers == []


async def test_unknown_calls_and_calls_of_another_account_are_not_found(world) -> None:
    await world.start_call(account_id="acc-1")
    for call_id, account_id in (("nope", "acc-1"), ("call-1", "acc-2")):
        with pytest.raises(RequestFailed) as missing:
            await transfer(world, "+14155550123", call_id=call_id, account_id=account_id)
        assert missing.value.error.code is ErrorCode.not_found
    assert world.telephony.transfers == []
    assert (await world.calls.get("acc-2", "call-1")).actions == []


async def test_a_refused_destination_leaves_no_trace(world) -> None:
    await world.start_call()
    for number, code in (
        ("+442079460958", ErrorCode.refused),
        ("banana", ErrorCode.invalid_argument),
        ("911", ErrorCode.refused),
    ):
        with pytest.raises(RequestFailed) as refused:
            await transfer(world, number)
        assert refused.value.error.code is code
    assert (await world.calls.get("acc-1", "call-1")).actions == []
    assert world.telephony.transfers == [] and world.published.published == []


async def test_the_account_rules_apply(world) -> None:
    await world.start_call()
    await world.rules.put("acc-1", DestinationRules(allow_international=True))
    result = await transfer(world, "+442079460958")
    assert result.destination == "+442079460958"


async def test_a_failed_transfer_puts_the_call_back_to_active_and_a_retry_can_succeed(world) -> None:
    await world.start_call()
    world.telephony.fail_with.append(TelephonyError(TelephonyFailure.unavailable, "the phone system cannot be reached"))
    with pytest.raises(RequestFailed) as failed:
        await transfer(world, "+14155550123")
    assert failed.value.error.code is ErrorCode.unavailable
    assert "still on the line" in failed.value.error.message
    assert await world.state() is CallState.active
    result = await transfer(world, "+14155550123")
    assert result.accepted
    record = await world.calls.get("acc-1", "call-1")
    assert [a.status for a in record.actions] == [ActionStatus.failed, ActionStatus.succeeded]


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (TelephonyFailure.gone, ErrorCode.refused),
        (TelephonyFailure.rejected, ErrorCode.refused),
        (TelephonyFailure.not_controllable, ErrorCode.refused),
        (TelephonyFailure.unavailable, ErrorCode.unavailable),
    ],
)
async def test_phone_system_failures_become_clear_tool_errors(world, failure, code) -> None:
    await world.start_call()
    world.telephony.fail_with.append(TelephonyError(failure, "Channel not found"))
    with pytest.raises(RequestFailed) as failed:
        await transfer(world, "+14155550123")
    assert failed.value.error.code is code
    assert await world.state() is CallState.active
    assert world.events(CallTransferred) == []


async def test_a_command_past_its_deadline_is_dropped_before_anything_happens(world) -> None:
    await world.start_call()
    command = Command[TransferCall].build(
        CommandType.transfer_call,
        ctx(),
        TransferCall(destination_number="+14155550123"),
        timeout=timedelta(seconds=-1),
        reply_to="in-memory",
    )
    processed = await world.processor.process(command.model_dump_json().encode())
    assert processed.outcome is Outcome.expired and processed.reply is None
    assert world.telephony.transfers == []


async def test_the_deadline_is_checked_again_right_before_the_phone_system_is_asked(world) -> None:
    await world.start_call()
    command = Command[TransferCall].build(
        CommandType.transfer_call,
        ctx(),
        TransferCall(destination_number="+14155550123"),
        timeout=timedelta(seconds=-1),
        reply_to="in-memory",
    )
    with pytest.raises(Unavailable, match="ran out of time.*; try again in a moment"):
        await world.transfer(command)
    assert world.telephony.transfers == []
    [action] = (await world.calls.get("acc-1", "call-1")).actions
    assert action.status is ActionStatus.failed
    assert await world.state() is CallState.active


class EndsWhileRead(InMemoryCalls):
    """The caller hangs up just after the handler first read the call: the end is there for the second read."""

    async def get(self, account_id: str, call_id: str):
        record = await super().get(account_id, call_id)
        now = utcnow()
        await self.record_end(
            CallEnd(account_id=account_id, call_id=call_id, reason="caller_hung_up", ended_by=EndedBy.pbx, ended_at=now)
        )
        return record


async def test_an_end_reported_after_the_first_read_stops_the_action_before_the_phone_system(world) -> None:
    await world.start_call()
    racing = EndsWhileRead()
    racing.calls = world.calls.calls
    world.calls = racing
    facts = CallFacts(world.published)
    transfer_call = partial(
        handlers.transfer_call, calls=racing, rules=world.rules, telephony=world.telephony, facts=facts, policy=POLICY
    )
    hangup_call = partial(handlers.hangup_call, calls=racing, telephony=world.telephony, facts=facts, policy=POLICY)

    soon = timedelta(seconds=5)
    args = TransferCall(destination_number="+14155550123")
    with pytest.raises(Refused, match="has just ended"):
        await transfer_call(Command[TransferCall].build(CommandType.transfer_call, ctx(), args, timeout=soon, reply_to="r"))
    racing.ends.clear()
    answer = await hangup_call(
        Command[HangupCall].build(CommandType.hangup_call, ctx(), HangupCall(), timeout=soon, reply_to="r")
    )

    assert answer.already_ended
    assert world.telephony.transfers == [] and world.telephony.hangups == []
    assert [a.status for a in (await InMemoryCalls.get(racing, "acc-1", "call-1")).actions] == [ActionStatus.failed] * 2
    assert world.events(CallTransferred) == [] and world.events(CallEnded) == []


async def test_hangup_ends_the_call_once_and_a_second_hangup_says_so(world) -> None:
    await world.start_call()
    first = await hangup(world)
    second = await hangup(world)
    assert first == HangupResult(ended=True, already_ended=False, message="The call has been ended.")
    assert second.ended and second.already_ended and "already ended" in second.message
    assert world.telephony.hangups == ["call-1"]
    [ended] = world.events(CallEnded)
    assert ended.reason == "agent_hangup"
    assert await world.state() is CallState.ended


async def test_hangup_after_the_caller_hung_up_is_a_no_op(world) -> None:
    await world.start_call()
    await handlers.record_call_event(CallEnded(account_id="acc-1", call_id="call-1"), calls=world.calls)
    result = await hangup(world)
    assert result.already_ended and world.telephony.hangups == []


async def test_hangup_when_the_phone_system_no_longer_has_the_call_records_the_end(world) -> None:
    await world.start_call()
    world.telephony.fail_with.append(TelephonyError(TelephonyFailure.gone, "Channel not found"))
    result = await hangup(world)
    assert result.ended and result.already_ended
    assert await world.state() is CallState.ended


async def test_a_failed_hangup_leaves_the_call_active(world) -> None:
    await world.start_call()
    world.telephony.fail_with.append(TelephonyError(TelephonyFailure.unavailable, "the phone system cannot be reached"))
    with pytest.raises(RequestFailed) as failed:
        await hangup(world)
    assert failed.value.error.code is ErrorCode.unavailable and "still connected" in failed.value.error.message
    assert await world.state() is CallState.active
    assert world.events(CallEnded) == []


async def test_hangup_of_a_transferred_call_is_refused(world) -> None:
    await world.start_call()
    await transfer(world, "+14155550123")
    with pytest.raises(RequestFailed) as refused:
        await hangup(world)
    assert refused.value.error.code is ErrorCode.refused
    assert world.telephony.hangups == []


async def test_lifecycle_events_apply_once_and_own_events_are_harmless(world) -> None:
    started = CallStarted(account_id="acc-1", call_id="call-9", persona_id="per-1")
    assert await handlers.record_call_event(started, calls=world.calls) is True
    assert await handlers.record_call_event(started, calls=world.calls) is False
    own = CallTransferred(
        account_id="acc-1", call_id="call-9", transfer_id="t", destination="+1", transferred_at=utcnow()
    )
    assert await handlers.record_call_event(own, calls=world.calls) is False
    ended = CallEnded(account_id="acc-1", call_id="call-9")
    assert await handlers.record_call_event(ended, calls=world.calls) is True
    assert await handlers.record_call_event(ended, calls=world.calls) is False
    assert await world.state("call-9") is CallState.ended


async def test_an_end_reported_before_the_start_still_ends_the_call(world) -> None:
    await handlers.record_call_event(CallEnded(account_id="acc-1", call_id="call-3"), calls=world.calls)
    await world.start_call("call-3")
    assert await world.state("call-3") is CallState.ended


async def test_reported_events_are_announced_only_when_new(world) -> None:
    started = CallStarted(account_id="acc-1", call_id="call-5", persona_id="per-1")
    assert await handlers.report_call_event(started, calls=world.calls, facts=CallFacts(world.published))
    assert not await handlers.report_call_event(started, calls=world.calls, facts=CallFacts(world.published))
    assert world.events(CallStarted) == [started]


async def test_a_broker_failure_never_turns_a_done_transfer_into_an_error(world) -> None:
    class BrokenPublisher:
        async def publish(self, topic, event, *, key) -> None:
            raise ConnectionError("broker down")

    await world.start_call()
    broken = partial(
        handlers.transfer_call,
        calls=world.calls,
        rules=world.rules,
        telephony=world.telephony,
        facts=CallFacts(BrokenPublisher()),
        policy=POLICY,
    )
    command = Command[TransferCall].build(
        CommandType.transfer_call,
        ctx(),
        TransferCall(destination_number="+14155550123"),
        timeout=timedelta(seconds=5),
        reply_to="in-memory",
    )
    result = await broken(command)
    assert result.accepted and len(world.telephony.transfers) == 1
