"""Scale-out: two gateway replicas and two leads-svc replicas of one system, under interleaved calls.

The replicas share the topic prefix, the databases and (for leads) the consumer group; each has its
own instance id and port, so each gateway reads its own reply topic. Every tool call must get
exactly one correct reply from the gateway it asked, the leads database must hold exactly one lead
and one case per call, and both leads replicas must have handled some of the commands (told apart
by `service.instance.id` in the span file every process appends to).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import demo_call
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from switchboard.testing.system import GATEWAY, LEADS

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

LEAD_CALLS = 100
AVAILABILITY_CHECKS = 20
CONCURRENCY = 16
DEADLINE = 90.0


@dataclass
class Scaled:
    e2e: Any
    spans_file: Path

    @property
    def gateway_urls(self) -> list[str]:
        return [f"{self.e2e.system.get(GATEWAY.name, replica).base_url}/ucp/v2/mcp" for replica in (0, 1)]

    async def call(self, replica: int, call_id: str, tool: str, arguments: dict[str, Any], caller: str | None) -> Any:
        headers = self.e2e.demo.headers(call_id, caller_id_number=caller)
        async with demo_call.mcp_client(self.gateway_urls[replica], headers) as client:
            return await client.call_tool(tool, arguments)

    def spans(self) -> list[dict[str, Any]]:
        lines = self.spans_file.read_text().splitlines() if self.spans_file.exists() else []
        return [json.loads(line) for line in lines if line.endswith("}")]


@pytest.fixture(scope="module")
async def scaled(start_system, tmp_path_factory) -> AsyncIterator[Scaled]:
    spans_file = tmp_path_factory.mktemp("scale-out") / "spans.jsonl"
    # Who answers is under test here, not how fast: a loaded 2-core machine misses the 4 s default deadline.
    unhurried = {
        "SWITCHBOARD_GATEWAY_RATE_LIMIT_PER_SECOND": "10000",
        "SWITCHBOARD_GATEWAY_RATE_LIMIT_BURST": "10000",
        "SWITCHBOARD_GATEWAY_TOOL_TIMEOUT": "30",
    }
    async with start_system(extra_env={"SWITCHBOARD_OTEL_FILE": str(spans_file), **unhurried}) as e2e:
        system = e2e.system
        system.start(GATEWAY, replica=1, extra_env={"SWITCHBOARD_GATEWAY_INSTANCE_ID": f"gw-{e2e.prefix}-1"})
        system.start(LEADS, replica=1, extra_env={"SWITCHBOARD_LEADS_INSTANCE_ID": f"leads-{e2e.prefix}-1"})
        await system.wait_ready(timeout=DEADLINE)
        yield Scaled(e2e, spans_file)


def caller_number(i: int) -> str:
    return f"+1415555{i:04d}"


async def test_replicas_share_the_work_and_every_call_gets_exactly_one_correct_reply(scaled: Scaled) -> None:
    demo = scaled.e2e.demo
    limit = asyncio.Semaphore(CONCURRENCY)

    async def create_lead(i: int) -> tuple[str, str, Any]:
        call_id = f"lead-{i:03d}-{uuid4().hex[:8]}"
        async with limit:
            result = await scaled.call(
                i % 2, call_id, "create_lead", {"name": f"Caller {i}", "intent": "wants a quote"}, caller_number(i)
            )
        return call_id, caller_number(i), result

    async def check(i: int) -> tuple[str, Any]:
        user = demo.available_user if i % 2 else demo.dnd_user
        call_id = f"check-{i:03d}-{uuid4().hex[:8]}"
        async with limit:
            result = await scaled.call(i % 2, call_id, "check_user_availability", {"user_id": user}, None)
        return user, result

    lead_tasks, check_tasks = [], []
    for i in range(LEAD_CALLS):  # tasks take the semaphore in creation order: checks interleave with leads
        if i % (LEAD_CALLS // AVAILABILITY_CHECKS) == 0:
            check_tasks.append(asyncio.create_task(check(len(check_tasks))))
        lead_tasks.append(asyncio.create_task(create_lead(i)))
    leads = await asyncio.gather(*lead_tasks)
    checks = await asyncio.gather(*check_tasks)

    for user, result in checks:
        assert not result.is_error, result.content
        assert result.structured_content["user_id"] == user
        assert result.structured_content["available"] is (user == demo.available_user)
    replied: dict[str, dict[str, Any]] = {}
    for call_id, number, result in leads:
        assert not result.is_error, result.content
        assert result.structured_content["lead_existed"] is False, (call_id, result.structured_content)
        replied[call_id] = result.structured_content | {"phone": number}

    stored = await all_leads(scaled.e2e)
    assert len(stored) == LEAD_CALLS
    by_call = {lead["call_id"]: lead for lead in stored}
    assert set(by_call) == set(replied)
    for call_id, reply in replied.items():
        lead = by_call[call_id]
        assert (lead["id"], lead["phone_e164"], lead["case_count"]) == (reply["lead_id"], reply["phone"], 1)

    await eventually_two_members(scaled.e2e, "leads")
    handled = await eventually_handled(scaled, set(replied))
    assert len(handled) == 2, f"one leads replica handled every command: {dict(handled)}"
    assert all(count > 0 for count in handled.values())
    gateways = Counter(s["instance"] for s in scaled.spans() if s["name"] == "tool create_lead")
    assert sorted(gateways.values()) == [LEAD_CALLS // 2, LEAD_CALLS // 2], dict(gateways)


async def group_members(e2e: Any, service: str) -> int:
    """Members of the service's command consumer group (`<prefix><service>.workers`, CommandConsumer's)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=e2e.env["SWITCHBOARD_KAFKA_BOOTSTRAP"], client_id="scale-out-test")
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([f"{e2e.prefix}.{service}.workers"])
    finally:
        await admin.close()
    (group,) = response.to_object()["groups"]
    return len(group["members"])


async def eventually_two_members(e2e: Any, service: str) -> None:
    """Both replicas are in one consumer group (polled: a rebalance under load may be under way)."""
    deadline = time.monotonic() + DEADLINE
    while (members := await group_members(e2e, service)) != 2:
        assert time.monotonic() < deadline, f"the {service} group has {members} members, not 2"
        await asyncio.sleep(0.5)


async def all_leads(e2e: Any) -> list[dict[str, Any]]:
    """Every lead of the demo account, through leads-svc's read API (all pages)."""
    leads: list[dict[str, Any]] = []
    cursor = ""
    while True:
        path = f"/v1/accounts/{e2e.demo.account_id}/leads?limit=200" + (f"&cursor={cursor}" if cursor else "")
        response = await e2e.admin("GET", "leads", path)
        assert response.status_code == 200, response.text
        page = response.json()
        leads += page["items"]
        if not page["next_cursor"]:
            return leads
        cursor = page["next_cursor"]


async def eventually_handled(scaled: Scaled, call_ids: set[str]) -> Counter[str]:
    """create_lead commands handled per leads replica, once every call's command shows in the span file."""
    deadline = time.monotonic() + DEADLINE
    while True:
        consumed = [
            s
            for s in scaled.spans()
            if s["service"] == "switchboard-leads"
            and s["kind"] == "CONSUMER"
            and s["attributes"].get("switchboard.call_id") in call_ids
            and s["attributes"].get("switchboard.outcome") == "handled"
        ]
        if {s["attributes"]["switchboard.call_id"] for s in consumed} == call_ids:
            return Counter(s["instance"] for s in consumed)
        assert time.monotonic() < deadline, f"{len(call_ids) - len(consumed)} commands not seen handled"
        await asyncio.sleep(0.2)
