"""The audit and the load driver's retries on made-up ledgers: each finding the fault runs rely on
can fail. No servers; the fault scenarios themselves are in the other modules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from tests.faults import load as load_module
from gateway.repeats import fingerprint
from tests.faults.audit import Stored, after_released_claims, all_after_released_claims, audit, effects_of_failed_calls
from tests.faults.load import Attempt, Ledger, Load, Outcome, ToolCall
from tests.faults.scenario import assert_took_effect

DEADLINE = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
UNAVAILABLE = "create_lead is temporarily unavailable; try again in a moment, or carry on without it."


def attempt(start: float, outcome: str, *, text: str = "", structured: dict[str, Any] | None = None) -> Attempt:
    at = DEADLINE - timedelta(seconds=4)
    return Attempt(start, at, ended=start + 1.0, outcome=outcome, text=text, structured=structured)


def tool_call(tool: str, call_id: str, *attempts: Attempt) -> ToolCall:
    call = ToolCall(tool, call_id, attempts[0].started, attempts[0].started_at, attempts=list(attempts))
    call.settle(attempts[-1])
    return call


def case(call_id: str, n: int = 1, *, late_by: float = -1.0) -> dict[str, Any]:
    return {
        "_id": f"case-{call_id}-{n}",
        "call_id": call_id,
        "command_id": f"command-{call_id}-{n}",
        "created_at": DEADLINE + timedelta(seconds=late_by),
    }


def stored(cases: list[dict[str, Any]] | None = None, pbx: list[dict[str, Any]] | None = None) -> Stored:
    cases, pbx = cases or [], pbx or []
    return Stored(
        cases=cases,
        leads=[],
        leads_deadlines={c["command_id"]: DEADLINE for c in cases},
        pbx_actions=pbx,
        call_actions=[{"call_id": a["call_id"], "deadline": DEADLINE} for a in pbx],
    )


def created(call_id: str) -> dict[str, Any]:
    return {"case_id": f"case-{call_id}-1", "lead_id": "lead-1"}


def test_a_retried_call_with_two_effects_is_duplicated_whatever_its_outcome() -> None:
    retried = tool_call(
        "create_lead",
        "c1",
        attempt(0, Outcome.tool_error, text=UNAVAILABLE),
        attempt(2, Outcome.tool_error, text=UNAVAILABLE),
    )
    findings = audit(Ledger([retried]), stored([case("c1", 1), case("c1", 2)]))
    assert findings.duplicated == [
        "2 cases for create_lead on c1: one tool call, 2 attempts: tool_error, tool_error"
    ]
    assert not findings.lost and not findings.late and not findings.unclear


def test_a_failed_call_may_leave_one_effect_made_in_time() -> None:
    timed_out = tool_call("create_lead", "c1", attempt(0, Outcome.tool_error, text=UNAVAILABLE))
    assert not audit(Ledger([timed_out]), stored([case("c1")])).problems()
    assert effects_of_failed_calls(Ledger([timed_out]), stored([case("c1")])) == 1


def test_an_effect_stamped_after_its_deadline_is_late_even_for_a_failed_call() -> None:
    timed_out = tool_call("create_lead", "c1", attempt(0, Outcome.no_answer, text="ReadTimeout"))
    findings = audit(Ledger([timed_out]), stored([case("c1", late_by=0.6)]))
    assert len(findings.late) == 1 and findings.late[0].startswith("case case-c1-1 at ")
    assert findings.overdue == [0.6]
    within = audit(Ledger([timed_out]), stored([case("c1", late_by=0.001)]))
    assert not within.late and within.overdue == [0.001]


def test_an_acknowledged_repeat_whose_case_is_missing_is_lost() -> None:
    repeated = tool_call(
        "create_lead",
        "c1",
        attempt(0, Outcome.tool_error, text=UNAVAILABLE),
        attempt(2, Outcome.ok, structured={**created("c1"), "repeat": True}),
    )
    findings = audit(Ledger([repeated]), stored([]))
    assert findings.lost == [
        "case case-c1-1 of acknowledged create_lead on c1",
        "lead lead-1 of acknowledged create_lead on c1",
    ]


def test_two_pbx_actions_for_one_retried_hangup_are_duplicated() -> None:
    retried = tool_call(
        "hangup_call",
        "h1",
        attempt(0, Outcome.tool_error, text=UNAVAILABLE),
        attempt(2, Outcome.ok, structured={"repeat": True}),
    )
    actions = [{"call_id": "h1", "action": "hangup", "by": "agent", "at": DEADLINE - timedelta(seconds=1)}] * 2
    findings = audit(Ledger([retried]), stored(pbx=actions))
    assert findings.duplicated == [
        "2 PBX actions on h1: one tool call, 2 attempts: tool_error, ok (repeat)"
    ]


def test_every_failed_attempt_must_say_to_try_again() -> None:
    refused = tool_call(
        "transfer_call",
        "t1",
        attempt(0, Outcome.tool_error, text=UNAVAILABLE),
        attempt(2, Outcome.tool_error, text="The call was already transferred."),
    )
    findings = audit(Ledger([refused]), stored([]))
    assert findings.unclear == [
        "transfer_call on t1 (attempt 2) (tool_error None): The call was already transferred."
    ]


def test_an_attempt_with_no_answer_is_reported_even_when_its_retry_succeeded() -> None:
    call = tool_call(
        "create_lead",
        "c1",
        attempt(0, Outcome.no_answer, text="ReadTimeout: "),
        attempt(2, Outcome.ok, structured=created("c1")),
    )
    findings = audit(Ledger([call]), stored([case("c1")]))
    assert findings.unanswered == ["create_lead on c1 (attempt 1): ReadTimeout: "]


def test_only_findings_on_calls_whose_repeat_claim_was_released_are_the_known_defect() -> None:
    released = tool_call(
        "create_lead",
        "c1",
        attempt(0, Outcome.tool_error, text="The service is temporarily unavailable; try again in a moment."),
        attempt(2, Outcome.ok, structured=created("c1")),
    )
    kept = tool_call(
        "create_lead",
        "c2",
        attempt(0, Outcome.tool_error, text=UNAVAILABLE),
        attempt(2, Outcome.ok, structured=created("c2")),
    )
    once = tool_call("create_lead", "c3", attempt(0, Outcome.ok, structured=created("c3")))
    ledger = Ledger([released, kept, once])
    duplicates = [case("c1", 1), case("c1", 2), case("c2", 1), case("c3", 1)]
    leads = [{"_id": "lead-1", "match_key": "+14155550110", "command_id": "command-c1-1"}]
    claims = {fingerprint("acc", "c1", "create_lead", {})}

    store = _with_leads(duplicates, leads, claims)
    findings = audit(ledger, store)
    assert [f.call_id for f in findings.duplicated] == ["c1"]
    assert after_released_claims(ledger, store, "acc") == {"c1"}
    assert all_after_released_claims(findings, {"c1"})
    # Without repeat claims at all, or with one the gateway kept, a second case is no known defect.
    assert after_released_claims(ledger, _with_leads(duplicates, leads, set()), "acc") == set()
    assert not all_after_released_claims(findings, set())
    findings = audit(ledger, _with_leads([*duplicates, case("c2", 2)], leads, claims))
    assert [f.call_id for f in findings.duplicated] == ["c1", "c2"]
    assert not all_after_released_claims(findings, {"c1"})
    clean = audit(ledger, _with_leads([*duplicates[2:], case("c1")], leads, claims))
    assert not clean.problems() and not all_after_released_claims(clean, {"c1"})


def _with_leads(cases: list[dict[str, Any]], leads: list[dict[str, Any]], released: set[str]) -> Stored:
    with_leads = stored(cases)
    with_leads.leads, with_leads.released_claims = leads, released
    with_leads.leads_deadlines[leads[0]["command_id"]] = DEADLINE
    leads[0]["created_at"] = DEADLINE - timedelta(seconds=1)
    return with_leads


def test_a_fault_during_which_nothing_failed_took_no_effect() -> None:
    ledger = Ledger(
        [tool_call("create_lead", f"c{n}", attempt(n, Outcome.ok, structured=created(f"c{n}"))) for n in range(10)]
    )
    with pytest.raises(AssertionError, match="the fault took no effect: none of the 4 attempts of create_lead"):
        assert_took_effect("kill", ledger, began=3.5, ended=6.0, hits=("create_lead",))
    ledger.calls.append(tool_call("create_lead", "failed", attempt(5.5, Outcome.tool_error, text=UNAVAILABLE)))
    assert_took_effect("kill", ledger, began=3.5, ended=6.0, hits=("create_lead",))
    with pytest.raises(AssertionError, match="took no effect"):
        assert_took_effect("kill", ledger, began=3.5, ended=6.0, hits=("transfer_call",))


@pytest.mark.parametrize(
    ("outcome", "status", "text", "retryable"),
    [
        (Outcome.tool_error, 200, UNAVAILABLE, True),
        (Outcome.tool_error, 200, "The request ran out of time before the lead was recorded; try again.", True),
        (Outcome.http_error, 503, '{"error": "busy", "message": "At capacity; retry in a moment."}', True),
        (Outcome.http_error, 429, '{"error": "too_many_in_flight", "message": "retry when one is answered."}', True),
        (Outcome.no_answer, None, "ReadTimeout: ", True),
        (Outcome.tool_error, 200, "Invalid arguments for create_lead: name is required.", False),
        (Outcome.http_error, 401, '{"error": "unauthorized"}', False),
        (Outcome.ok, 200, "Lead recorded.", False),
    ],
)
def test_which_answers_the_driver_retries(outcome: str, status: int | None, text: str, retryable: bool) -> None:
    assert Attempt(0.0, DEADLINE, ended=1.0, outcome=outcome, status=status, text=text).retryable is retryable


def _target(handler: Any) -> Any:
    demo = SimpleNamespace(
        mcp_url="http://gateway.test/mcp",
        headers=lambda call_id, caller_id_number=None: {"call_id": call_id},
    )
    return SimpleNamespace(demo=demo), httpx.MockTransport(handler)


def _result(text: str, *, error: bool, structured: dict[str, Any] | None = None) -> dict[str, Any]:
    result = {"content": [{"type": "text", "text": text}], "isError": error, "structuredContent": structured}
    return {"jsonrpc": "2.0", "id": 1, "result": result}


async def _drive(monkeypatch: pytest.MonkeyPatch, answers: list[httpx.Response]) -> tuple[ToolCall, list[Any]]:
    monkeypatch.setattr(load_module, "RETRY_PAUSE", 0.0)
    seen: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.headers["call_id"], request.read()))
        return answers[len(seen) - 1]

    target, transport = _target(handler)
    driver = Load(target, "unit")
    await driver._http.aclose()
    driver._http = httpx.AsyncClient(transport=transport)
    call = ToolCall("create_lead", "c1", 0.0, DEADLINE, caller="+14155550110")
    await driver._call_tool(call, {"name": "Caller", "intent": "Asks"})
    await driver._http.aclose()
    return call, seen


async def test_the_driver_retries_a_call_told_to_try_again_with_the_same_call_and_arguments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = [
        httpx.Response(200, json=_result(UNAVAILABLE, error=True)),
        httpx.Response(503, json={"error": "busy", "message": "The gateway is at capacity; retry in a moment."}),
        httpx.Response(200, json=_result("Lead recorded.", error=False, structured={**created("c1"), "repeat": True})),
    ]
    call, seen = await _drive(monkeypatch, answers)
    assert [a.outcome for a in call.attempts] == [Outcome.tool_error, Outcome.http_error, Outcome.ok]
    assert call.acknowledged and call.attempts[-1].repeat
    bodies = {body.replace(b"#1", b"#n").replace(b"#2", b"#n").replace(b"#3", b"#n") for _, body in seen}
    assert {call_id for call_id, _ in seen} == {"c1"} and len(bodies) == 1


async def test_the_driver_gives_up_after_three_tries_and_never_retries_a_refusal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unavailable = httpx.Response(200, json=_result(UNAVAILABLE, error=True))
    call, seen = await _drive(monkeypatch, [unavailable] * 5)
    assert len(seen) == 3 and call.outcome == Outcome.tool_error
    invalid = httpx.Response(200, json=_result("Invalid arguments for create_lead: name is blank.", error=True))
    call, seen = await _drive(monkeypatch, [invalid, unavailable])
    assert len(seen) == 1 and len(call.attempts) == 1
