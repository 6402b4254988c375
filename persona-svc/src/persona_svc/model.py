"""What persona-svc stores: accounts, personas with their office hours, users, queues and custom tools.

The `*Fields` models are what the admin API accepts (PUT bodies); the stored models add the ids and
`updated_at`. Custom tool definitions keep everything the gateway must never see (the user or
queue behind a transfer, an API's URL, headers and secrets); the gateway gets `spec()` only.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import date, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from switchboard.contracts.envelope import IDENTIFIER
from switchboard.contracts.persona import (
    TOOL_NAME,
    ApiRequestTool,
    CustomToolSpec,
    ToolVariable,
    TransferToQueueTool,
    TransferToUserTool,
    VariableType,
)
from switchboard.phone import is_extension

from persona_svc import templates
from persona_svc.templates import BodyFormat

HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")
WALL_TIME = r"^(?:[01]\d|2[0-3]):[0-5]\d$"
WALL_TIME_OR_MIDNIGHT = r"^(?:(?:[01]\d|2[0-3]):[0-5]\d|24:00)$"
HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$"
MINUTES_PER_DAY = 24 * 60

FORBIDDEN_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-connection",
        "expect",
    }
)
"""Headers the HTTP client owns: a tool setting them could smuggle a second request or reach another host."""


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


@lru_cache(maxsize=1024)
def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


class EgressRule(Model):
    """One internal destination an account opens to its API Request tools."""

    host: str = Field(
        min_length=1,
        max_length=253,
        description="A host name (matched exactly), an IP address, or a CIDR network such as 10.20.0.0/16.",
    )
    port: int | None = Field(default=None, ge=1, le=65535, description="Only this port; every port when unset.")

    @field_validator("host")
    @classmethod
    def _normalise(cls, value: str) -> str:
        text = value.strip().lower().removesuffix(".")
        try:
            return str(ipaddress.ip_network(text.strip("[]"), strict=False))
        except ValueError:
            pass
        if not HOSTNAME.match(text) or all(label.isdigit() for label in text.split(".")):
            raise ValueError("must be a host name, an IP address or a CIDR network")
        return text

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
        try:
            return ipaddress.ip_network(self.host)
        except ValueError:
            return None


class AccountFields(Model):
    name: str = Field(min_length=1, max_length=200)
    timezone: str = Field(min_length=1, max_length=64, description="IANA timezone, e.g. Europe/Berlin.")
    country: str = Field(
        pattern=r"^[A-Za-z]{2}$", description="ISO 3166 alpha-2 country: how national phone numbers are read."
    )
    egress_allowlist: list[EgressRule] = Field(
        default_factory=list,
        max_length=100,
        description="Internal destinations this account's API Request tools may reach (private networks stay closed otherwise).",
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if not _known_zone(value):
            raise ValueError(f"{value!r} is not an IANA timezone")
        return value

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        code = value.upper()
        if code not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{value!r} is not a country code phone numbers can be read with")
        return code


class Account(AccountFields):
    account_id: str = Field(pattern=IDENTIFIER)
    updated_at: AwareDatetime

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Weekday(StrEnum):
    monday = "monday"
    tuesday = "tuesday"
    wednesday = "wednesday"
    thursday = "thursday"
    friday = "friday"
    saturday = "saturday"
    sunday = "sunday"

    @classmethod
    def of(cls, day: date) -> Weekday:
        return list(cls)[day.weekday()]


class Span(Model):
    """One opening in local wall-clock time. An end at or before the start runs past midnight."""

    start: str = Field(pattern=WALL_TIME, description="HH:MM, 00:00 to 23:59.")
    end: str = Field(
        pattern=WALL_TIME_OR_MIDNIGHT,
        description="HH:MM; 24:00 is midnight at the end of the day; before the start means the next day.",
    )

    @model_validator(mode="after")
    def _not_empty(self) -> Span:
        if self.start == self.end:
            raise ValueError("start and end are equal; a whole day is 00:00 to 24:00")
        return self

    @property
    def start_minute(self) -> int:
        return _minutes(self.start)

    @property
    def end_minute(self) -> int:
        """Minutes after the start day's midnight; more than a day when the span crosses midnight."""
        end = _minutes(self.end)
        return end if end > self.start_minute else end + MINUTES_PER_DAY


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


Spans = Annotated[list[Span], Field(max_length=12)]


class Holiday(Model):
    date: date
    name: str = Field(min_length=1, max_length=200, description="Told to the caller, e.g. 'Christmas Day'.")


class SpecialHours(Model):
    date: date
    spans: Spans = Field(default_factory=list, description="The only openings of that date; none: closed.")
    name: str | None = Field(default=None, max_length=200)


