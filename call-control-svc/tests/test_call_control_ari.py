"""The Asterisk ARI adapter against a local server that answers like ARI (paths, auth, status codes, bodies)."""

from datetime import timedelta
from functools import partial

import pytest
from call_control_svc import handlers
from call_control_svc.ari import AriTelephony
from call_control_svc.events import CallFacts
from call_control_svc.memory import InMemoryCalls, InMemoryRules
from call_control_svc.model import Call, CallPolicy, Destination
from call_control_svc.settings import AriTransferMode
from call_control_svc.telephony import TelephonyError, TelephonyFailure
from switchboard.contracts import CallContext, Command, CommandType, utcnow
from switchboard.contracts.call_control import CallStarted, CallState, TransferCall
from switchboard.messaging import Refused, Unavailable
from switchboard.messaging.events import RecordingEventPublisher

NUMBER = Destination(number="+14155550123", kind="e164")
EXTENSION = Destination(number="2001", kind="extension")


def call(call_id: str = "1712345678.42", channel_id: str | None = None) -> Call:
    return Call(account_id="acc", call_id=call_id, channel_id=channel_id, started_at=utcnow())


@pytest.fixture
async def ari(fake_ari):
    adapter = AriTelephony(fake_ari.base_url, fake_ari.username, fake_ari.password, timeout=2)
    yield adapter
    await adapter.stop()


async def failure_of(coro) -> TelephonyError:
    with pytest.raises(TelephonyError) as raised:
        await coro
    return raised.value


async def test_transfer_continues_the_channel_in_the_dial_plan(ari, fake_ari) -> None:
    fake_ari.add_channel("1712345678.42")
    await ari.transfer(call(), NUMBER, timeout=2)
    variable, request = fake_ari.requests
    assert (variable.method, variable.path) == ("POST", "/ari/channels/1712345678.42/variable")
    assert variable.query == {"variable": "SWITCHBOARD_DTMF", "value": ""}
    assert (request.method, request.path) == ("POST", "/ari/channels/1712345678.42/continue")
    assert request.query == {"context": "switchboard-transfer", "extension": "+14155550123", "priority": "1"}
    assert "1712345678.42" not in fake_ari.in_stasis


async def test_an_extension_goes_to_the_dial_plan_with_the_channel_to_be_sent_once_the_line_answers(ari, fake_ari) -> None:
    fake_ari.add_channel("1712345678.42")
    await ari.transfer(call(), Destination(number="+14155550123", kind="e164", extension="22"), timeout=2)
    assert [(r.method, r.path) for r in fake_ari.requests] == [
        ("POST", "/ari/channels/1712345678.42/variable"),
        ("POST", "/ari/channels/1712345678.42/continue"),
    ]
    assert fake_ari.continued == [("1712345678.42", {"SWITCHBOARD_DTMF": "22"})]
    assert fake_ari.requests[1].query["extension"] == "+14155550123"


async def test_digits_of_a_failed_attempt_are_not_dialled_on_the_next(ari, fake_ari) -> None:
    fake_ari.add_channel("ch-1")
    fake_ari.fail_next.extend([(204, {}), (500, {"message": "Allocation failed"})])
    with_extension = Destination(number="+14155550123", kind="e164", extension="22")
    fake_ari.variables["ch-1"] = {"SWITCHBOARD_DTMF": "22"}
    error = await failure_of(ari.transfer(call("c", channel_id="ch-1"), with_extension, timeout=2))
    assert error.failure is TelephonyFailure.unavailable
    await ari.transfer(call("c", channel_id="ch-1"), NUMBER, timeout=2)
    assert fake_ari.continued == [("ch-1", {"SWITCHBOARD_DTMF": ""})]


async def test_redirect_mode_refuses_an_extension_instead_of_dropping_it(fake_ari) -> None:
    adapter = AriTelephony(fake_ari.base_url, fake_ari.username, fake_ari.password, mode=AriTransferMode.redirect)
    fake_ari.add_channel("ch-1")
    try:
        error = await failure_of(
            adapter.transfer(call("c1", channel_id="ch-1"), Destination(number="+14155550123", kind="e164", extension="5"), timeout=2)
        )
    finally:
        await adapter.stop()
    assert error.failure is TelephonyFailure.rejected and "extension 5" in error.detail
    assert fake_ari.requests == [] and "ch-1" in fake_ari.in_stasis


async def test_redirect_mode_sends_the_endpoint_of_a_number_or_an_extension(fake_ari) -> None:
    adapter = AriTelephony(fake_ari.base_url, fake_ari.username, fake_ari.password, mode=AriTransferMode.redirect)
    try:
        fake_ari.add_channel("ch-1")
        fake_ari.add_channel("ch-2")
        await adapter.transfer(call("c1", channel_id="ch-1"), NUMBER, timeout=2)
        await adapter.transfer(call("c2", channel_id="ch-2"), EXTENSION, timeout=2)
    finally:
        await adapter.stop()
    assert [(r.path, r.query) for r in fake_ari.requests] == [
        ("/ari/channels/ch-1/redirect", {"endpoint": "PJSIP/+14155550123@trunk"}),
        ("/ari/channels/ch-2/redirect", {"endpoint": "PJSIP/2001"}),
    ]


async def test_hangup_deletes_the_channel(ari, fake_ari) -> None:
    fake_ari.add_channel("1712345678.42")
    await ari.hangup(call(), timeout=2)
    [request] = fake_ari.requests
    assert (request.method, request.path, request.query) == (
        "DELETE",
        "/ari/channels/1712345678.42",
        {"reason": "normal"},
    )
    assert fake_ari.channels == {}


