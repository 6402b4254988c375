"""JSON Schemas for tools, derived from the contract models and written for what MCP clients handle.

Every schema is self-contained (references inlined, no `$defs`), without pydantic's titles. Input
schemas state optional fields as plain types (a missing or null optional argument is left out
before validation).

A tool's input schema exists twice: the strict one the gateway validates arguments with (unknown
arguments refused by `additionalProperties: false`), and the `portable` one it advertises, with no
boolean `additionalProperties` anywhere: google-genai's MCP adapter fails on one, and OpenAI's
strict function schemas are made by the client adding its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaViolation
from pydantic import BaseModel

from switchboard.contracts.persona import ToolVariable, VariableType

JsonSchema = dict[str, Any]

_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_VALUES = ("items", "not", "additionalProperties", "contains")


def _inline(node: Any, defs: dict[str, Any], *, for_input: bool) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs, for_input=for_input) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return _inline({**target, **siblings}, defs, for_input=for_input)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "$defs"):
            continue
        if key == "properties":
            out[key] = {name: _inline(schema, defs, for_input=for_input) for name, schema in value.items()}
        elif key in _SCHEMA_LISTS or key in _SCHEMA_VALUES:
            out[key] = _inline(value, defs, for_input=for_input)
        else:
            out[key] = value
    if for_input:
        out = _drop_null_branch(out)
    if out.get("type") == "object" and not out.get("properties") and out.get("additionalProperties") is False:
        del out["additionalProperties"]
    return out


def _drop_null_branch(schema: dict[str, Any]) -> dict[str, Any]:
    """`anyOf: [X, null]` with default null becomes X: the argument is optional, not nullable."""
    branches = schema.get("anyOf")
    if not isinstance(branches, list):
        return schema
    rest = [b for b in branches if b != {"type": "null"}]
    if len(rest) != 1 or len(rest) == len(branches):
        return schema
    merged = {k: v for k, v in schema.items() if k != "anyOf"}
    if merged.get("default", ...) is None:
        del merged["default"]
    return {**rest[0], **merged}


def clean(schema: JsonSchema, *, for_input: bool) -> JsonSchema:
    return _inline(schema, schema.get("$defs", {}), for_input=for_input)


def input_schema(model: type[BaseModel], *, exclude: Iterable[str] = ()) -> JsonSchema:
    schema = clean(model.model_json_schema(mode="validation"), for_input=True)
    schema.setdefault("properties", {})
    for name in exclude:
        schema["properties"].pop(name, None)
    required = [name for name in schema.get("required", []) if name in schema["properties"]]
    if required:
        schema["required"] = required
    else:
        schema.pop("required", None)
    if not schema["properties"]:
        schema.pop("additionalProperties", None)
    return schema


def portable(schema: JsonSchema) -> JsonSchema:
    """The schema as advertised to clients: the same, without boolean `additionalProperties`."""
    return _without_closed_objects(schema)


def _without_closed_objects(node: Any) -> Any:
    if isinstance(node, list):
        return [_without_closed_objects(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        key: _without_closed_objects(value)
        for key, value in node.items()
        if not (key == "additionalProperties" and isinstance(value, bool))
    }


REPEAT_FLAG: JsonSchema = {
    "type": "boolean",
    "description": "True when this is the result of the same call made moments ago, which was not carried out again.",
}


def with_repeat_flag(schema: JsonSchema) -> JsonSchema:
    """An output schema that also allows the `repeat` mark of a repeated side-effecting call."""
    return {**schema, "properties": {**schema.get("properties", {}), "repeat": REPEAT_FLAG}}


def output_schema(model: type[BaseModel]) -> JsonSchema:
    return clean(model.model_json_schema(mode="serialization"), for_input=False)


EMPTY_INPUT: JsonSchema = {"type": "object", "properties": {}}


def variables_schema(variables: Iterable[ToolVariable]) -> JsonSchema:
    """The input schema of an API Request tool: text -> string, number -> number, dropdown -> enum."""
    properties: dict[str, JsonSchema] = {}
    required: list[str] = []
    for variable in variables:
        if variable.type is VariableType.number:
            prop: JsonSchema = {"type": "number"}
        elif variable.type is VariableType.dropdown and variable.options:
            prop = {"type": "string", "enum": list(dict.fromkeys(variable.options))}
        else:
            prop = {"type": "string", "maxLength": 1000}
        if variable.description:
            prop["description"] = variable.description
        properties[variable.name] = prop
        if variable.required:
            required.append(variable.name)
    if not properties:
        return dict(EMPTY_INPUT)
    schema: JsonSchema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def validator(schema: JsonSchema) -> Draft202012Validator:
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def argument_problems(check: Draft202012Validator, arguments: dict[str, Any]) -> list[str]:
    """One sentence per problem, naming the argument, in a stable order; empty when the arguments fit."""
    order = {"required": 0, "additionalProperties": 1}
    errors = sorted(
        check.iter_errors(arguments),
        key=lambda e: (order.get(str(e.validator), 2), [str(p) for p in e.absolute_path], str(e.validator)),
    )
    return [_sentence(error, check.schema) for error in errors]


def _sentence(error: SchemaViolation, schema: JsonSchema) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    kind = error.validator
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"Missing required argument '{missing}'."
    if kind == "additionalProperties":
        known = ", ".join(schema.get("properties", {})) or "no arguments"
        extra = (
            sorted(set(error.instance) - set(schema.get("properties", {}))) if isinstance(error.instance, dict) else []
        )
        names = ", ".join(f"'{name}'" for name in extra) or "given"
        return f"Unknown argument {names}; this tool takes: {known}."
    subject = f"Argument '{path}'" if path else "The arguments"
    if kind == "type":
        expected = error.validator_value
        wanted = " or ".join(expected) if isinstance(expected, list) else expected
        return f"{subject} must be of type {wanted}."
    if kind == "enum":
        return f"{subject} must be one of: {', '.join(str(v) for v in error.validator_value)}."
    if kind == "minLength":
        if error.validator_value == 1:
            return f"{subject} must not be empty."
        return f"{subject} must be at least {error.validator_value} characters long."
    if kind == "maxLength":
        return f"{subject} must be at most {error.validator_value} characters long."
    if kind == "pattern":
        return f"{subject} has an invalid format."
    return f"{subject} is invalid: {error.message}."
