"""In-memory stand-ins for leads-svc's repositories, with the same unique-key semantics."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import uuid4

import pytest

from leads_svc.model import Case, Lead, OutboxEntry, account_key
from leads_svc.outbox import LeadEvents
from switchboard.contracts import CallContext, Command, CommandType
from switchboard.contracts.leads import CreateLead
from switchboard.messaging.events import RecordingEventPublisher


def build_command(
    caller: str | None = "+14155550123",
    *,
    account: str = "acc-1",
    region: str | None = "US",
    command_id: str | None = None,
    call_id: str | None = None,
    **args,
) -> Command[CreateLead]:
    """A create_lead command of a fresh call (or of `call_id`); `args` override a valid name and intent."""
    context = CallContext(
        account_id=account,
        persona_id="per-1",
        call_id=call_id or f"call-{uuid4().hex[:8]}",
        caller_id_number=caller,
        region=region,
    )
    arguments = CreateLead(**{"name": "Ann Smith", "intent": "Wants a quote for solar panels.", **args})
    return Command[CreateLead].build(
        CommandType.create_lead, context, arguments, timeout=timedelta(seconds=5), reply_to="r", command_id=command_id
    )


class InMemoryLeads:
    def __init__(self) -> None:
        self.by_id: dict[str, Lead] = {}
        self.keys: dict[str, str] = {}

    async def claim(self, account_id: str, match_key: str, lead_id: str) -> str:
        return self.keys.setdefault(account_key(account_id, match_key), lead_id)

    async def add(self, lead: Lead) -> tuple[Lead, bool]:
        if lead.id in self.by_id:
            return self.by_id[lead.id], False
        self.by_id[lead.id] = lead
        return lead, True

    async def get(self, account_id: str, lead_id: str) -> Lead | None:
        lead = self.by_id.get(lead_id)
        return lead if lead and lead.account_id == account_id else None

    async def find_by_phone(self, account_id: str, phone_e164: str) -> Lead | None:
        lead_id = self.keys.get(account_key(account_id, phone_e164))
        return await self.get(account_id, lead_id) if lead_id else None

    async def page(self, account_id: str, *, before: str | None, limit: int) -> list[Lead]:
        leads = sorted((x for x in self.by_id.values() if x.account_id == account_id), key=lambda x: x.id, reverse=True)
        return [x for x in leads if before is None or x.id < before][:limit]


class InMemoryCases:
    def __init__(self) -> None:
        self.by_id: dict[str, Case] = {}
        self.keys: dict[str, str] = {}

    async def claim(self, account_id: str, command_id: str, case_id: str) -> str:
        return self.keys.setdefault(account_key(account_id, command_id), case_id)

    async def add(self, case: Case) -> tuple[Case, bool]:
        if case.id in self.by_id:
            return self.by_id[case.id], False
        self.by_id[case.id] = case
        return case, True

    async def get(self, account_id: str, case_id: str) -> Case | None:
        case = self.by_id.get(case_id)
        return case if case and case.account_id == account_id else None

    async def page(self, account_id: str, lead_id: str, *, before: str | None, limit: int) -> list[Case]:
        cases = [x for x in self.by_id.values() if (x.account_id, x.lead_id) == (account_id, lead_id)]
        cases.sort(key=lambda x: x.id, reverse=True)
        return [x for x in cases if before is None or x.id < before][:limit]

    async def count_by_lead(self, account_id: str, lead_ids: Sequence[str]) -> dict[str, int]:
        return {
            lead_id: sum(1 for x in self.by_id.values() if (x.account_id, x.lead_id) == (account_id, lead_id))
            for lead_id in lead_ids
        }


class InMemoryOutbox:
    def __init__(self) -> None:
        self.by_id: dict[str, OutboxEntry] = {}

    async def add(self, entry: OutboxEntry) -> bool:
        if entry.id in self.by_id:
            return False
        self.by_id[entry.id] = entry
        return True

    async def remove(self, entry: OutboxEntry) -> None:
        self.by_id.pop(entry.id, None)

    async def due(self, *, deadline_before: datetime, limit: int) -> list[OutboxEntry]:
        return sorted((x for x in self.by_id.values() if x.deadline < deadline_before), key=lambda x: x.deadline)[:limit]


class InMemoryRelayClaims:
    def __init__(self) -> None:
        self.keys: set[str] = set()

    async def claim(self, key: str, account_id: str, at: datetime) -> bool:
        if key in self.keys:
            return False
        self.keys.add(key)
        return True


class FailingPublisher(RecordingEventPublisher):
    """Refuses every event until `fail` is set to False: Kafka down, or a crash before the send."""

    def __init__(self) -> None:
        super().__init__()
        self.fail = True

    async def publish(self, topic, event, *, key: str) -> None:
        if self.fail:
            raise ConnectionError("broker unreachable")
        await super().publish(topic, event, key=key)


@pytest.fixture
def command():
    return build_command


@pytest.fixture
def leads() -> InMemoryLeads:
    return InMemoryLeads()


@pytest.fixture
def cases() -> InMemoryCases:
    return InMemoryCases()


@pytest.fixture
def outbox() -> InMemoryOutbox:
    return InMemoryOutbox()


@pytest.fixture
def publisher() -> RecordingEventPublisher:
    return RecordingEventPublisher()


@pytest.fixture
def events(publisher, outbox, leads, cases) -> LeadEvents:
    return LeadEvents(publisher, outbox, leads, cases, timeout=1.0)


@pytest.fixture
def failing_publisher() -> FailingPublisher:
    return FailingPublisher()


@pytest.fixture
def claims() -> InMemoryRelayClaims:
    return InMemoryRelayClaims()
