"""The tools one persona offers: the six global tools, then its custom tools, each with its route.

Built from persona-svc's `PersonaTools` reply, kept per (account, persona) for `tools_cache_seconds`
and dropped when a `persona.updated` or `user.dnd_changed` event names the account. Concurrent
requests for the same persona share one fetch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from jsonschema import Draft202012Validator

from gateway import schemas
from gateway.model import Caller
from gateway.routes import ApiRequestRoute, GlobalRoute, Route, TransferRoute
from switchboard.contracts import (
    GLOBAL_TOOL_COMMANDS,
    OPERATIONS,
    CommandType,
    Contract,
    ErrorCode,
    GlobalTool,
)
from switchboard.contracts.call_control import TransferResult
from switchboard.contracts.persona import (
    ApiRequestTool,
    ApiResponse,
    ListTools,
    PersonaTools,
    PersonaUpdated,
    TransferToQueueTool,
    TransferToUserTool,
    UserDndChanged,
)
from switchboard.contracts.tools import GLOBAL_TOOL_PRESENTATION, ToolPresentation
from switchboard.messaging import RequestFailed, RequestTimeout
from switchboard.messaging.requester import Requester

log = logging.getLogger(__name__)

INTERNAL_ARGUMENTS: Mapping[GlobalTool, tuple[str, ...]] = {
    # Set by the gateway from a custom transfer tool's resolution, never by the model.
    GlobalTool.transfer_call: ("target",),
}


@dataclass(frozen=True, slots=True)
class ToolEntry:
    tool: types.Tool
    route: Route
    validator: Draft202012Validator
    metric_name: str
    """The name used in metrics: a custom tool's own name is the account's, so metrics use its kind."""

    @property
    def name(self) -> str:
        return self.tool.name

    @property
    def side_effecting(self) -> bool:
        return self.route.side_effecting


def _annotations(presentation: ToolPresentation) -> types.ToolAnnotations:
    return types.ToolAnnotations(
        title=presentation.title,
        read_only_hint=presentation.read_only,
        destructive_hint=presentation.destructive,
        idempotent_hint=presentation.idempotent,
        open_world_hint=presentation.open_world,
    )


def _entry(
    name: str,
    presentation: ToolPresentation,
    input_schema: schemas.JsonSchema,
    output_model: type[Contract],
    route: Route,
    metric_name: str,
) -> ToolEntry:
    output = schemas.output_schema(output_model)
    if route.side_effecting:
        output = schemas.with_repeat_flag(output)
    tool = types.Tool(
        name=name,
        title=presentation.title,
        description=presentation.description,
        input_schema=schemas.portable(input_schema),
        output_schema=output,
        annotations=_annotations(presentation),
    )
    return ToolEntry(tool, route, schemas.validator(input_schema), metric_name)


def _global_entry(tool: GlobalTool) -> ToolEntry:
    command = GLOBAL_TOOL_COMMANDS[tool]
    op = OPERATIONS[command]
    return _entry(
        tool.value,
        GLOBAL_TOOL_PRESENTATION[tool],
        schemas.input_schema(op.args, exclude=INTERNAL_ARGUMENTS.get(tool, ())),
        op.result,
        GlobalRoute(tool, command, op.args),
        tool.value,
    )


GLOBAL_ENTRIES: tuple[ToolEntry, ...] = tuple(_global_entry(tool) for tool in GlobalTool)


def _custom_entry(spec: TransferToUserTool | TransferToQueueTool | ApiRequestTool) -> ToolEntry:
    description = spec.description.strip()
    if isinstance(spec, ApiRequestTool):
        presentation = ToolPresentation(
            title=spec.name,
            description=description or "Run this account's configured request to an external system.",
            read_only=False,
            destructive=False,
            open_world=True,
        )
        return _entry(
            spec.name,
            presentation,
            schemas.variables_schema(spec.variables),
            ApiResponse,
            ApiRequestRoute(spec),
            "custom.api_request",
        )
    fallback = (
        "Transfer the caller to the colleague this tool is set up for. Tell the caller before you transfer."
        if isinstance(spec, TransferToUserTool)
        else "Transfer the caller to the team queue this tool is set up for. Tell the caller before you transfer."
    )
    presentation = ToolPresentation(
        title=spec.name, description=description or fallback, read_only=False, destructive=True, open_world=True
    )
    return _entry(
        spec.name,
        presentation,
        dict(schemas.EMPTY_INPUT),
        TransferResult,
        TransferRoute(spec),
        f"custom.{spec.kind}",
    )


@dataclass(frozen=True)
class PersonaCatalog:
    persona: PersonaTools
    entries: Mapping[str, ToolEntry]
    tools: tuple[types.Tool, ...]

    @property
    def region(self) -> str:
        return self.persona.account_country

    def get(self, name: str) -> ToolEntry | None:
        return self.entries.get(name)


def build_catalog(persona: PersonaTools) -> PersonaCatalog:
    """Global tools in their fixed order, then the persona's custom tools by name.

    A custom tool named like a global tool, or like an earlier custom tool, is left out: a name
    must mean one thing to the model.
    """
    entries: dict[str, ToolEntry] = {entry.name: entry for entry in GLOBAL_ENTRIES}
    for spec in sorted(persona.custom_tools, key=lambda s: s.name):
        if spec.name in entries:
            log.warning("persona %s: custom tool %r hides another tool; left out", persona.persona_id, spec.name)
            continue
        try:
            entries[spec.name] = _custom_entry(spec)
        except Exception:
            log.exception("persona %s: custom tool %r has an unusable schema; left out", persona.persona_id, spec.name)
    return PersonaCatalog(persona, entries, tuple(entry.tool for entry in entries.values()))


class PersonaNotFound(Exception):
    """persona-svc does not know this persona in the caller's account."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class _Cached:
    catalog: PersonaCatalog
    expires: float