async def test_an_unknown_channel_is_gone(ari, fake_ari) -> None:
    error = await failure_of(ari.transfer(call("nobody"), NUMBER, timeout=2))
    assert error.failure is TelephonyFailure.gone and error.detail == "Channel not found"
    error = await failure_of(ari.hangup(call("nobody"), timeout=2))
    assert error.failure is TelephonyFailure.gone


async def test_a_channel_outside_the_stasis_app_cannot_be_controlled(ari, fake_ari) -> None:
    fake_ari.add_channel("ch-9", in_stasis=False)
    error = await failure_of(ari.transfer(call("ch-9"), NUMBER, timeout=2))
    assert error.failure is TelephonyFailure.not_controllable
    assert error.detail == "Channel not in Stasis application"


async def test_an_endpoint_of_another_technology_is_rejected(fake_ari) -> None:
    adapter = AriTelephony(
        fake_ari.base_url,
        fake_ari.username,
        fake_ari.password,
        mode=AriTransferMode.redirect,
        number_endpoint="SIP/{destination}@carrier",
    )
    fake_ari.add_channel("ch-3", technology="PJSIP")
    try:
        error = await failure_of(adapter.transfer(call("ch-3"), NUMBER, timeout=2))
    finally:
        await adapter.stop()
    assert error.failure is TelephonyFailure.rejected and "technology" in error.detail


@pytest.mark.parametrize(
    ("status", "body", "failure", "detail"),
    [
        (500, {"message": "Allocation failed"}, TelephonyFailure.unavailable, "Allocation failed"),
        (503, {}, TelephonyFailure.unavailable, "Service Unavailable"),
        (412, {"message": "Channel in invalid state"}, TelephonyFailure.not_controllable, "Channel in invalid state"),
        (
            422,
            {"message": "Endpoint is not the same type as the channel"},
            TelephonyFailure.rejected,
            "Endpoint is not the same type as the channel",
        ),
        (404, {"message": "Endpoint not found"}, TelephonyFailure.rejected, "Endpoint not found"),
    ],
)
async def test_error_answers_become_failures_with_their_message(ari, fake_ari, status, body, failure, detail) -> None:
    fake_ari.add_channel("ch-1")
    fake_ari.fail_next.append((status, body))
    error = await failure_of(ari.transfer(call("ch-1"), NUMBER, timeout=2))
    assert (error.failure, error.detail) == (failure, detail)


async def test_wrong_credentials_make_the_phone_system_unavailable(fake_ari) -> None:
    adapter = AriTelephony(fake_ari.base_url, fake_ari.username, "wrong")
    fake_ari.add_channel("ch-1")
    try:
        error = await failure_of(adapter.transfer(call("ch-1"), NUMBER, timeout=2))
    finally:
        await adapter.stop()
    assert error.failure is TelephonyFailure.unavailable and error.detail == "Authentication required"
    assert "ch-1" in fake_ari.in_stasis


async def test_a_refused_connection_makes_the_phone_system_unavailable(closed_port_url) -> None:
    adapter = AriTelephony(closed_port_url, "u", "p")
    try:
        error = await failure_of(adapter.transfer(call(), NUMBER, timeout=2))
    finally:
        await adapter.stop()
    assert error.failure is TelephonyFailure.unavailable and error.detail == "the phone system cannot be reached"


async def test_channel_ids_are_quoted_into_the_path(ari, fake_ari) -> None:
    fake_ari.add_channel("a b")
    await ari.hangup(call("c1", channel_id="a b"), timeout=2)
    assert fake_ari.requests[0].path == "/ari/channels/a b"
    assert fake_ari.channels == {}


async def test_a_stopped_adapter_refuses_new_requests(fake_ari) -> None:
    adapter = AriTelephony(fake_ari.base_url, fake_ari.username, fake_ari.password)
    await adapter.stop()
    error = await failure_of(adapter.transfer(call(), NUMBER, timeout=2))
    assert error.failure is TelephonyFailure.unavailable and fake_ari.requests == []


async def test_an_ari_failure_is_a_clear_tool_error_and_the_call_goes_back_to_active(ari, fake_ari) -> None:
    calls = InMemoryCalls()
    await handlers.record_call_event(
        CallStarted(account_id="acc", call_id="c-1", channel_id="1712345678.42"), calls=calls
    )
    policy = CallPolicy()
    transfer = partial(
        handlers.transfer_call,
        calls=calls,
        rules=InMemoryRules(),
        telephony=ari,
        facts=CallFacts(RecordingEventPublisher()),
        policy=policy,
    )

    def command() -> Command[TransferCall]:
        return Command[TransferCall].build(
            CommandType.transfer_call,
            CallContext(account_id="acc", persona_id="p", call_id="c-1", region="US"),
            TransferCall(destination_number="+14155550123"),
            timeout=timedelta(seconds=5),
            reply_to="r",
        )

    fake_ari.add_channel("1712345678.42", in_stasis=False)
    with pytest.raises(Refused, match="would not transfer the call right now .Channel not in Stasis application."):
        await transfer(command())
    assert (await calls.get("acc", "c-1")).state(utcnow(), policy.abandoned_after) is CallState.active

    fake_ari.fail_next.append((500, {"message": "Allocation failed"}))
    with pytest.raises(Unavailable, match="still on the line"):
        await transfer(command())

    fake_ari.in_stasis.add("1712345678.42")
    result = await transfer(command())
    assert result.accepted
    assert (await calls.get("acc", "c-1")).state(utcnow(), policy.abandoned_after) is CallState.transferred
    assert [r.path for r in fake_ari.requests] == [
        "/ari/channels/1712345678.42/variable",
        "/ari/channels/1712345678.42/variable",
        "/ari/channels/1712345678.42/variable",
        "/ari/channels/1712345678.42/continue",
    ]
