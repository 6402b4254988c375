"""The ledger of a run checked against the services' databases, read directly.

For every tool call of the run (each on a call id of its own, one tool call per call id):

- lost: an acknowledged `create_lead` whose case or lead is not stored, an acknowledged
  `transfer_call` / `hangup_call` the simulated PBX did not carry out;
- duplicated: more than one case, or more than one PBX action, for one call id (one tool call
  each); more than one lead for one caller number;
- late: a case, lead or PBX action stamped after its command's deadline (beyond the few hundred
  milliseconds between a service's last deadline check and its store write, see STAMP_TOLERANCE);
- unclear: a failed call whose answer is not a sentence saying to try again, or shows a trace;
- unanswered: no answer at all, or an answer later than the deadline plus a generous grace.
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

from tests.faults.harness import TOOL_TIMEOUT, FaultSystem
from tests.faults.load import SIDE_EFFECTS, Ledger, Outcome, ToolCall

ANSWER_BOUND = TOOL_TIMEOUT + 15.0
"""Generous: the gateway answers by its deadline; on a loaded 2-core machine the answer can still
take seconds more to reach the driver. This bound only catches calls left hanging."""

STAMP_TOLERANCE = 1.0
"""Seconds a stored stamp may trail its command's deadline: services check the deadline right before
acting, and the store write that carries the stamp comes after that check (on a loaded 2-core
machine one write can take most of a second). Every stamp past the deadline is reported."""

RETRYABLE = re.compile(r"try again|temporarily unavailable|in a moment", re.IGNORECASE)
TRACE = re.compile(r"Traceback|File \"|\bline \d+\b|\b[A-Z][A-Za-z]*(?:Error|Exception)\b|pymongo|aiokafka")


@dataclass
class Stored:
    """What the services stored for the run's call ids."""

    cases: list[dict[str, Any]]
    leads: list[dict[str, Any]]
    leads_deadlines: dict[str, datetime]
    pbx_actions: list[dict[str, Any]]
    call_actions: list[dict[str, Any]]

    @classmethod
    async def read(cls, target: FaultSystem, call_ids: list[str]) -> Stored:
        leads_db, calls_db = target.db("leads"), target.db("call-control")
        account = target.demo.account_id
        of_run = {"account_id": account, "call_id": {"$in": call_ids}}
        processed = await leads_db["processed_commands"].find({"call_id": {"$in": call_ids}}).to_list(None)
        return cls(
            cases=await leads_db["cases"].find(of_run).to_list(None),
            leads=await leads_db["leads"].find({"account_id": account}).to_list(None),
            leads_deadlines={doc["_id"]: doc["deadline"] for doc in processed},
            pbx_actions=await calls_db["pbx_actions"].find(of_run).to_list(None),
            call_actions=await calls_db["call_actions"].find(of_run).to_list(None),
        )

    def counts(self) -> tuple[int, ...]:
        return (len(self.cases), len(self.leads), len(self.pbx_actions), len(self.call_actions))


@dataclass
class Findings:
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    late: list[str] = field(default_factory=list)
    unclear: list[str] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    overdue: list[float] = field(default_factory=list)
    """Seconds past the deadline of every stamp that trails it, within the tolerance or not."""

    def problems(self) -> dict[str, list[str]]:
        return {name: items[:10] for name, items in vars(self).items() if items and name != "overdue"}


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
        case = cases.get(call.structured["case_id"])
        if case is None or case["call_id"] != call.call_id:
            findings.lost.append(f"case {call.structured['case_id']} of acknowledged create_lead on {call.call_id}")
        if call.structured["lead_id"] not in leads:
            findings.lost.append(f"lead {call.structured['lead_id']} of acknowledged create_lead on {call.call_id}")
    for call_id, n in Counter(case["call_id"] for case in stored.cases).items():
        if n > 1:
            findings.duplicated.append(f"{n} cases for the one create_lead on {call_id}")
    for key, n in Counter(lead["match_key"] for lead in stored.leads).items():
        if n > 1:
            findings.duplicated.append(f"{n} leads for caller {key}")
    for case in stored.cases:
        _not_late(findings, "case", case["_id"], case["created_at"], stored.leads_deadlines.get(case["command_id"]))
    for lead in stored.leads:
        if lead["command_id"] in stored.leads_deadlines:
            deadline = stored.leads_deadlines[lead["command_id"]]
            _not_late(findings, "lead", lead["_id"], lead["created_at"], deadline)