REFRESH_AHEAD = 0.2
"""In the last fifth of a catalog's life, a tool call that reads it also starts a refetch in the
background: a persona in use gets its new catalog before the old one expires, so no call waits for it."""


class Catalogs:
    """Per-(account, persona) catalogs fetched from persona-svc with `list_tools`.

    A catalog is reused for `ttl` seconds at most, and forgotten at once when a `persona.updated` or
    `user.dnd_changed` event of its account arrives.
    """

    def __init__(
        self,
        requester: Requester,
        *,
        ttl: float,
        max_entries: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._requester = requester
        self._ttl = ttl
        self._clock = clock
        self._max_entries = max_entries
        self._cache: dict[tuple[str, str], _Cached] = {}
        self._fetches: dict[tuple[str, str], asyncio.Task[PersonaCatalog]] = {}
        self._generation: dict[str, int] = {}

    async def get(self, caller: Caller, *, timeout: float) -> PersonaCatalog:
        """The caller's persona catalog; raises PersonaNotFound, or a RequestError from the requester."""
        key = (caller.account_id, caller.persona_id)
        cached = self._cache.get(key)
        now = self._clock()
        if cached is not None and cached.expires > now:
            if cached.expires - now < self._ttl * REFRESH_AHEAD:
                self._start_fetch(key, caller, timeout)
            return cached.catalog
        fetch = self._start_fetch(key, caller, timeout)
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(fetch)
        except TimeoutError:
            raise RequestTimeout("no tool list within the deadline") from None

    def _start_fetch(self, key: tuple[str, str], caller: Caller, timeout: float) -> asyncio.Task[PersonaCatalog]:
        """The fetch of the key's catalog under way, or a new one: one at a time per key."""
        fetch = self._fetches.get(key)
        if fetch is None:
            fetch = asyncio.create_task(self._fetch(caller, timeout))
            self._fetches[key] = fetch
            fetch.add_done_callback(lambda done: self._fetch_done(key, done))
        return fetch

    async def _fetch(self, caller: Caller, timeout: float) -> PersonaCatalog:
        generation = self._generation.get(caller.account_id, 0)
        try:
            result = await self._requester.request(
                CommandType.list_tools, caller.context(), ListTools(), timeout=timeout
            )
        except RequestFailed as e:
            if e.error.code is ErrorCode.not_found:
                raise PersonaNotFound(e.error.message) from None
            raise
        assert isinstance(result, PersonaTools)
        catalog = build_catalog(result)
        if self._generation.get(caller.account_id, 0) == generation and self._ttl > 0:
            if len(self._cache) >= self._max_entries:
                self._evict()
            self._cache[(caller.account_id, caller.persona_id)] = _Cached(catalog, self._clock() + self._ttl)
        return catalog

    def _fetch_done(self, key: tuple[str, str], fetch: asyncio.Task[PersonaCatalog]) -> None:
        if self._fetches.get(key) is fetch:
            del self._fetches[key]
        if not fetch.cancelled():
            fetch.exception()  # retrieved here, so one nobody waited for is not reported as lost

    def invalidate(self, account_id: str, persona_id: str | None = None) -> None:
        """Forget the account's catalogs (one persona, or all); a fetch under way is not cached."""
        self._generation[account_id] = self._generation.get(account_id, 0) + 1
        for key in [k for k in self._cache if k[0] == account_id and (persona_id is None or k[1] == persona_id)]:
            del self._cache[key]

    async def on_event(self, event: Any) -> None:
        if isinstance(event, PersonaUpdated):
            self.invalidate(event.account_id, event.persona_id)
        elif isinstance(event, UserDndChanged):
            self.invalidate(event.account_id)

    def _evict(self) -> None:
        now = self._clock()
        for key in [k for k, v in self._cache.items() if v.expires <= now]:
            del self._cache[key]
        while len(self._cache) >= self._max_entries:
            del self._cache[next(iter(self._cache))]


EVENT_MODELS = (PersonaUpdated, UserDndChanged)
