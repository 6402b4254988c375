"""API Request templates: what is refused when a tool is saved, and how values are filled in."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from switchboard.contracts import CallContext
from switchboard.contracts.persona import ToolVariable, VariableType
from switchboard.messaging.errors import InvalidArgument

from persona_svc.model import ApiRequestDefinition, ApiRequestFields
from persona_svc.templates import bind_variables, render

CONTEXT = CallContext(account_id="acc-1", persona_id="per-1", call_id="call-1", caller_id_number="+14155550123")

VARIABLES = [
    {"name": "order_id", "type": "text", "description": "The order number."},
    {"name": "quantity", "type": "number", "required": False},
    {"name": "size", "type": "dropdown", "options": ["S", "M", "L"], "required": False},
    {"name": "note", "type": "text", "required": False},
]


def tool(**overrides) -> ApiRequestDefinition:
    fields = {
        "name": "order_status",
        "description": "Look up an order.",
        "variables": VARIABLES,
        "url": "https://api.example.com/orders/{{order_id}}?caller={{caller_id_number}}",
    }
    return ApiRequestDefinition.model_validate({**fields, **overrides})


def run(definition: ApiRequestDefinition, **values):
    return render(definition, bind_variables(definition.variables, values), CONTEXT)


@pytest.mark.parametrize(
    "url",
    [
        "https://{{host}}/x",
        "https://api.example.com:{{port}}/x",
        "{{scheme}}://api.example.com/x",
        "https://api.{{domain}}.com/x",
        "https://user:secret@api.example.com/x",
        "ftp://api.example.com/x",
        "file:///etc/passwd",
        "api.example.com/x",
        "https://api.example.com/a b",
        "https:///nohost",
    ],
)
def test_urls_that_could_move_the_request_are_refused_when_saved(url: str) -> None:
    with pytest.raises(ValidationError) as error:
        tool(url=url)
    assert error.value.errors()[0]["loc"] == ("url",)


@pytest.mark.parametrize(
    "value",
    ["@evil.example/x", "../../admin", "x?admin=1#frag", "//evil.example", "x/../../y", "%2e%2e", "\\\\evil.example"],
)
def test_values_are_path_data_and_never_change_the_host(value: str) -> None:
    request = run(tool(), order_id=value)
    assert request.url.host == "api.example.com" and request.url.scheme == "https" and request.url.port is None
    assert request.url.raw_path.startswith(b"/orders/")
    assert "/" not in request.url.raw_path.decode()[len("/orders/") :].split("?")[0]
    assert request.url.params["caller"] == "+14155550123"


def test_a_value_that_looks_like_a_placeholder_stays_text() -> None:
    request = run(tool(body='{"id": "{{order_id}}"}', method="POST"), order_id="{{caller_id_number}}")
    assert json.loads(request.body) == {"id": "{{caller_id_number}}"}


def test_json_body_values_are_escaped_and_numbers_are_bare() -> None:
    definition = tool(
        method="POST",
        body='{"id": "{{order_id}}", "qty": {{quantity}}, "size": "{{size}}", "note": "{{note}}", "call": "{{call_id}}"}',
    )
    nasty = 'a", "admin": true, "x": "\\ \n \u2028 ü'
    request = run(definition, order_id=nasty, quantity=3, size="M")
    assert json.loads(request.body) == {"id": nasty, "qty": 3, "size": "M", "note": "", "call": "call-1"}
    assert ("Content-Type", "application/json") in request.headers


def test_a_left_out_optional_number_is_null_in_json() -> None:
    request = run(tool(method="POST", body='{"qty": {{quantity}}}'), order_id="1")
    assert json.loads(request.body) == {"qty": None}


def test_json_body_with_an_unquoted_text_placeholder_is_refused_when_saved() -> None:
    with pytest.raises(ValidationError, match="not valid JSON"):
        tool(method="POST", body='{"id": {{order_id}}}')


def test_form_body_values_are_url_encoded() -> None:
    request = run(
        tool(method="POST", body="id={{order_id}}&n={{quantity}}", body_format="form"), order_id="a&b=c d", quantity=2.5
    )
    assert request.body == b"id=a%26b%3Dc+d&n=2.5"
    assert ("Content-Type", "application/x-www-form-urlencoded") in request.headers


def test_header_values_are_filled_and_line_breaks_refused() -> None:
    definition = tool(
        headers=[
            {"name": "X-Order", "value": "{{order_id}}"},
            {"name": "Authorization", "value": "Bearer k", "secret": True},
        ]
    )
    assert run(definition, order_id="42").headers[:2] == [("X-Order", "42"), ("Authorization", "Bearer k")]
    with pytest.raises(InvalidArgument, match="X-Order"):
        run(definition, order_id="42\r\nX-Admin: 1")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"name": "Host", "value": "internal"}, "set by the HTTP client"),
        ({"name": "Transfer-Encoding", "value": "chunked"}, "set by the HTTP client"),
        ({"name": "X-A", "value": "a\r\nb"}, "one line"),
        ({"name": "Bad Name", "value": "x"}, "pattern"),
        ({"name": "Authorization", "value": "Bearer {{order_id}}", "secret": True}, "secret header"),
    ],
)
def test_bad_headers_are_refused_when_saved(header: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        tool(headers=[header])


def test_unknown_placeholders_and_bad_variables_are_refused_when_saved() -> None:
    with pytest.raises(ValidationError, match="neither a variable"):
        tool(url="https://api.example.com/{{nope}}")
    with pytest.raises(ValidationError, match="call context"):
        tool(variables=[{"name": "call_id", "type": "text"}], url="https://api.example.com/x")
    with pytest.raises(ValidationError, match="at least one option"):
        tool(variables=[{"name": "size", "type": "dropdown"}], url="https://api.example.com/x")
    with pytest.raises(ValidationError, match="defined twice"):
        tool(
            variables=[{"name": "a", "type": "text"}, {"name": "a", "type": "number"}], url="https://api.example.com/x"
        )


def test_a_stored_tool_needs_every_header_value_but_the_admin_view_hides_secrets() -> None:
    with pytest.raises(ValidationError, match="needs a value"):
        tool(headers=[{"name": "Authorization", "secret": True}])
    definition = tool(
        headers=[{"name": "Authorization", "value": "Bearer k", "secret": True}, {"name": "X-A", "value": "1"}]
    )
    view = definition.without_secrets()
    assert isinstance(view, ApiRequestFields) and not isinstance(view, ApiRequestDefinition)
    assert [(h.name, h.value) for h in view.headers] == [("Authorization", None), ("X-A", "1")]


VARS = [ToolVariable.model_validate(v) for v in VARIABLES]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({}, "'order_id' is required (The order number.)"),
        ({"order_id": "1", "colour": "red"}, "no variable 'colour'; it takes: order_id, quantity, size, note"),
        ({"order_id": "1", "size": "XL"}, "'size' must be one of: S, M, L"),
        ({"order_id": "1", "quantity": "many"}, "'quantity' must be a number"),
        ({"order_id": "1", "quantity": float("nan")}, "'quantity' must be a number"),
        ({"order_id": "x" * 1001}, "longer than 1000"),
        ({"order_id": "a\x00b"}, "control characters"),
    ],
)
def test_variables_are_checked_against_their_definitions(given: dict, message: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        bind_variables(VARS, given)
    assert message in error.value.message


def test_variables_are_typed_and_optional_ones_filled() -> None:
    assert bind_variables(VARS, {"order_id": 17, "quantity": "3"}) == {
        "order_id": "17",
        "quantity": 3,
        "size": "",
        "note": "",
    }
    assert bind_variables(VARS, {"order_id": "A", "quantity": 2.5, "size": "L"})["quantity"] == 2.5
    assert ToolVariable(name="n", type=VariableType.number).required