def _phone_actions(ledger: Ledger, stored: Stored, findings: Findings) -> None:
    done = {(a["call_id"], a["action"]) for a in stored.pbx_actions if a["by"] == "agent"}
    for tool, action in (("transfer_call", "transfer"), ("hangup_call", "hangup")):
        for call in ledger.acknowledged(tool):
            if (call.call_id, action) not in done:
                findings.lost.append(f"{action} of acknowledged {tool} on {call.call_id}: the PBX never did it")
    for call_id, n in Counter(a["call_id"] for a in stored.pbx_actions).items():
        if n > 1:
            findings.duplicated.append(f"{n} PBX actions on {call_id}, which had one tool call")
    deadlines: dict[str, datetime] = {}
    for claim in stored.call_actions:
        deadlines[claim["call_id"]] = max(claim["deadline"], deadlines.get(claim["call_id"], claim["deadline"]))
    for action in stored.pbx_actions:
        where = f"{action['action']} on {action['call_id']}"
        _not_late(findings, "PBX", where, action["at"], deadlines.get(action["call_id"]))


def _not_late(findings: Findings, kind: str, what: str, at: datetime, deadline: datetime | None) -> None:
    if deadline is None:
        findings.late.append(f"{kind} {what}: no command deadline found for it")
        return
    overdue = (at - deadline).total_seconds()
    if overdue > 0:
        findings.overdue.append(overdue)
    if overdue > STAMP_TOLERANCE:
        findings.late.append(f"{kind} {what} at {at.isoformat()}, {overdue:.3f}s after its deadline")


def _answers(ledger: Ledger, findings: Findings) -> None:
    for call in ledger.tool_calls:
        if call.ended is None or call.outcome == Outcome.no_answer:
            findings.unanswered.append(f"{call.tool} on {call.call_id}: {call.text[:200]}")
        elif call.seconds > ANSWER_BOUND:
            findings.unanswered.append(f"{call.tool} on {call.call_id} answered after {call.seconds:.1f}s")
    for call in ledger.failed():
        if call.outcome != Outcome.no_answer and not _clear_and_retryable(call):
            findings.unclear.append(f"{call.tool} on {call.call_id} ({call.outcome} {call.status}): {call.text[:300]}")


def _clear_and_retryable(call: ToolCall) -> bool:
    return bool(call.text.strip()) and RETRYABLE.search(call.text) is not None and TRACE.search(call.text) is None


def figures(scenario: str, ledger: Ledger, findings: Findings, **measured: float) -> dict[str, Any]:
    """The run in numbers, for docs/reliability.md; printed, and appended to $SWITCHBOARD_FAULT_FIGURES if set."""
    calls = ledger.finished()
    span = calls[-1].started - calls[0].started if len(calls) > 1 else 0.0
    numbers = {
        "scenario": scenario,
        "tool_calls": len(calls),
        "calls_per_second": round(len(calls) / span, 1) if span else 0.0,
        "acknowledged": sum(c.acknowledged for c in calls),
        "failed": dict(Counter(c.outcome for c in ledger.failed())),
        "acknowledged_side_effects": {tool: len(ledger.acknowledged(tool)) for tool in SIDE_EFFECTS},
        "calls_not_placed": sum(c.outcome == Outcome.not_placed for c in ledger.calls),
        "slowest_answer_s": round(max((c.seconds for c in calls), default=0.0), 2),
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
