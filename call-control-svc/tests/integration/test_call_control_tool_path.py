"""The transfer_call and hangup_call paths on the real database: every read and write names one
document by `_id` alone, which FerretDB serves from an index (any other filter scans the collection)."""

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from call_control_svc import handlers
from call_control_svc.destinations import DestinationRules
from call_control_svc.events import CallFacts
from call_control_svc.model import ActionKind, ActionStatus, CallAction, CallPolicy
from call_control_svc.repository import INDEXES, CallRepository, RulesRepository
from call_control_svc.simulated import INDEXES as PBX_INDEXES
from call_control_svc.simulated import SimulatedPbx
from pymongo import AsyncMongoClient
from switchboard.contracts import CallContext, Command, CommandType, utcnow
from switchboard.contracts.call_control import CallStarted, HangupCall, TransferCall
from switchboard.messaging import Refused
from switchboard.messaging.events import RecordingEventPublisher
from switchboard.mongo import ensure_indexes
from switchboard.testing.queries import QueryLog

pytestmark = pytest.mark.integration

ACCOUNT = "acc-path"
POLICY = CallPolicy(default_region="US", abandoned_after=timedelta(seconds=30))
REJECTED = "+12125550199"


class Store:
    def __init__(self, db: Any, queries: QueryLog) -> None:
        self.db = db
        self.queries = queries
        self.calls = CallRepository(db)
        self.rules = RulesRepository(db)
        self.pbx = SimulatedPbx(db, rejected_destinations=[REJECTED])
        facts = CallFacts(RecordingEventPublisher())
        self.transfer = lambda command: handlers.transfer_call(
            command, calls=self.calls, rules=self.rules, telephony=self.pbx, facts=facts, policy=POLICY
        )
        self.hangup = lambda command: handlers.hangup_call(
            command, calls=self.calls, telephony=self.pbx, facts=facts, policy=POLICY
        )

    async def start_call(self, call_id: str) -> None:
        event = CallStarted(account_id=ACCOUNT, call_id=call_id, persona_id="per-1", caller_number="+14155550100")
        assert await handlers.record_call_event(event, calls=self.calls)


@pytest.fixture
async def store(infra, isolation) -> AsyncIterator[Store]:
    queries = QueryLog()
    client = AsyncMongoClient(infra.mongo_uri, tz_aware=True, event_listeners=[queries])
    db = client[f"{isolation}_call_path"]
    await ensure_indexes(db, [*INDEXES, *PBX_INDEXES])
    yield Store(db, queries)
    await client.drop_database(db.name)
    await client.close()


def command(command_type: CommandType, call_id: str, args: Any) -> Command:
    context = CallContext(account_id=ACCOUNT, persona_id="per-1", call_id=call_id, region="US")
    return Command.build(command_type, context, args, timeout=timedelta(seconds=15), reply_to="tests")


def action(call_id: str, attempt: int) -> CallAction:
    return CallAction.new(
        ActionKind.transfer,
        account_id=ACCOUNT,
        call_id=call_id,
        attempt=attempt,
        command_id=f"cmd-{attempt}",
        deadline=utcnow() + timedelta(seconds=15),
        now=utcnow(),
    )


async def test_transfers_and_a_hang_up_touch_documents_by_id_alone(store) -> None:
    await store.rules.put(ACCOUNT, DestinationRules(forbidden_prefixes=["+1900"]))
    await store.start_call("call-t")
    await store.start_call("call-h")
    store.queries.recording = True
    with pytest.raises(Refused):
        await store.transfer(command(CommandType.transfer_call, "call-t", TransferCall(destination_number=REJECTED)))
    done = await store.transfer(
        command(CommandType.transfer_call, "call-t", TransferCall(destination_number="+14155550123"))
    )
    ended = await store.hangup(command(CommandType.hangup_call, "call-h", HangupCall()))
    store.queries.recording = False
    assert done.accepted and ended.ended and not ended.already_ended
    assert store.queries.seen
    for query in store.queries.seen:
        assert query.by_id, query
        assert query.filter["_id"] == ACCOUNT or query.filter["_id"].startswith(f"{ACCOUNT}/"), query
    record = await store.calls.get(ACCOUNT, "call-t")
    assert [(a.attempt, a.status) for a in record.actions] == [(1, ActionStatus.failed), (2, ActionStatus.succeeded)]


async def test_an_action_attempt_is_claimed_under_its_key_and_a_loser_reads_the_winner(store) -> None:
    first, rival = action("call-1", 1), action("call-1", 1)
    assert await store.calls.claim(first) is None
    winner = await store.calls.claim(rival)
    assert winner is not None and (winner.id, winner.command_id) == (first.id, first.command_id)
    stored = await store.db["call_actions"].find_one({"_id": f"{ACCOUNT}/call-1/1"})
    assert (stored["id"], stored["attempt"]) == (first.id, 1)
    second = action("call-1", 2)
    assert await store.calls.claim(second) is None
    await store.calls.finish(second, ActionStatus.succeeded)
    actions = (await store.calls.get(ACCOUNT, "call-1")).actions
    assert [(a.id, a.attempt, a.status) for a in actions] == [
        (first.id, 1, ActionStatus.pending),
        (second.id, 2, ActionStatus.succeeded),
    ]
    assert (await store.calls.get(ACCOUNT, "call-2")).actions == []


async def test_transfer_rules_live_under_the_account_id(store) -> None:
    assert await store.rules.get(ACCOUNT) == DestinationRules()
    rules = DestinationRules(allow_international=True)
    await store.rules.put(ACCOUNT, rules)
    await store.rules.put(ACCOUNT, rules)
    assert await store.rules.get(ACCOUNT) == rules
    assert await store.rules.get("another") == DestinationRules()
    assert await store.db["transfer_rules"].count_documents({}) == 1
    assert (await store.db["transfer_rules"].find_one({"_id": ACCOUNT}))["account_id"] == ACCOUNT
