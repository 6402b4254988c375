"""The ledger of a run checked against the services' databases, read directly.

Every tool call of the run has a call id of its own and is one logical call, however many attempts
the driver made (it retries as the README tells agents to). The effects of every call are checked,
acknowledged, failed and unanswered alike:

- duplicated: more than one case, or more than one PBX action, for one call id, whatever its
  attempts; more than one lead for one caller number;
- lost: an acknowledged `create_lead` whose case or lead is not stored, an acknowledged
  `transfer_call` / `hangup_call` the simulated PBX did not carry out;
- late: a case, lead or PBX action stamped after its command's deadline (see STAMP_TOLERANCE), so
  a failed call's effect, if it has one, is the one its command made in time;
- unclear: a failed attempt whose answer does not say to try again, or shows a trace;
- unanswered: an attempt with no answer at all, or one later than the deadline plus a generous grace.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.repeats import fingerprint
from tests.faults.harness import TOOL_TIMEOUT, FaultSystem
from tests.faults.load import RETRYABLE, SIDE_EFFECTS, Attempt, Ledger, Outcome, ToolCall

ANSWER_BOUND = TOOL_TIMEOUT + 15.0
"""Generous: the gateway answers by its deadline; on a loaded 2-core machine the answer can still
take seconds more to reach the driver. This bound only catches calls left hanging."""

STAMP_TOLERANCE = 0.5
"""Seconds a stored stamp may trail its command's deadline.

The deadline check and the stamp are both read from the service process's own clock, with no
`await` between them, so no other task of the process runs in between:

- leads-svc: `_in_time(command)` (`utcnow() >= deadline`), then at once `created_at = now_ms()`,
  the stamp of the lead and the case (later checks come before each insert; the stamp is not
  taken again);
- call-control's simulated PBX: `_in_time(until)` on the monotonic clock, then at once the action
  document with `"at": utcnow()`. `until` is `time.monotonic()` plus `command.remaining()`, both
  read together, again with no `await` between, and both clocks run at the same (NTP-slewed) rate.

What lies between is a few Python statements: microseconds. The store keeps milliseconds, cutting
both stamp and deadline down, which can put a stamp taken microseconds after the deadline 1 ms
after it. Only the operating system can stretch the gap, by running other processes on both cores
while the service waits for its turn between the two statements: on this 2-core machine at a load
average of 33 a stamp trailed its deadline by 0.35 s, the most seen; in the runs figured in
docs/reliability.md none did. 0.5 s covers that; a process stopped longer between the two
(SIGSTOP, swapped out) would act late for real, and is reported. Every stamp past its deadline is
counted in the figures."""

TRACE = re.compile(r"Traceback|File \"|\bline \d+\b|\b[A-Z][A-Za-z]*(?:Error|Exception)\b|pymongo|aiokafka")


@dataclass
class Stored:
    """What the services stored for the run's call ids."""

    cases: list[dict[str, Any]]
    leads: list[dict[str, Any]]
    leads_deadlines: dict[str, datetime]
    pbx_actions: list[dict[str, Any]]
    call_actions: list[dict[str, Any]]
    released_claims: set[str] = field(default_factory=set)
    """Fingerprints of the gateway's repeat claims released after a service answered `unavailable`."""

    @classmethod
    async def read(cls, target: FaultSystem, call_ids: list[str]) -> Stored:
        leads_db, calls_db = target.db("leads"), target.db("call-control")
        account = target.demo.account_id
        of_run = {"account_id": account, "call_id": {"$in": call_ids}}
        processed = await leads_db["processed_commands"].find({"call_id": {"$in": call_ids}}).to_list(None)
        released = await target.db("gateway")["repeat_claims"].find({"released": True}).to_list(None)
        return cls(
            cases=await leads_db["cases"].find(of_run).to_list(None),
            leads=await leads_db["leads"].find({"account_id": account}).to_list(None),
            leads_deadlines={doc["_id"]: doc["deadline"] for doc in processed},
            pbx_actions=await calls_db["pbx_actions"].find(of_run).to_list(None),
            call_actions=await calls_db["call_actions"].find(of_run).to_list(None),
            released_claims={doc["fingerprint"] for doc in released},
        )

    def counts(self) -> tuple[int, ...]:
        return (len(self.cases), len(self.leads), len(self.pbx_actions), len(self.call_actions))


class Finding(str):
    """What is wrong, in a sentence, and the tool call it is about (None when no one call)."""

    call_id: str | None

    def __new__(cls, text: str, call_id: str | None = None) -> Finding:
        finding = super().__new__(cls, text)
        finding.call_id = call_id
        return finding


