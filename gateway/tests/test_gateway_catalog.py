"""Tool schemas and per-persona catalogs: derived from the contracts, stable, cached, invalidated by events."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from gateway import schemas
from gateway.catalog import GLOBAL_ENTRIES, Catalogs, PersonaNotFound, build_catalog
from gateway.model import Caller
from switchboard.contracts import OPERATIONS, CommandType, GlobalTool
from switchboard.contracts.persona import (
    ApiRequestTool,
    PersonaTools,
    PersonaUpdated,
    ToolVariable,
    TransferToUserTool,
    UserDndChanged,
    VariableType,
)
from switchboard.contracts.tools import GLOBAL_TOOL_PRESENTATION
from switchboard.messaging import RequestTimeout
from switchboard.messaging.memory import InMemoryBus


def walk(node: Any):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def test_every_global_tool_is_presented() -> None:
    assert set(GLOBAL_TOOL_PRESENTATION) == set(GlobalTool)
    assert [e.name for e in GLOBAL_ENTRIES] == [t.value for t in GlobalTool]


@pytest.mark.parametrize("entry", GLOBAL_ENTRIES, ids=lambda e: e.name)
def test_global_schemas_are_self_contained_and_plain(entry) -> None:
    for schema in (entry.tool.input_schema, entry.tool.output_schema):
        Draft202012Validator.check_schema(schema)
        text = json.dumps(schema)
        assert "$ref" not in text and "$defs" not in text
        for node in walk(schema):
            assert "title" not in node or isinstance(node.get("title"), dict)
            if node.get("type") == "object" and not node.get("properties"):
                assert "additionalProperties" not in node
    for node in walk(entry.tool.input_schema):
        assert "anyOf" not in node


def test_input_schemas_follow_the_contract_args() -> None:
    by_name = {e.name: e.tool.input_schema for e in GLOBAL_ENTRIES}
    assert by_name["transfer_call"]["required"] == ["destination_number"]
    assert set(by_name["transfer_call"]["properties"]) == {"destination_number"}
    assert by_name["lookup_contact"]["required"] == ["phone_number"]
    assert by_name["check_user_availability"]["required"] == ["user_id"]
    lead = by_name["create_lead"]
    assert lead["required"] == ["name", "intent"]
    assert lead["properties"]["classification"]["enum"] == ["lead", "customer", "spam", "other"]
    assert lead["properties"]["summary"] == {
        "type": "string",
        "maxLength": 4000,
        "description": "A short summary of the conversation so far.",
    }
    assert by_name["is_office_open"] == by_name["hangup_call"] == {"type": "object", "properties": {}}


def test_output_schemas_accept_what_the_services_return() -> None:
    from switchboard.contracts.persona import OFFICE_STATUS_TEXT, OfficeStatus, OfficeStatusKind

    status = OfficeStatus(
        status=OfficeStatusKind.closed,
        text=OFFICE_STATUS_TEXT[OfficeStatusKind.closed],
        local_time=datetime(2026, 1, 1, 20, 0, tzinfo=UTC),
        timezone="UTC",
        next_opening=datetime(2026, 1, 2, 8, 0, tzinfo=UTC),
    )
    entry = next(e for e in GLOBAL_ENTRIES if e.name == "is_office_open")
    Draft202012Validator(entry.tool.output_schema).validate(status.model_dump(mode="json"))
    assert OPERATIONS[CommandType.is_office_open].result is OfficeStatus


def test_api_request_variables_become_the_input_schema() -> None:
    schema = schemas.variables_schema(
        [
            ToolVariable(name="city", type=VariableType.text, description="The city."),
            ToolVariable(name="nights", type=VariableType.number),
            ToolVariable(
                name="room", type=VariableType.dropdown, options=["single", "double", "single"], required=False
            ),
            ToolVariable(name="note", type=VariableType.dropdown, options=[], required=False),
        ]
    )
    assert schema["properties"]["city"] == {"type": "string", "maxLength": 1000, "description": "The city."}
    assert schema["properties"]["nights"] == {"type": "number"}
    assert schema["properties"]["room"] == {"type": "string", "enum": ["single", "double"]}
    assert schema["properties"]["note"]["type"] == "string"
    assert schema["required"] == ["city", "nights"]
    assert schemas.variables_schema([]) == {"type": "object", "properties": {}}


def test_argument_problems_name_each_field() -> None:
    check = schemas.validator(schemas.variables_schema([ToolVariable(name="n", type=VariableType.number)]))
    assert schemas.argument_problems(check, {"n": 2.5}) == []
    assert schemas.argument_problems(check, {"n": True}) == ["Argument 'n' must be of type number."]
    assert schemas.argument_problems(check, {"m": 1}) == [
        "Missing required argument 'n'.",
        "Unknown argument 'm'; this tool takes: n.",
    ]


def persona(*custom) -> PersonaTools:
    return PersonaTools(
        persona_id="p1",
        persona_name="P",
        account_country="GB",
        account_timezone="Europe/London",
        custom_tools=list(custom),
    )


def test_catalog_order_is_globals_then_custom_tools_by_name_and_names_are_unique() -> None:
    catalog = build_catalog(
        persona(
            TransferToUserTool(name="zeta", description="Z."),
            ApiRequestTool(name="alpha", description="A."),
            TransferToUserTool(name="hangup_call", description="Shadows a global tool."),
            TransferToUserTool(name="alpha", description="A second alpha."),
        )
    )
    assert [t.name for t in catalog.tools] == [*(t.value for t in GlobalTool), "alpha", "zeta"]
    assert catalog.get("alpha").tool.description == "A."
    assert catalog.get("hangup_call").metric_name == "hangup_call"
    assert catalog.get("zeta").metric_name == "custom.transfer_to_user"
    assert catalog.region == "GB"
    assert build_catalog(persona()).tools == build_catalog(persona()).tools


def test_custom_tools_without_a_description_get_one() -> None:
    catalog = build_catalog(persona(TransferToUserTool(name="to_bob", description="  ")))
    assert catalog.get("to_bob").tool.description.startswith("Transfer the caller")


class CountingRequester:
    def __init__(self, delay: float = 0.0, fail: Exception | None = None) -> None:
        self.calls = 0
        self.delay = delay
        self.fail = fail

    async def request(self, type, context, args, *, timeout):
        assert type is CommandType.list_tools
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fail:
            raise self.fail
        return persona()


CALLER = Caller(key_id="k", account_id="acc", persona_id="p1", call_id="c1")


async def test_catalogs_are_cached_and_shared_by_concurrent_requests() -> None:
    requester = CountingRequester(delay=0.05)
    catalogs = Catalogs(requester, ttl=60)
    results = await asyncio.gather(*(catalogs.get(CALLER, timeout=2) for _ in range(10)))
    await catalogs.get(CALLER, timeout=2)
    assert requester.calls == 1 and all(r is results[0] for r in results)


async def test_persona_events_invalidate_the_cache() -> None:
    requester = CountingRequester()
    catalogs = Catalogs(requester, ttl=60)
    other = CALLER.model_copy(update={"persona_id": "p2"})
    await catalogs.get(CALLER, timeout=2)
    await catalogs.get(other, timeout=2)
    now = datetime.now(UTC)
    await catalogs.on_event(PersonaUpdated(account_id="acc", persona_id="p1", updated_at=now))
    await catalogs.get(CALLER, timeout=2)
    await catalogs.get(other, timeout=2)
    assert requester.calls == 3
    await catalogs.on_event(PersonaUpdated(account_id="someone-else", updated_at=now))
    await catalogs.get(CALLER, timeout=2)
    assert requester.calls == 3
    await catalogs.on_event(UserDndChanged(account_id="acc", user_id="u1", dnd=True, changed_at=now))
    await catalogs.get(CALLER, timeout=2)
    await catalogs.get(other, timeout=2)
    assert requester.calls == 5


async def test_an_invalidation_during_a_fetch_keeps_its_result_out_of_the_cache() -> None:
    requester = CountingRequester(delay=0.05)
    catalogs = Catalogs(requester, ttl=60)
    fetch = asyncio.create_task(catalogs.get(CALLER, timeout=2))
    await asyncio.sleep(0.01)
    catalogs.invalidate("acc")
    await fetch
    await catalogs.get(CALLER, timeout=2)
    assert requester.calls == 2


async def test_unknown_persona_and_timeouts_are_not_cached() -> None:
    bus = InMemoryBus()
    catalogs = Catalogs(bus, ttl=60)
    with pytest.raises(RequestTimeout):
        await catalogs.get(CALLER, timeout=0.05)
    from switchboard.contracts import ErrorCode, ErrorInfo
    from switchboard.messaging import RequestFailed

    missing = CountingRequester(fail=RequestFailed(ErrorInfo(code=ErrorCode.not_found, message="No persona p1.")))
    catalogs = Catalogs(missing, ttl=60)
    for _ in range(2):
        with pytest.raises(PersonaNotFound, match="No persona p1."):
            await catalogs.get(CALLER, timeout=1)
    assert missing.calls == 2


async def test_a_catalog_near_its_end_is_refetched_in_the_background() -> None:
    clock = [1000.0]
    requester = CountingRequester(delay=0.05)
    catalogs = Catalogs(requester, ttl=10, clock=lambda: clock[0])
    first = await catalogs.get(CALLER, timeout=2)
    clock[0] += 5  # half its life: served from the cache, nothing fetched
    assert await catalogs.get(CALLER, timeout=2) is first and requester.calls == 1
    clock[0] += 4  # its last fifth: served at once, and fetched again behind the call
    assert await catalogs.get(CALLER, timeout=2) is first
    await asyncio.sleep(0.01)
    assert requester.calls == 2
    assert await catalogs.get(CALLER, timeout=2) is first  # the refetch under way is not started again
    await asyncio.sleep(0.01)
    assert requester.calls == 2
    await asyncio.sleep(0.1)
    clock[0] += 2  # past the first catalog's end: the refetched one is served, without waiting
    refreshed = await catalogs.get(CALLER, timeout=2)
    assert refreshed is not first and requester.calls == 2


def test_advertised_input_schemas_carry_no_boolean_additional_properties_yet_unknown_arguments_are_refused() -> None:
    """google-genai's MCP adapter fails on a boolean `additionalProperties`; the gateway still refuses."""
    variables = [ToolVariable(name="order_id", type=VariableType.text)]
    catalog = build_catalog(
        persona(
            ApiRequestTool(name="check_order", description="Order status.", variables=variables),
            TransferToUserTool(name="to_bob", description="Bob."),
        )
    )
    for entry in catalog.entries.values():
        for node in walk(entry.tool.input_schema):
            assert not isinstance(node.get("additionalProperties"), bool), entry.name
    for name, arguments in [("check_order", {"order_id": "1", "x": 1}), ("create_lead", {"name": "A", "intent": "B", "x": 1})]:
        problems = schemas.argument_problems(catalog.get(name).validator, arguments)
        assert problems == [f"Unknown argument 'x'; this tool takes: {', '.join(catalog.get(name).tool.input_schema['properties'])}."]
