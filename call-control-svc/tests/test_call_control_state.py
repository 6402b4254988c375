"""The call state machine, derived from a call's insert-only facts."""

from datetime import timedelta

from call_control_svc.model import (
    ActionKind,
    ActionStatus,
    Call,
    CallAction,
    CallEnd,
    CallRecord,
    Destination,
    EndedBy,
)
from switchboard.contracts import utcnow
from switchboard.contracts.call_control import CallState

GRACE = timedelta(seconds=30)
NOW = utcnow()


def call() -> Call:
    return Call(account_id="acc", call_id="c1", started_at=NOW)


def action(
    attempt: int,
    kind: ActionKind = ActionKind.transfer,
    status: ActionStatus = ActionStatus.pending,
    deadline_in: timedelta = timedelta(seconds=5),
) -> CallAction:
    return CallAction.new(
        kind,
        account_id="acc",
        call_id="c1",
        attempt=attempt,
        command_id=f"cmd{attempt}",
        deadline=NOW + deadline_in,
        now=NOW,
        destination=Destination(number="+14155550123", kind="e164") if kind is ActionKind.transfer else None,
    ).model_copy(update={"status": status})


def record(*actions: CallAction, ended: bool = False) -> CallRecord:
    end = (
        CallEnd(account_id="acc", call_id="c1", reason="hangup", ended_by=EndedBy.pbx, ended_at=NOW) if ended else None
    )
    return CallRecord(account_id="acc", call_id="c1", call=call(), end=end, actions=list(actions))


def test_a_started_call_is_active() -> None:
    assert record().state(NOW, GRACE) is CallState.active
    assert record().next_attempt() == 1


def test_a_claimed_transfer_makes_the_call_transferring() -> None:
    assert record(action(1)).state(NOW, GRACE) is CallState.transferring


def test_a_failed_transfer_puts_the_call_back_to_active_and_the_next_attempt_follows() -> None:
    r = record(action(1, status=ActionStatus.failed))
    assert r.state(NOW, GRACE) is CallState.active
    assert r.running_action(NOW, GRACE) is None
    assert r.next_attempt() == 2


def test_a_succeeded_transfer_makes_the_call_transferred() -> None:
    r = record(action(1, status=ActionStatus.failed), action(2, status=ActionStatus.succeeded))
    assert r.state(NOW, GRACE) is CallState.transferred
    assert r.completed_transfer() is not None and r.completed_transfer().attempt == 2


def test_an_end_outranks_everything() -> None:
    assert record(action(1, status=ActionStatus.succeeded), ended=True).state(NOW, GRACE) is CallState.ended
    assert record(action(1), ended=True).state(NOW, GRACE) is CallState.ended


def test_a_succeeded_hangup_ends_the_call_even_before_its_end_is_recorded() -> None:
    assert record(action(1, ActionKind.hangup, ActionStatus.succeeded)).state(NOW, GRACE) is CallState.ended


def test_a_pending_hangup_blocks_other_actions_but_the_call_is_still_active() -> None:
    r = record(action(1, ActionKind.hangup))
    assert r.state(NOW, GRACE) is CallState.active
    assert r.running_action(NOW, GRACE) is not None


def test_a_claim_abandoned_past_its_deadline_and_grace_no_longer_blocks_the_call() -> None:
    stale = action(1, deadline_in=-(GRACE + timedelta(seconds=1)))
    r = record(stale)
    assert r.state(NOW, GRACE) is CallState.active
    assert r.running_action(NOW, GRACE) is None
    assert r.next_attempt() == 2
    within_grace = record(action(1, deadline_in=-timedelta(seconds=1)))
    assert within_grace.state(NOW, GRACE) is CallState.transferring