@dataclass
class Findings:
    lost: list[Finding] = field(default_factory=list)
    duplicated: list[Finding] = field(default_factory=list)
    late: list[Finding] = field(default_factory=list)
    unclear: list[Finding] = field(default_factory=list)
    unanswered: list[Finding] = field(default_factory=list)
    overdue: list[float] = field(default_factory=list)
    """Seconds past the deadline of every stamp that trails it, within the tolerance or not."""

    def all(self) -> list[Finding]:
        return [*self.lost, *self.duplicated, *self.late, *self.unclear, *self.unanswered]

    def problems(self) -> dict[str, list[str]]:
        return {name: [str(f) for f in items[:10]] for name, items in vars(self).items() if items and name != "overdue"}


async def settle(target: FaultSystem, ledger: Ledger, *, quiet: float = 2.0, timeout: float = 30.0) -> Stored:
    """Read the stores once nothing has changed for `quiet` seconds (late writes would show by then)."""
    call_ids = [c.call_id for c in ledger.calls]
    give_up = time.monotonic() + timeout
    stored = await Stored.read(target, call_ids)
    stable_since = time.monotonic()
    while time.monotonic() - stable_since < quiet and time.monotonic() < give_up:
        await asyncio.sleep(0.5)
        again = await Stored.read(target, call_ids)
        if again.counts() != stored.counts():
            stable_since = time.monotonic()
        stored = again
    return stored


def audit(ledger: Ledger, stored: Stored) -> Findings:
    findings = Findings()
    _leads_and_cases(ledger, stored, findings)
    _phone_actions(ledger, stored, findings)
    _answers(ledger, findings)
    return findings


def _leads_and_cases(ledger: Ledger, stored: Stored, findings: Findings) -> None:
    cases = {case["_id"]: case for case in stored.cases}
    leads = {lead["_id"]: lead for lead in stored.leads}
    for call in ledger.acknowledged("create_lead"):
        assert call.structured is not None
        case_id, lead_id = call.structured["case_id"], call.structured["lead_id"]
        case = cases.get(case_id)
        if case is None or case["call_id"] != call.call_id:
            findings.lost.append(Finding(f"case {case_id} of acknowledged create_lead on {call.call_id}", call.call_id))
        if lead_id not in leads:
            findings.lost.append(Finding(f"lead {lead_id} of acknowledged create_lead on {call.call_id}", call.call_id))
    per_call = Counter(case["call_id"] for case in stored.cases)
    for call in _calls_of(ledger, "create_lead"):
        if (n := per_call[call.call_id]) > 1:
            what = f"{n} cases for create_lead on {call.call_id}: {_history(call)}"
            findings.duplicated.append(Finding(what, call.call_id))
    for key, n in Counter(lead["match_key"] for lead in stored.leads).items():
        if n > 1:
            findings.duplicated.append(Finding(f"{n} leads for caller {key}"))
    for case in stored.cases:
        deadline = stored.leads_deadlines.get(case["command_id"])
        _not_late(findings, "case", case["_id"], case["created_at"], deadline, case["call_id"])
    for lead in stored.leads:
        if lead["command_id"] in stored.leads_deadlines:
            deadline = stored.leads_deadlines[lead["command_id"]]
            _not_late(findings, "lead", lead["_id"], lead["created_at"], deadline)


def _phone_actions(ledger: Ledger, stored: Stored, findings: Findings) -> None:
    done = {(a["call_id"], a["action"]) for a in stored.pbx_actions if a["by"] == "agent"}
    for tool, action in (("transfer_call", "transfer"), ("hangup_call", "hangup")):
        for call in ledger.acknowledged(tool):
            if (call.call_id, action) not in done:
                what = f"{action} of acknowledged {tool} on {call.call_id}: the PBX never did it"
                findings.lost.append(Finding(what, call.call_id))
    per_call = Counter(a["call_id"] for a in stored.pbx_actions)
    for call in _calls_of(ledger, "transfer_call", "hangup_call"):
        if per_call[call.call_id] > 1:
            what = f"{per_call[call.call_id]} PBX actions on {call.call_id}: {_history(call)}"
            findings.duplicated.append(Finding(what, call.call_id))
    deadlines: dict[str, datetime] = {}
    for claim in stored.call_actions:
        deadlines[claim["call_id"]] = max(claim["deadline"], deadlines.get(claim["call_id"], claim["deadline"]))
    for action in stored.pbx_actions:
        where = f"{action['action']} on {action['call_id']}"
        _not_late(findings, "PBX", where, action["at"], deadlines.get(action["call_id"]), action["call_id"])


def _calls_of(ledger: Ledger, *tools: str) -> list[ToolCall]:
    """The tool calls of `tools` that made at least one attempt, whatever their outcome."""
    return [c for c in ledger.calls if c.tool in tools and c.attempts]


def _history(call: ToolCall) -> str:
    tries = ", ".join(f"{a.outcome}{' (repeat)' if a.repeat else ''}" for a in call.attempts)
    return f"one tool call, {len(call.attempts)} attempts: {tries}"


