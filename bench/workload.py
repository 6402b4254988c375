"""What the simulated voice agents do: a mix of the six global tools, and the data it needs.

The mix follows a phone call: the caller is looked up, office hours and a colleague's availability
are checked, a lead is recorded, and the call ends in a transfer or a hang-up. Transfers and
hang-ups each need a live call, so every run first places that many calls on the simulated PBX;
the other tools run in the context of calls that need not be registered.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable

import httpx
from pymongo import AsyncMongoClient

from bench.load import ToolCall
from contacts_svc.model import Contact, PhoneEntry, now
from contacts_svc.repository import CONTACT_NUMBERS, CONTACTS, _contact_document, slot_document

MIX: dict[str, int] = {
    "lookup_contact": 25,
    "is_office_open": 20,
    "check_user_availability": 20,
    "create_lead": 15,
    "transfer_call": 12,
    "hangup_call": 8,
}
ENDS_CALL = ("transfer_call", "hangup_call")
TRANSFER_DESTINATION = "+12125550142"
CALLERS = 2_000
"""Distinct caller numbers: later calls from the same number find their lead already there."""


def contact_number(n: int) -> str:
    """The n-th native contact's number (valid US numbers, San Francisco area code)."""
    return f"+1415{2_000_000 + n}"


def stranger_number(n: int) -> str:
    """A number no contact has (New York area code)."""
    return f"+1212{2_000_000 + n}"


def caller_number(n: int) -> str:
    return f"+1310{2_000_000 + n}"


def contacts(account_id: str, first: int, count: int) -> Iterable[dict]:
    """Native contacts as contacts-svc stores them, one number each."""
    at = now()
    for n in range(first, first + count):
        contact = Contact(
            account_id=account_id,
            contact_id=f"bench-{n}",
            name=f"Bench Contact {n}",
            company="Bench Holdings",
            phones=[PhoneEntry(number=contact_number(n), label="work")],
            created_at=at,
            updated_at=at,
        )
        yield _contact_document(contact)


async def insert_contacts(
    client: AsyncMongoClient, database: str, account_id: str, count: int, *, first: int = 0, batch: int = 5_000
) -> float:
    """Insert contacts `first` .. `first + count - 1` and their number slots with insert_many in
    batches; the seconds it took. Every bench contact has a number of its own, so each number's
    chain is its slot 0."""
    db = client[database]
    started = asyncio.get_running_loop().time()
    for start in range(first, first + count, batch):
        documents = list(contacts(account_id, start, min(batch, first + count - start)))
        await db[CONTACTS].insert_many(documents, ordered=False)
        slots = [
            slot_document(account_id, phone["number"], 0, document["contact_id"])
            for document in documents
            for phone in document["phones"]
        ]
        await db[CONTACT_NUMBERS].insert_many(slots, ordered=False)
    return asyncio.get_running_loop().time() - started


async def place_calls(
    call_control_url: str, admin_token: str, account_id: str, persona_id: str, call_ids: list[str], *, concurrency: int = 16
) -> None:
    """Start each call on the simulated PBX (call.started), so a transfer or hang-up finds it live."""
    queue = list(call_ids)
    async with httpx.AsyncClient(
        base_url=call_control_url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=30
    ) as http:

        async def worker() -> None:
            while queue:
                call_id = queue.pop()
                body = {"account_id": account_id, "call_id": call_id, "persona_id": persona_id}
                response = await http.post("/pbx/v1/calls", json=body)
                if response.status_code != 201:
                    raise RuntimeError(f"placing call {call_id} answered {response.status_code}: {response.text[:200]}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def calls_needed(rate: float, duration: float) -> int:
    """Live calls a run at `rate` for `duration` consumes, with room for Poisson variation."""
    share = sum(MIX[t] for t in ENDS_CALL) / sum(MIX.values())
    expected = rate * duration * share
    return int(expected + 4 * expected**0.5 + 10)


class Workload:
    """Draws the next tool call of the mix; each transfer or hang-up takes a live call of its own."""

    def __init__(self, *, live_calls: list[str], contacts: int, users: list[str], seed: int = 7) -> None:
        self._rng = random.Random(seed)
        self._tools = list(MIX)
        self._weights = list(MIX.values())
        self._live = list(live_calls)
        self._contacts = contacts
        self._users = users

    def _conversation(self) -> str:
        return f"bench-conv-{self._rng.randrange(100_000)}"

    def _lookup_number(self) -> str:
        if self._contacts and self._rng.random() < 0.5:
            return contact_number(self._rng.randrange(self._contacts))
        return stranger_number(self._rng.randrange(1_000_000))

    def next(self) -> ToolCall:
        tool = self._rng.choices(self._tools, self._weights)[0]
        caller = caller_number(self._rng.randrange(CALLERS))
        if tool in ENDS_CALL:
            call_id = self._live.pop() if self._live else f"bench-unplaced-{self._rng.randrange(10**9)}"
        else:
            call_id = self._conversation()
        arguments: dict[str, object] = {}
        if tool == "lookup_contact":
            arguments = {"phone_number": self._lookup_number()}
        elif tool == "check_user_availability":
            arguments = {"user_id": self._rng.choice(self._users)}
        elif tool == "create_lead":
            arguments = {"name": f"Caller {caller[-4:]}", "intent": "Wants a quote for an office move.", "classification": "lead"}
        elif tool == "transfer_call":
            arguments = {"destination_number": TRANSFER_DESTINATION}
        return ToolCall(tool, arguments, call_id, caller)


def live_call_ids(tag: str, count: int) -> list[str]:
    return [f"bench-{tag}-{n}" for n in range(count)]


