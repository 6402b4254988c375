"""Telemetry of the real processes, through the real OTLP/HTTP export path.

Every process exports to an OTLP/HTTP receiver served by this test (`OTEL_EXPORTER_OTLP_ENDPOINT`),
which decodes the protobuf requests with `opentelemetry-proto`. One tool call must be one trace,
rooted at the gateway's HTTP span, through the Kafka produce and the service's consume down to its
MongoDB spans and the publish of its reply; the per-tool latency histogram, the error and timeout counters and the consumer lag
gauge must be exported; and no phone number or API key may appear in any span, metric or log.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import uuid4

import phonenumbers
import pytest
import seed
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

from switchboard.testing.system import CALL_CONTROL

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

USER = seed.AVAILABLE_USER
CALLER = seed.CALLER_NUMBER
CONTACT_NUMBER = "+12125550199"
"""Tom Becker's work number in the demo seed, where it is written "(212) 555-0199"."""
SLOW_TOOL = "hangup_call"
"""Answered by call-control, which the timeout test pauses; its deadline is short in this system."""


def written_forms(number: str) -> set[str]:
    """Every common way a number could leak: E.164, international, national, and its bare digits."""
    parsed = phonenumbers.parse(number)
    formats = [phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.INTERNATIONAL]
    formats.append(phonenumbers.PhoneNumberFormat.NATIONAL)
    digits = number.lstrip("+")
    return {phonenumbers.format_number(parsed, f) for f in formats} | {digits, digits[1:]}


PHONE_FORMS = sorted(written_forms(CALLER) | written_forms(CONTACT_NUMBER))

DEADLINE = 60.0


# The OTLP/HTTP receiver


@dataclass
class Span:
    name: str
    service: str
    trace_id: str
    span_id: str
    parent_id: str | None
    kind: str
    attributes: dict[str, Any]


@dataclass
class Point:
    metric: str
    service: str
    kind: str
    attributes: dict[str, Any]
    count: int | None
    value: float | None


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, which) if which else None


def _attributes(pairs: list[KeyValue]) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


@dataclass
class OtlpReceiver:
    """What the processes exported: decoded spans and metric points, and every request as text."""

    spans: list[Span] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def receive(self, path: str, body: bytes) -> bytes:
        if path == "/v1/traces":
            request = ExportTraceServiceRequest.FromString(body)
            spans = list(_spans(request))
            with self.lock:
                self.spans += spans
                self.texts.append(str(request))
            return ExportTraceServiceResponse().SerializeToString()
        if path == "/v1/metrics":
            request = ExportMetricsServiceRequest.FromString(body)
            points = list(_points(request))
            with self.lock:
                self.points += points
                self.texts.append(str(request))
            return ExportMetricsServiceResponse().SerializeToString()
        raise LookupError(path)

    def trace(self, trace_id: str) -> list[Span]:
        with self.lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def find_spans(self, predicate: Callable[[Span], bool]) -> list[Span]:
        with self.lock:
            return [s for s in self.spans if predicate(s)]

    def find_points(self, predicate: Callable[[Point], bool]) -> list[Point]:
        with self.lock:
            return [p for p in self.points if predicate(p)]

    def all_text(self) -> str:
        with self.lock:
            return "\n".join(self.texts)


def _spans(request: ExportTraceServiceRequest):
    for resource_spans in request.resource_spans:
        service = _attributes(resource_spans.resource.attributes).get("service.name", "")
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield Span(
                    name=span.name,
                    service=service,
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_id=span.parent_span_id.hex() or None,
                    kind=ProtoSpan.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
                    attributes=_attributes(span.attributes),
                )


def _points(request: ExportMetricsServiceRequest):
    for resource_metrics in request.resource_metrics:
        service = _attributes(resource_metrics.resource.attributes).get("service.name", "")
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                for point in getattr(metric, kind).data_points:
                    count = point.count if kind == "histogram" else None
                    value = None if kind == "histogram" else getattr(point, point.WhichOneof("value"))
                    yield Point(metric.name, service, kind, _attributes(point.attributes), count, value)