class OfficeHours(Model):
    """A weekly schedule with per-date exceptions, evaluated in the account's timezone.

    A holiday closes its whole date and special hours are the only openings of theirs: either one
    also cuts off the previous day's opening where it would run past midnight into that date.
    """

    weekly: dict[Weekday, Spans] = Field(
        default_factory=dict, description="Openings per weekday; a missing day is closed."
    )
    holidays: list[Holiday] = Field(default_factory=list, max_length=1000)
    special_hours: list[SpecialHours] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _one_exception_per_date(self) -> OfficeHours:
        dates = [h.date for h in self.holidays] + [s.date for s in self.special_hours]
        duplicates = sorted({d for d in dates if dates.count(d) > 1})
        if duplicates:
            raise ValueError(f"more than one holiday or special hours on {', '.join(map(str, duplicates))}")
        return self

    @property
    def ever_open(self) -> bool:
        return any(self.weekly.values()) or any(s.spans for s in self.special_hours)

    def exception_on(self, day: date) -> Holiday | SpecialHours | None:
        return next((item for item in (*self.holidays, *self.special_hours) if item.date == day), None)


class PersonaFields(Model):
    name: str = Field(min_length=1, max_length=200)
    office_hours: OfficeHours | None = Field(
        default=None, description="None: is_office_open answers that none are set."
    )


class Persona(PersonaFields):
    account_id: str = Field(pattern=IDENTIFIER)
    persona_id: str = Field(pattern=IDENTIFIER)
    updated_at: AwareDatetime


class DestinationFields(Model):
    """Where a transfer goes: an internal extension or a phone number (exactly one)."""

    name: str = Field(min_length=1, max_length=200)
    extension: str | None = Field(default=None, description="An internal extension, 2 to 6 digits.")
    number: str | None = Field(
        default=None, max_length=64, description="A phone number; national forms use the account's country."
    )

    @field_validator("extension")
    @classmethod
    def _extension(cls, value: str | None) -> str | None:
        if value is not None and not is_extension(value):
            raise ValueError("an extension is 2 to 6 digits")
        return value.strip() if value else value

    @model_validator(mode="after")
    def _exactly_one(self) -> DestinationFields:
        if (self.extension is None) == (self.number is None):
            raise ValueError("give exactly one of extension and number")
        return self

    @property
    def destination(self) -> str:
        return self.extension or self.number or ""


class UserFields(DestinationFields):
    pass


class User(UserFields):
    account_id: str = Field(pattern=IDENTIFIER)
    user_id: str = Field(pattern=IDENTIFIER)
    dnd: bool = False
    dnd_until: AwareDatetime | None = None
    updated_at: AwareDatetime

    def on_dnd(self, now: datetime) -> bool:
        return self.dnd and (self.dnd_until is None or now < self.dnd_until)


class DndFields(Model):
    dnd: bool
    until: AwareDatetime | None = Field(
        default=None, description="DND ends by itself at this time; none: until turned off."
    )

    @model_validator(mode="after")
    def _until_needs_dnd(self) -> DndFields:
        if self.until is not None and not self.dnd:
            raise ValueError("'until' is only allowed when turning DND on")
        return self


class QueueFields(DestinationFields):
    pass


class Queue(QueueFields):
    account_id: str = Field(pattern=IDENTIFIER)
    queue_id: str = Field(pattern=IDENTIFIER)
    updated_at: AwareDatetime


class TransferToUserDefinition(Model):
    kind: Literal["transfer_to_user"] = "transfer_to_user"
    name: str = Field(pattern=TOOL_NAME)
    description: str = Field(min_length=1, max_length=2000, description="Read by the model: when to use this tool.")
    user_id: str = Field(pattern=IDENTIFIER)
    refuse_when_dnd: bool = Field(default=False, description="Refuse the transfer while the user is on DND.")

    def spec(self) -> TransferToUserTool:
        return TransferToUserTool(name=self.name, description=self.description)


class TransferToQueueDefinition(Model):
    kind: Literal["transfer_to_queue"] = "transfer_to_queue"
    name: str = Field(pattern=TOOL_NAME)
    description: str = Field(min_length=1, max_length=2000, description="Read by the model: when to use this tool.")
    queue_id: str = Field(pattern=IDENTIFIER)

    def spec(self) -> TransferToQueueTool:
        return TransferToQueueTool(name=self.name, description=self.description)


class HttpMethod(StrEnum):
    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"


