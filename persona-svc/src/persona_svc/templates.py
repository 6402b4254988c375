"""`{{variable}}` templates of the API Request tool: checked when saved, filled in when run.

A value can never change where a request goes: placeholders are refused in the URL's scheme and
authority, and values are percent-encoded in the URL (so `/`, `?`, `#` and `@` stay data),
JSON-escaped or form-encoded in the body, and refused in headers when they hold line breaks.
Substitution is a single pass, so a value that looks like a placeholder stays text.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus

import httpx

from switchboard.contracts.envelope import CallContext
from switchboard.contracts.persona import ToolVariable, VariableType
from switchboard.messaging.errors import InvalidArgument

if TYPE_CHECKING:
    from persona_svc.model import ApiRequestDefinition

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
CONTEXT_VARIABLES = ("account_id", "persona_id", "call_id", "caller_id_number")
URL_ORIGIN = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<rest>.*)$", re.S)
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_TEXT_VALUE = 1000

Value = str | int | float


class BodyFormat(StrEnum):
    """How variable values are escaped in the body template."""

    json = "json"
    form = "form"
    text = "text"

    @property
    def content_type(self) -> str:
        return {
            BodyFormat.json: "application/json",
            BodyFormat.form: "application/x-www-form-urlencoded",
            BodyFormat.text: "text/plain; charset=utf-8",
        }[self]


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def has_control_characters(text: str) -> bool:
    return bool(CONTROL.search(text))


def check_url_template(url: str) -> httpx.URL:
    """The URL with its placeholders filled with samples; raises ValueError when it is not usable."""
    match = URL_ORIGIN.match(url)
    if not match or match["scheme"].lower() not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    if "{" in match["authority"] or "}" in match["authority"]:
        raise ValueError("placeholders are not allowed in the scheme, host or port")
    if has_control_characters(url) or " " in url:
        raise ValueError("must not contain spaces or control characters")
    try:
        parsed = httpx.URL(PLACEHOLDER.sub("sample", url))
    except httpx.InvalidURL as e:
        raise ValueError(f"is not a valid URL: {e}") from None
    if not parsed.host:
        raise ValueError("must name a host")
    if parsed.userinfo:
        raise ValueError("must not carry a user name or password; use a header")
    return parsed


def check_json_template(body: str, variables: Sequence[ToolVariable]) -> None:
    """A JSON body must be valid JSON once filled in: text placeholders inside quotes, numbers bare."""
    samples: dict[str, Value] = {name: "sample" for name in CONTEXT_VARIABLES}
    samples.update({v.name: 1 if v.type is VariableType.number else "sample" for v in variables})
    try:
        json.loads(_fill(body, samples, _json_escape))
    except ValueError:
        raise ValueError(
            "the body is not valid JSON once filled in: put text placeholders inside quotes "
            '("{{name}}") and number placeholders bare ({{count}})'
        ) from None


def bind_variables(variables: Sequence[ToolVariable], given: Mapping[str, Value]) -> dict[str, Value | None]:
    """The model's values checked against the tool's variable definitions; raises InvalidArgument.

    An optional variable left out is empty text, or null for a number.
    """
    by_name = {v.name: v for v in variables}
    unknown = sorted(set(given) - set(by_name))
    if unknown:
        takes = ", ".join(by_name) or "no variables"
        raise InvalidArgument(f"This tool has no variable {unknown[0]!r}; it takes: {takes}.")
    bound: dict[str, Value | None] = {}
    for variable in variables:
        if variable.name not in given:
            if variable.required:
                detail = f" ({variable.description})" if variable.description else ""
                raise InvalidArgument(f"The variable {variable.name!r} is required{detail}.")
            bound[variable.name] = None if variable.type is VariableType.number else ""
            continue
        bound[variable.name] = _check(variable, given[variable.name])
    return bound


def _check(variable: ToolVariable, value: Value) -> Value:
    if variable.type is VariableType.number:
        number = _number(value)
        if number is None:
            raise InvalidArgument(f"The variable {variable.name!r} must be a number.")
        return number
    text = value if isinstance(value, str) else _format_number(value)
    if variable.type is VariableType.dropdown:
        if text not in variable.options:
            raise InvalidArgument(f"The variable {variable.name!r} must be one of: {', '.join(variable.options)}.")
        return text
    if len(text) > MAX_TEXT_VALUE:
        raise InvalidArgument(f"The variable {variable.name!r} is longer than {MAX_TEXT_VALUE} characters.")
    if TEXT_CONTROL.search(text):
        raise InvalidArgument(f"The variable {variable.name!r} contains control characters.")
    return text


def _number(value: Value) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip()) if re.search(r"[.eE]", value) else int(value.strip())
        except ValueError:
            return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _format_number(value: int | float) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _text(value: Value) -> str:
    return value if isinstance(value, str) else _format_number(value)


def _json_escape(value: Value | None) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)[1:-1]
    return _format_number(value)


def _fill(template: str, values: Mapping[str, Value | None], encode) -> str:
    return PLACEHOLDER.sub(lambda m: encode(values.get(m.group(1))), template)


@dataclass(frozen=True)
class RenderedRequest:
    method: str
    url: httpx.URL
    headers: list[tuple[str, str]]
    body: bytes | None


def context_values(context: CallContext) -> dict[str, str]:
    return {
        "account_id": context.account_id,
        "persona_id": context.persona_id,
        "call_id": context.call_id,
        "caller_id_number": context.caller_id_number or "",
    }


def render(tool: ApiRequestDefinition, values: Mapping[str, Value | None], context: CallContext) -> RenderedRequest:
    """Fill the tool's templates; the scheme, host and port are those of the stored URL, always."""
    all_values: dict[str, Value | None] = {**context_values(context), **values}
    match = URL_ORIGIN.match(tool.url)
    assert match is not None, "stored URLs are checked when saved"
    path = _fill(match["rest"], all_values, lambda v: "" if v is None else quote(_text(v), safe=""))
    url = httpx.URL(f"{match['scheme']}://{match['authority']}{path}")
    origin = httpx.URL(f"{match['scheme']}://{match['authority']}/")
    if (url.scheme, url.host, url.port) != (origin.scheme, origin.host, origin.port):
        raise InvalidArgument("The values given would change where this request goes.")

    headers = []
    for header in tool.headers:
        value = _fill(header.value or "", all_values, lambda v: "" if v is None else _text(v))
        if has_control_characters(value):
            raise InvalidArgument(f"A value given for the {header.name} header contains a line break.")
        headers.append((header.name, value))

    body = None
    if tool.body is not None:
        if tool.body_format is BodyFormat.json:
            text = _fill(tool.body, all_values, _json_escape)
            try:
                json.loads(text)
            except ValueError:
                raise InvalidArgument("The values given do not make a valid JSON body for this request.") from None
        elif tool.body_format is BodyFormat.form:
            text = _fill(tool.body, all_values, lambda v: "" if v is None else quote_plus(_text(v)))
        else:
            text = _fill(tool.body, all_values, lambda v: "" if v is None else _text(v))
        body = text.encode()
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers.append(("Content-Type", tool.body_format.content_type))
    return RenderedRequest(tool.method.value, url, headers, body)