def serve(receiver: OtlpReceiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the http.server naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            try:
                answer = receiver.receive(self.path, body)
            except LookupError:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the exports are the test's data, not its output."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, name="otlp-receiver", daemon=True).start()
    return server


# The system


@dataclass
class Running:
    e2e: Any
    receiver: OtlpReceiver

    async def call(self, tool: str, arguments: dict[str, Any]) -> tuple[str, Any]:
        """One tool call on a call of its own, from the demo caller: (call id, MCP result)."""
        call_id = f"call-{uuid4().hex[:12]}"
        async with self.e2e.client(call_id) as client:
            return call_id, await client.call_tool(tool, arguments)


@pytest.fixture(scope="module")
async def running(start_system) -> AsyncIterator[Running]:
    receiver = OtlpReceiver()
    server = serve(receiver)
    telemetry = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}",
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        # A loaded 2-core machine can miss the 4 s default; only SLOW_TOOL's deadline is under test.
        "SWITCHBOARD_GATEWAY_TOOL_TIMEOUT": "30",
        "SWITCHBOARD_GATEWAY_TOOL_TIMEOUTS": json.dumps({SLOW_TOOL: 1.5}),
    }
    try:
        async with start_system(extra_env=telemetry) as e2e:
            yield Running(e2e, receiver)
    finally:
        server.shutdown()
        server.server_close()