class HeaderSpec(Model):
    name: str = Field(pattern=HEADER_NAME)
    value: str | None = Field(
        default=None,
        max_length=4000,
        description="May hold {{variable}} placeholders. Secret values are never shown again: send null to keep the stored one.",
    )
    secret: bool = False

    @field_validator("name")
    @classmethod
    def _allowed(cls, value: str) -> str:
        if value.lower() in FORBIDDEN_HEADERS:
            raise ValueError(f"the {value} header is set by the HTTP client")
        return value

    @field_validator("value")
    @classmethod
    def _single_line(cls, value: str | None) -> str | None:
        if value is not None and templates.has_control_characters(value):
            raise ValueError("a header value must be one line of printable text")
        return value


class ApiRequestFields(Model):
    kind: Literal["api_request"] = "api_request"
    name: str = Field(pattern=TOOL_NAME)
    description: str = Field(min_length=1, max_length=2000, description="Read by the model: when to use this tool.")
    variables: list[ToolVariable] = Field(default_factory=list, max_length=30)
    method: HttpMethod = HttpMethod.GET
    url: str = Field(
        min_length=8,
        max_length=2000,
        description="http(s) URL; {{variable}} placeholders are allowed in the path and query only.",
    )
    headers: list[HeaderSpec] = Field(default_factory=list, max_length=30)
    body: str | None = Field(
        default=None, max_length=65_536, description="Body template with {{variable}} placeholders."
    )
    body_format: BodyFormat = BodyFormat.json
    timeout_seconds: float = Field(default=10, gt=0, le=30)

    @field_validator("variables")
    @classmethod
    def _variables(cls, variables: list[ToolVariable]) -> list[ToolVariable]:
        names = [v.name for v in variables]
        for variable in variables:
            if names.count(variable.name) > 1:
                raise ValueError(f"variable {variable.name!r} is defined twice")
            if variable.name in templates.CONTEXT_VARIABLES:
                raise ValueError(f"{variable.name!r} is a call context value; choose another variable name")
            if variable.type is VariableType.dropdown and not variable.options:
                raise ValueError(f"dropdown {variable.name!r} needs at least one option")
            if variable.type is not VariableType.dropdown and variable.options:
                raise ValueError(f"only a dropdown has options ({variable.name!r} is {variable.type})")
            if len(set(variable.options)) != len(variable.options):
                raise ValueError(f"dropdown {variable.name!r} lists an option twice")
        return variables

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        templates.check_url_template(url)
        return url

    @field_validator("headers")
    @classmethod
    def _unique_headers(cls, headers: list[HeaderSpec]) -> list[HeaderSpec]:
        names = [h.name.lower() for h in headers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"header {duplicates[0]!r} is given twice")
        return headers

    @model_validator(mode="after")
    def _placeholders_are_defined(self) -> ApiRequestFields:
        known = {v.name for v in self.variables} | set(templates.CONTEXT_VARIABLES)
        texts = [self.url, self.body or "", *(h.value or "" for h in self.headers)]
        unknown = sorted(set().union(*(templates.placeholders(t) for t in texts)) - known)
        if unknown:
            raise ValueError(f"placeholder {{{{{unknown[0]}}}}} is neither a variable nor a call context value")
        if self.body is not None and self.body_format is BodyFormat.json:
            templates.check_json_template(self.body, self.variables)
        if any(h.secret and templates.placeholders(h.value or "") for h in self.headers):
            raise ValueError("a secret header value cannot hold placeholders")
        return self

    def spec(self) -> ApiRequestTool:
        return ApiRequestTool(name=self.name, description=self.description, variables=list(self.variables))


class ApiRequestDefinition(ApiRequestFields):
    """A stored API Request tool: every header has its value."""

    @model_validator(mode="after")
    def _header_values(self) -> ApiRequestDefinition:
        missing = [h.name for h in self.headers if h.value is None]
        if missing:
            raise ValueError(f"header {missing[0]!r} needs a value")
        return self

    def without_secrets(self) -> ApiRequestFields:
        headers = [h.model_copy(update={"value": None}) if h.secret else h for h in self.headers]
        return ApiRequestFields.model_validate({**self.model_dump(), "headers": [h.model_dump() for h in headers]})


ToolFields = Annotated[
    TransferToUserDefinition | TransferToQueueDefinition | ApiRequestFields, Field(discriminator="kind")
]
"""A custom tool as the admin API accepts it and shows it (secret header values are null)."""

ToolDefinition = Annotated[
    TransferToUserDefinition | TransferToQueueDefinition | ApiRequestDefinition, Field(discriminator="kind")
]


class CustomTool(Model):
    account_id: str = Field(pattern=IDENTIFIER)
    persona_id: str = Field(pattern=IDENTIFIER)
    tool_id: str = Field(pattern=IDENTIFIER)
    definition: ToolDefinition
    updated_at: AwareDatetime

    @property
    def name(self) -> str:
        return self.definition.name

    def spec(self) -> CustomToolSpec:
        return self.definition.spec()
