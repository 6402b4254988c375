"""Query strings stay out of telemetry: a span processor that redacts them as spans are made.

HTTP instrumentation (FastAPI's server spans, httpx's client spans) records the query string
verbatim in `url.query` or in a full URL, where a phone number looked up by query (`?phone=...`)
or a token tried in one would reach every trace backend. This processor runs in every process
(`setup_telemetry` installs it) and, when a span starts, replaces every query value with
`REDACTED`, keeping the parameter names; the path and the rest of the URL are kept.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

REDACTED = "REDACTED"
PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\[\]-]{0,39}$")

QUERY_ATTRIBUTES = ("url.query",)
"""Attributes that hold a query string alone."""
URL_ATTRIBUTES = ("url.full", "http.url", "http.target", "url.original")
"""Attributes that hold a URL (or a request target) that may end in a query string."""


def redact_query(query: str) -> str:
    """The query with each value replaced by REDACTED: `phone=%2B1415...&x=1` -> `phone=REDACTED&x=REDACTED`.

    A name is kept only when it looks like a parameter name: a bare `?sbk_...` or `?+1415...` is the
    secret itself, and becomes REDACTED whole.
    """
    pairs = parse_qsl(query, keep_blank_values=True)
    if not pairs:
        return REDACTED if query else ""
    return "&".join(f"{name if PARAMETER_NAME.match(name) else REDACTED}={REDACTED}" for name, _ in pairs)


def redact_url(url: str) -> str:
    """The URL with its query redacted (see `redact_query`) and its fragment left out."""
    url = url.split("#", 1)[0]
    base, mark, query = url.partition("?")
    return f"{base}?{redact_query(query)}" if mark and query else base


class QueryRedaction(SpanProcessor):
    """Redacts query strings in the URL attributes a span starts with (instrumentation sets them there)."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        attributes = span.attributes
        if not attributes:
            return
        changed: dict[str, str] = {}
        for name in QUERY_ATTRIBUTES:
            value = attributes.get(name)
            if isinstance(value, str) and value:
                changed[name] = redact_query(value)
        for name in URL_ATTRIBUTES:
            value = attributes.get(name)
            if isinstance(value, str) and ("?" in value or "#" in value):
                changed[name] = redact_url(value)
        if changed:
            span.set_attributes(changed)

    def on_end(self, span: ReadableSpan) -> None:
        pass