async def eventually(probe: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    """The first truthy result of `probe`, polled until the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen within {timeout:.0f}s: {what}")
        await asyncio.sleep(0.1)


# Traces


def _descends_from(span: Span, ancestor: Span, by_id: dict[str, Span]) -> bool:
    while span.parent_id is not None and span.parent_id in by_id:
        if span.parent_id == ancestor.span_id:
            return True
        span = by_id[span.parent_id]
    return False


@dataclass
class ToolTrace:
    spans: list[Span]

    @property
    def by_id(self) -> dict[str, Span]:
        return {s.span_id: s for s in self.spans}

    def one(self, predicate: Callable[[Span], bool], what: str) -> Span:
        found = [s for s in self.spans if predicate(s)]
        assert len(found) == 1, f"expected one {what}, found {[(s.service, s.name) for s in found]}"
        return found[0]


async def tool_trace(running: Running, call_id: str, command_type: str) -> ToolTrace:
    """The whole trace of the tool call on `call_id`, once the service exported its `command_type` spans."""
    tool_span = await eventually(
        lambda: running.receiver.find_spans(
            lambda s: s.name.startswith("tool ") and s.attributes.get("switchboard.call_id") == call_id
        ),
        f"the gateway's tool span of {call_id}",
    )
    trace_id = tool_span[0].trace_id

    def complete() -> list[Span] | None:
        # The service's consume span ends after everything under it (its database calls, the
        # reply), so once it is exported the service's part is complete. A read answered from a
        # service's cache has no database call at all.
        spans = running.receiver.trace(trace_id)
        consumed = [s for s in spans if s.kind == "CONSUMER" and _command_type(s) == command_type]
        root = [s for s in spans if s.parent_id is None]
        return spans if consumed and root else None

    return ToolTrace(await eventually(complete, f"the {command_type} spans of {call_id}"))


def _command_type(span: Span) -> str | None:
    return span.attributes.get("switchboard.command.type")


TOOL_CALLS = [
    pytest.param("create_lead", {"name": "Jane Doe", "intent": "quote"}, "leads", id="create_lead"),
    pytest.param("check_user_availability", {"user_id": USER}, "persona", id="check_user_availability"),
    pytest.param("lookup_contact", {"phone_number": CONTACT_NUMBER}, "contacts", id="lookup_contact"),
]


@pytest.mark.parametrize(("tool", "arguments", "service"), TOOL_CALLS)
async def test_one_tool_call_is_one_trace_from_the_gateway_to_the_database(
    running: Running, tool: str, arguments: dict[str, Any], service: str
) -> None:
    command_type = f"{service}.{tool}"
    call_id, result = await running.call(tool, arguments)
    assert not result.is_error, result.content

    trace = await tool_trace(running, call_id, command_type)
    by_id = trace.by_id
    root = trace.one(lambda s: s.parent_id is None, "root span")
    assert (root.service, root.kind, root.name) == ("switchboard-gateway", "SERVER", "POST /ucp/v2/mcp")
    for span in trace.spans:
        assert span.parent_id is None or span.parent_id in by_id, f"{span.service} {span.name}: parent not in the trace"

    tool_span = trace.one(lambda s: s.name == f"tool {tool}", "tool span")
    produce = trace.one(lambda s: s.kind == "PRODUCER" and _command_type(s) == command_type, "command publish")
    consume = trace.one(lambda s: s.kind == "CONSUMER" and _command_type(s) == command_type, "command consume")
    database = [s for s in trace.spans if s.kind == "CLIENT" and _descends_from(s, consume, by_id)]
    assert tool_span.parent_id == root.span_id
    assert (produce.service, consume.service) == ("switchboard-gateway", f"switchboard-{service}")
    assert _descends_from(produce, tool_span, by_id)
    assert consume.parent_id == produce.span_id
    assert consume.attributes["switchboard.command.id"] == produce.attributes["switchboard.command.id"]
    assert consume.attributes["switchboard.call_id"] == call_id
    assert consume.attributes["switchboard.outcome"] == "handled"
    reply = trace.one(lambda s: s.kind == "PRODUCER" and s.parent_id == consume.span_id, "reply publish")
    assert ".gateway.replies." in reply.attributes["messaging.destination.name"]
    assert reply.attributes["switchboard.command.id"] == produce.attributes["switchboard.command.id"]
    assert database and {s.attributes.get("db.system") for s in database} == {"mongodb"}
    assert {s.service for s in database} == {consume.service}
    assert {root.attributes["switchboard.outcome"], tool_span.attributes["switchboard.outcome"]} == {"ok"}
    for span in trace.spans:
        if span.service != "switchboard-gateway":
            assert any(
                c.kind == "CONSUMER" and (c is span or _descends_from(span, c, by_id)) for c in trace.spans
            ), f"{span.service} {span.name} is not under a consumed command"


# Metrics


async def test_per_tool_latency_errors_timeouts_and_consumer_lag_are_exported(running: Running) -> None:
    _, result = await running.call("check_user_availability", {"user_id": "nobody"})
    assert result.is_error
    call_control = running.e2e.system.get(CALL_CONTROL.name)
    running.e2e.system.signal(call_control, signal.SIGSTOP)
    try:
        _, result = await running.call(SLOW_TOOL, {})
    finally:
        running.e2e.system.signal(call_control, signal.SIGCONT)
    assert result.is_error and "unavailable" in result.content[0].text

    receiver = running.receiver
    gateway = "switchboard-gateway"
    await eventually(
        lambda: receiver.find_points(
            lambda p: p.metric == "switchboard.gateway.tool.duration"
            and p.service == gateway
            and p.kind == "histogram"
            and p.attributes.get("tool") == "check_user_availability"
            and p.count
        ),
        "the per-tool latency histogram",
    )
    await eventually(
        lambda: receiver.find_points(
            lambda p: p.metric == "switchboard.gateway.tool.errors"
            and p.attributes == {"tool": "check_user_availability", "outcome": "tool_error"}
            and p.value >= 1
        ),
        "the error counter",
    )
    await eventually(
        lambda: receiver.find_points(
            lambda p: p.metric == "switchboard.gateway.tool.timeouts"
            and p.attributes == {"tool": SLOW_TOOL}
            and p.value >= 1
        ),
        "the timeout counter",
    )
    lag = await eventually(
        lambda: receiver.find_points(
            lambda p: p.metric == "switchboard.consumer.lag" and p.service == "switchboard-persona" and p.kind == "gauge"
        ),
        "the consumer lag gauge of persona",
    )
    assert all(p.value >= 0 for p in lag)
    await eventually(
        lambda: receiver.find_points(
            lambda p: p.metric == "switchboard.command.duration" and p.service == "switchboard-persona" and p.count
        ),
        "the command duration histogram of persona",
    )


# Privacy


async def test_no_phone_number_or_api_key_in_telemetry_or_logs(running: Running) -> None:
    call_id, result = await running.call("lookup_contact", {"phone_number": CONTACT_NUMBER})
    assert not result.is_error
    await tool_trace(running, call_id, "contacts.lookup_contact")
    call_id, result = await running.call("create_lead", {"name": "Ann", "intent": "call back"})
    assert not result.is_error
    await tool_trace(running, call_id, "leads.create_lead")

    secret = running.e2e.demo.api_key.rsplit("_", 1)[1]
    exported = running.receiver.all_text()
    logs = {r.label: r.log.read_text(errors="replace") for r in running.e2e.system.running}
    assert exported and all(logs.values())
    for where, text in {"exported telemetry": exported, **logs}.items():
        for form in PHONE_FORMS:
            assert form not in text, f"a phone number ({form[-4:]}) in {where}"
        assert secret not in text, f"the API key in {where}"

