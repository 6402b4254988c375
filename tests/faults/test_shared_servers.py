"""Faults on the shared servers: a replica killed or paused, the database link slowed and cut, and a
command id replayed. The servers themselves keep running (the restarts are in test_server_restarts)."""

from __future__ import annotations

import asyncio
import signal
import time
from uuid import uuid4

import httpx
import pytest

from switchboard.contracts import CallContext, Command, CommandType, Contract, Reply
from switchboard.contracts.call_control import HangupCall, TransferCall
from switchboard.contracts.leads import CreateLead
from switchboard.messaging.requester import KafkaRequester, build_command
from switchboard.settings import SwitchboardSettings
from switchboard.testing.proxy import TcpProxy
from tests.faults.harness import SESSION_TIMEOUT_MS, FaultSystem
from tests.faults.load import SIDE_EFFECTS, TRANSFER_DESTINATION
from tests.faults.scenario import under_load

pytestmark = [pytest.mark.faults, pytest.mark.timeout(360)]


async def test_a_killed_replica_loses_nothing_and_its_partitions_move(shared_system: FaultSystem) -> None:
    victim = shared_system.replica("leads", 1)

    async def kill_one_replica() -> float:
        shared_system.kill(victim)
        # The fault lasts until the group takes the dead replica's partitions from it: its commands
        # wait for that, past their deadlines.
        await asyncio.sleep(2 * SESSION_TIMEOUT_MS / 1000)
        return time.monotonic()

    await under_load(shared_system, "kill-leads-replica", kill_one_replica, hits=("create_lead",))
    await shared_system.restart(victim)


async def test_a_replica_paused_past_its_session_timeout_does_nothing_late(shared_system: FaultSystem) -> None:
    victim = shared_system.replica("call-control", 1)

    async def pause_one_replica() -> float:
        shared_system.system.signal(victim, signal.SIGSTOP)
        try:
            await asyncio.sleep(2 * SESSION_TIMEOUT_MS / 1000)
        finally:
            shared_system.system.signal(victim, signal.SIGCONT)
        return time.monotonic()

    await under_load(
        shared_system, "pause-call-control-replica", pause_one_replica, hits=("transfer_call", "hangup_call")
    )


async def test_a_slow_then_cut_database_link_fails_calls_cleanly(
    shared_system: FaultSystem, database_proxy: TcpProxy
) -> None:
    noted: dict[str, float] = {}

    async def slow_then_cut() -> float:
        severed, refused = database_proxy.severed, database_proxy.refused
        try:
            database_proxy.delay(0.3)
            await asyncio.sleep(5)
            database_proxy.cut()
            await asyncio.sleep(4)
        finally:
            database_proxy.heal()
        noted["connections_cut"] = database_proxy.severed - severed
        noted["connections_refused"] = database_proxy.refused - refused
        # The services held connections through the proxy when it cut them, and opened new ones it refused.
        assert noted["connections_cut"] > 0 and noted["connections_refused"] > 0, noted
        return time.monotonic()

    await under_load(shared_system, "database-link-slow-then-cut", slow_then_cut, hits=SIDE_EFFECTS, noted=noted)


@pytest.fixture
async def requester(shared_system: FaultSystem):
    env = shared_system.env
    settings = SwitchboardSettings(
        kafka_bootstrap=env["SWITCHBOARD_KAFKA_BOOTSTRAP"],
        mongo_uri=env["SWITCHBOARD_MONGO_URI"],
        topic_prefix=env["SWITCHBOARD_TOPIC_PREFIX"],
    )
    requester = KafkaRequester(settings)
    await requester.start()
    yield requester
    await requester.stop()


async def test_a_command_id_replayed_three_times_has_one_effect(
    shared_system: FaultSystem, requester: KafkaRequester
) -> None:
    demo = shared_system.demo
    lead_call, transfer_call, hangup_call = (f"replay-{uuid4().hex[:8]}" for _ in range(3))
    for call_id in (transfer_call, hangup_call):
        await _place_call(shared_system, call_id)

    def command(call_id: str, type: CommandType, args: Contract) -> Command:
        context = CallContext(
            account_id=demo.account_id, persona_id=demo.persona_id, call_id=call_id, caller_id_number="+14155550177"
        )
        return build_command(type, context, args, timeout=15, reply_to=requester.reply_topic)

    lead = command(lead_call, CommandType.create_lead, CreateLead(name="Replayed", intent="Replays its command"))
    transfer = command(transfer_call, CommandType.transfer_call, TransferCall(destination_number=TRANSFER_DESTINATION))
    hangup = command(hangup_call, CommandType.hangup_call, HangupCall())

    for replayed in (lead, transfer, hangup):
        _same([await requester.send(replayed) for _ in range(3)])

    leads_db, calls_db = shared_system.db("leads"), shared_system.db("call-control")
    assert await leads_db["cases"].count_documents({"command_id": lead.command_id}) == 1
    for call_id in (transfer_call, hangup_call):
        assert await calls_db["pbx_actions"].count_documents({"call_id": call_id}) == 1
        assert await calls_db["call_actions"].count_documents({"call_id": call_id}) == 1


def _same(replies: list[Reply]) -> None:
    assert replies[0].error is None, replies[0].error
    assert all(reply == replies[0] for reply in replies), replies


async def _place_call(target: FaultSystem, call_id: str) -> None:
    body = {"account_id": target.demo.account_id, "call_id": call_id, "persona_id": target.demo.persona_id}
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(target.pbx_url, json=body, headers=target.admin_headers)
    assert answer.status_code == 201, answer.text
