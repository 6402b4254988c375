from datetime import timedelta

import pytest
from pydantic import ValidationError

from switchboard.contracts import (
    GLOBAL_TOOL_COMMANDS,
    OPERATIONS,
    CallContext,
    Command,
    CommandType,
    Contract,
    GlobalTool,
    Reply,
    Topic,
)
from switchboard.contracts.leads import CreateLead
from switchboard.contracts.persona import OFFICE_STATUS_TEXT, OfficeStatusKind

CONTEXT = CallContext(account_id="acc-1", persona_id="per-1", call_id="call-1", caller_id_number="+14155550123")


def test_every_command_type_has_one_operation_with_contract_models() -> None:
    assert set(OPERATIONS) == set(CommandType)
    for op in OPERATIONS.values():
        assert issubclass(op.args, Contract) and issubclass(op.result, Contract)
        assert op.topic.value.endswith(".commands")
        assert op.type.value.split(".")[0].replace("_", "-") == op.topic.value.split(".")[0]


def test_every_global_tool_routes_to_a_command() -> None:
    assert set(GLOBAL_TOOL_COMMANDS) == set(GlobalTool)


def test_topic_names_are_unique_and_dead_letters_derive_from_them() -> None:
    assert len({t.value for t in Topic}) == len(Topic)
    assert Topic.leads_commands.dead_letter == "leads.commands.dlq"


def test_office_status_texts_are_the_four_sentences_of_the_contract() -> None:
    assert set(OFFICE_STATUS_TEXT.values()) == {
        "Office is currently open",
        "Office is currently closed",
        "Office is closed today",
        "Office is open 24 hours today",
    }
    assert set(OFFICE_STATUS_TEXT) == set(OfficeStatusKind)


def test_command_round_trips_through_json_with_typed_args() -> None:
    command = Command[CreateLead].build(
        CommandType.create_lead, CONTEXT, CreateLead(name="Ann", intent="pricing"), timeout=timedelta(seconds=2), reply_to="r"
    )
    decoded = Command[CreateLead].model_validate_json(command.model_dump_json())
    assert decoded == command
    assert decoded.args.classification == "lead"
    assert decoded.context == CONTEXT
    assert 1.5 < decoded.remaining() <= 2


def test_contracts_refuse_unknown_fields_and_are_frozen() -> None:
    with pytest.raises(ValidationError):
        CreateLead(name="Ann", intent="x", is_admin=True)  # type: ignore[call-arg]
    lead = CreateLead(name="Ann", intent="x")
    with pytest.raises(ValidationError):
        lead.name = "Bob"  # type: ignore[misc]


@pytest.mark.parametrize("bad", ["", "a b", "x" * 129, "$where", "../etc"])
def test_context_ids_are_plain_identifiers(bad: str) -> None:
    with pytest.raises(ValidationError):
        CallContext(account_id=bad, persona_id="p", call_id="c")


def test_reply_carries_either_result_or_error() -> None:
    command = Command[CreateLead].build(
        CommandType.create_lead, CONTEXT, CreateLead(name="Ann", intent="x"), timeout=timedelta(seconds=1), reply_to="r"
    )
    failure = Reply.failure(command, "not_found", "No such thing.")
    assert failure.correlation_id == command.command_id and failure.result is None
    assert Reply.model_validate_json(failure.model_dump_json()) == failure