def _not_late(
    findings: Findings, kind: str, what: str, at: datetime, deadline: datetime | None, call_id: str | None = None
) -> None:
    if deadline is None:
        findings.late.append(Finding(f"{kind} {what}: no command deadline found for it", call_id))
        return
    overdue = (at - deadline).total_seconds()
    if overdue > 0:
        findings.overdue.append(overdue)
    if overdue > STAMP_TOLERANCE:
        findings.late.append(Finding(f"{kind} {what} at {at.isoformat()}, {overdue:.3f}s after its deadline", call_id))


def _answers(ledger: Ledger, findings: Findings) -> None:
    for call in ledger.tool_calls:
        if call.ended is None:
            findings.unanswered.append(Finding(f"{call.tool} on {call.call_id}: never finished", call.call_id))
    for call, attempt in ledger.attempts():
        which = f"{call.tool} on {call.call_id} (attempt {call.attempts.index(attempt) + 1})"
        if attempt.outcome == Outcome.no_answer:
            findings.unanswered.append(Finding(f"{which}: {attempt.text[:200]}", call.call_id))
        elif attempt.seconds > ANSWER_BOUND:
            findings.unanswered.append(Finding(f"{which} answered after {attempt.seconds:.1f}s", call.call_id))
        elif not attempt.acknowledged and not _clear_and_retryable(attempt):
            what = f"{which} ({attempt.outcome} {attempt.status}): {attempt.text[:300]}"
            findings.unclear.append(Finding(what, call.call_id))


def _clear_and_retryable(attempt: Attempt) -> bool:
    text = attempt.text
    return bool(text.strip()) and RETRYABLE.search(text) is not None and TRACE.search(text) is None


RELEASED_CLAIM = (
    "a retry after a service's `unavailable` answer is a new command to the service: the gateway releases "
    "its repeat claim on `unavailable` as if nothing had been done, but a service also answers `unavailable` "
    "when a store write failed after it had acted (a case inserted, a phone action claimed), so the retry "
    "acts a second time, or is refused, or is told an action that will never happen is under way"
)
"""A known defect of the gateway's repeat claims and the services' `unavailable` answers, found by
these tests: the database link cut shows it in every run, the database restart did once."""


def after_released_claims(ledger: Ledger, stored: Stored, account_id: str) -> set[str]:
    """The calls whose repeat claim the gateway released: their next attempt was a new command."""
    return {
        c.call_id
        for c in ledger.retried()
        if fingerprint(account_id, c.call_id, c.tool, c.arguments) in stored.released_claims
    }


def all_after_released_claims(findings: Findings, released: set[str]) -> bool:
    """Whether there are findings and every one is on a call whose repeat claim the gateway released."""
    found = findings.all()
    return bool(found) and all(f.call_id in released for f in found)


def effects_of_failed_calls(ledger: Ledger, stored: Stored) -> int:
    """Failed calls that left an effect anyway (made in time: the late check covers them)."""
    with_effect = {case["call_id"] for case in stored.cases} | {a["call_id"] for a in stored.pbx_actions}
    return sum(c.call_id in with_effect for c in ledger.failed())


def figures(scenario: str, ledger: Ledger, findings: Findings, **measured: float) -> dict[str, Any]:
    """The run in numbers, for docs/reliability.md; printed, and appended to $SWITCHBOARD_FAULT_FIGURES if set."""
    calls = ledger.finished()
    attempts = [a for _, a in ledger.attempts()]
    span = calls[-1].started - calls[0].started if len(calls) > 1 else 0.0
    numbers = {
        "scenario": scenario,
        "tool_calls": len(calls),
        "calls_per_second": round(len(calls) / span, 1) if span else 0.0,
        "acknowledged": sum(c.acknowledged for c in calls),
        "failed": dict(Counter(c.outcome for c in ledger.failed())),
        "attempts": len(attempts),
        "retried_calls": len(ledger.retried()),
        "acknowledged_on_a_retry": sum(c.acknowledged and len(c.attempts) > 1 for c in calls),
        "repeats": sum(a.repeat for a in attempts),
        "failed_attempts": dict(Counter(a.outcome for a in attempts if not a.acknowledged)),
        "acknowledged_side_effects": {tool: len(ledger.acknowledged(tool)) for tool in SIDE_EFFECTS},
        "calls_not_placed": sum(c.outcome == Outcome.not_placed for c in ledger.calls),
        "slowest_answer_s": round(max((a.seconds for a in attempts), default=0.0), 2),
        **{name: len(items) for name, items in vars(findings).items() if name != "overdue"},
        "stamps_after_deadline": len(findings.overdue),
        "latest_stamp_after_deadline_s": round(max(findings.overdue, default=0.0), 3),
        **{name: round(value, 2) for name, value in measured.items()},
    }
    line = json.dumps(numbers)
    print(f"\nfault figures: {line}")
    if path := os.environ.get("SWITCHBOARD_FAULT_FIGURES"):
        with open(path, "a") as out:
            out.write(line + "\n")
    return numbers
