"""Telemetry of the real processes, in the real backends and through the real export paths.

Traces go to Jaeger (`scripts/infra` builds and starts it; `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`),
and the test reads them back through Jaeger's own query API. One tool call must be one trace,
rooted at the gateway's HTTP span, through the Kafka produce and the service's consume down to its
MongoDB spans and the publish of its reply. Metrics are pushed over OTLP/HTTP to a receiver served
by this test (`OTEL_EXPORTER_OTLP_ENDPOINT`, decoded with `opentelemetry-proto`) and scraped from
every process's `/metrics` as Prometheus does: the per-tool latency histogram, the error and timeout
counters, in-flight, consumer lag, dead letters and outbox depth; every metric the Grafana dashboard
and the Prometheus alert rules in `deploy/` use must be one the processes export. No phone number or
API key may appear in any span, metric or log.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import phonenumbers
import pytest
import seed
import yaml
from aiokafka import AIOKafkaProducer
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

from gateway.auth import KEY_PATTERN
from switchboard.contracts import Topic
from switchboard.testing.system import CALL_CONTROL

# Starting Jaeger may build it first when the test command did not (minutes, once).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "switchboard-dashboard.json"
ALERT_RULES = ROOT / "deploy" / "prometheus" / "switchboard-rules.yaml"

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


# Jaeger


def jaeger_env() -> dict[str, str]:
    """Jaeger's addresses from scripts/infra, starting it (built if missing) when it is not running."""

    def infra(*args: str, **env: str) -> str:
        done = subprocess.run(
            [str(ROOT / "scripts" / "infra"), *args], env={**os.environ, **env}, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    values = dict(line.split("=", 1) for line in infra("env").splitlines() if "=" in line)
    if "SWITCHBOARD_JAEGER_URL" not in values:
        infra("up", SWITCHBOARD_JAEGER="wait")
        values = dict(line.split("=", 1) for line in infra("env").splitlines() if "=" in line)
    return values


_KINDS = {"server": "SERVER", "client": "CLIENT", "producer": "PRODUCER", "consumer": "CONSUMER", "internal": "INTERNAL"}


def jaeger_spans(trace: dict[str, Any]) -> list[Span]:
    """The spans of one trace as Jaeger's query API answers (`/api/traces/{id}`)."""
    services = {pid: process["serviceName"] for pid, process in trace["processes"].items()}
    spans = []
    for span in trace["spans"]:
        tags = {tag["key"]: tag["value"] for tag in span.get("tags", [])}
        parents = [r["spanID"] for r in span.get("references", []) if r["refType"] == "CHILD_OF"]
        spans.append(
            Span(
                name=span["operationName"],
                service=services[span["processID"]],
                trace_id=span["traceID"],
                span_id=span["spanID"],
                parent_id=parents[0] if parents else None,
                kind=_KINDS.get(str(tags.pop("span.kind", "internal")), "INTERNAL"),
                attributes=tags,
            )
        )
    return spans


@dataclass
class Jaeger:
    url: str

    def find_traces(self, service: str, operation: str, tags: dict[str, str]) -> list[dict[str, Any]]:
        params = {"service": service, "operation": operation, "tags": json.dumps(tags), "lookback": "1h", "limit": "20"}
        answer = httpx.get(f"{self.url}/api/traces", params=params, timeout=10)
        answer.raise_for_status()
        return answer.json()["data"] or []

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        answer = httpx.get(f"{self.url}/api/traces/{trace_id}", timeout=10)
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        data = answer.json()["data"]
        return data[0] if data else None

    def services(self) -> list[str]:
        answer = httpx.get(f"{self.url}/api/services", timeout=10)
        answer.raise_for_status()
        return answer.json()["data"] or []


# The system


@dataclass
class Running:
    e2e: Any
    receiver: OtlpReceiver
    jaeger: Jaeger

    async def call(self, tool: str, arguments: dict[str, Any]) -> tuple[str, Any]:
        """One tool call on a call of its own, from the demo caller: (call id, MCP result)."""
        call_id = f"call-{uuid4().hex[:12]}"
        async with self.e2e.client(call_id) as client:
            return call_id, await client.call_tool(tool, arguments)


@pytest.fixture(scope="module")
async def running(start_system) -> AsyncIterator[Running]:
    receiver = OtlpReceiver()
    server = serve(receiver)
    jaeger = jaeger_env()
    telemetry = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": jaeger["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"],
        # The outbox relays pass every second, so their depth gauge is there to scrape.
        "SWITCHBOARD_LEADS_RELAY_INTERVAL": "1",
        "SWITCHBOARD_CONTACTS_RELAY_INTERVAL_SECONDS": "1",
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        # A loaded 2-core machine can miss the 4 s default; only SLOW_TOOL's deadline is under test.
        "SWITCHBOARD_GATEWAY_TOOL_TIMEOUT": "30",
        "SWITCHBOARD_GATEWAY_TOOL_TIMEOUTS": json.dumps({SLOW_TOOL: 1.5}),
    }
    try:
        async with start_system(extra_env=telemetry) as e2e:
            yield Running(e2e, receiver, Jaeger(jaeger["SWITCHBOARD_JAEGER_URL"]))
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
    """The whole trace of the tool call on `call_id`, as Jaeger shows it, once the service's part is in."""

    tool = command_type.partition(".")[2]  # the command types are named <service>.<tool>

    def found() -> list[dict[str, Any]]:
        return running.jaeger.find_traces("switchboard-gateway", f"tool {tool}", {"switchboard.call_id": call_id})

    traces = await eventually(found, f"the trace of {call_id} in Jaeger")
    (trace_id,) = {t["traceID"] for t in traces}

    def complete() -> list[Span] | None:
        # The service's consume span ends after everything under it (its database calls, the
        # reply), so once it is in Jaeger the service's part is complete. A read answered from a
        # service's cache has no database call at all.
        trace = running.jaeger.trace(trace_id)
        spans = jaeger_spans(trace) if trace else []
        consumed = [s for s in spans if s.kind == "CONSUMER" and _command_type(s) == command_type]
        root = [s for s in spans if s.parent_id is None]
        return spans if consumed and root else None

    return ToolTrace(await eventually(complete, f"the {command_type} spans of {call_id} in Jaeger"))


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


async def cause_a_tool_error_and_a_timeout(running: Running) -> None:
    _, result = await running.call("check_user_availability", {"user_id": "nobody"})
    assert result.is_error
    call_control = running.e2e.system.get(CALL_CONTROL.name)
    running.e2e.system.signal(call_control, signal.SIGSTOP)
    try:
        _, result = await running.call(SLOW_TOOL, {})
    finally:
        running.e2e.system.signal(call_control, signal.SIGCONT)
    assert result.is_error and "unavailable" in result.content[0].text


async def send_a_poison_command(running: Running) -> None:
    """A record no service can read, on persona's command topic: it goes to the dead-letter topic."""
    producer = AIOKafkaProducer(bootstrap_servers=running.e2e.env["SWITCHBOARD_KAFKA_BOOTSTRAP"])
    await producer.start()
    try:
        topic = f"{running.e2e.prefix}.{Topic.persona_commands.value}"
        await producer.send_and_wait(topic, b"{not a command", key=b"poison")
    finally:
        await producer.stop()


def scrape(running: Running) -> dict[str, str]:
    """Every process's /metrics, as Prometheus scrapes it, by process."""
    pages = {}
    for process in running.e2e.system.running:
        answer = httpx.get(f"{process.base_url}/metrics", timeout=10)
        assert answer.status_code == 200, f"{process.label}: /metrics answered {answer.status_code}"
        assert answer.headers["content-type"].startswith("text/plain"), answer.headers["content-type"]
        pages[process.label] = answer.text
    return pages


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s", re.M)


def exported(pages: dict[str, str]) -> dict[str, set[str]]:
    """Metric name -> the label names seen on it, over every scraped page."""
    names: dict[str, set[str]] = {}
    for page in pages.values():
        for match in _SAMPLE.finditer(page):
            labels = set(re.findall(r"(\w+)=\"", match.group("labels") or ""))
            names.setdefault(match.group("name"), set()).update(labels)
    return names


def promql_of_deploy() -> dict[str, str]:
    """Every PromQL expression of the Grafana dashboard and the alert rules, by where it is."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = {
        f"dashboard panel {panel['title']!r} {target['refId']}": target["expr"]
        for panel in dashboard["panels"]
        for target in panel["targets"]
    }
    rules = yaml.safe_load(ALERT_RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            exprs[f"alert {rule['alert']}"] = rule["expr"]
    return exprs


def test_the_dashboard_and_the_alerts_cover_what_an_sre_watches() -> None:
    exprs = promql_of_deploy()
    text = " ".join(exprs.values())
    for metric in (
        "switchboard_gateway_tool_duration_milliseconds_bucket",
        "switchboard_gateway_tool_errors_total",
        "switchboard_gateway_tool_timeouts_total",
        "switchboard_gateway_in_flight",
        "switchboard_consumer_in_flight",
        "switchboard_consumer_lag",
        "switchboard_consumer_dead_letters_total",
        "switchboard_outbox_depth",
    ):
        assert metric in text, f"nothing shows {metric}"
    alerts = {where: expr for where, expr in exprs.items() if where.startswith("alert ")}
    assert any("histogram_quantile(0.99" in e and "> 1500" in e for e in alerts.values()), "no p99-over-budget alert"
    assert any("switchboard_consumer_lag" in e and "deriv(" in e for e in alerts.values()), "no lag-growing alert"
    assert any("switchboard_consumer_dead_letters_total" in e for e in alerts.values()), "no dead-letter alert"


async def test_every_metric_of_the_dashboard_and_alerts_is_one_the_processes_export(running: Running) -> None:
    await cause_a_tool_error_and_a_timeout(running)
    await send_a_poison_command(running)
    call_id, result = await running.call("create_lead", {"name": "Jo", "intent": "metrics"})
    assert not result.is_error
    wanted = {
        (where, name)
        for where, expr in promql_of_deploy().items()
        for name in re.findall(r"\b(switchboard_\w+)", expr)
    }
    assert wanted

    def missing() -> set[tuple[str, str]]:
        names = exported(scrape(running))
        return {(where, name) for where, name in wanted if name not in names}

    try:
        await eventually(lambda: not missing(), "every metric the dashboard and the alerts use")
    except AssertionError as e:
        raise AssertionError(f"{e}: not exported: {sorted(missing())}") from None
    names = exported(scrape(running))
    for where, expr in promql_of_deploy().items():
        used = set(re.findall(r"\b(switchboard_\w+)", expr))
        for by in re.findall(r"by \(([^)]*)\)", expr):
            for label in (label.strip() for label in by.split(",")):
                if label != "le":
                    assert any(label in names[m] for m in used), f"{where}: no metric it uses has the label {label!r}"
    dead = [line for line in scrape(running)["persona"].splitlines() if line.startswith("switchboard_consumer_dead_letters_total")]
    assert dead and float(dead[0].rsplit(" ", 1)[1]) >= 1


async def test_per_tool_latency_errors_timeouts_and_consumer_lag_are_exported(running: Running) -> None:
    await cause_a_tool_error_and_a_timeout(running)

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
    traces = []
    for tool, arguments, command_type in (
        ("lookup_contact", {"phone_number": CONTACT_NUMBER}, "contacts.lookup_contact"),
        ("create_lead", {"name": "Ann", "intent": "call back"}, "leads.create_lead"),
    ):
        call_id, result = await running.call(tool, arguments)
        assert not result.is_error
        trace = await tool_trace(running, call_id, command_type)
        traces.append(json.dumps(running.jaeger.trace(trace.spans[0].trace_id)))

    key = KEY_PATTERN.match(running.e2e.demo.api_key)
    assert key, "the demo key is not a well-formed API key"
    secret = key.group("secret")  # base64url: may itself hold "_"
    pushed = running.receiver.all_text()
    logs = {r.label: r.log.read_text(errors="replace") for r in running.e2e.system.running}
    scraped = {f"{label} /metrics": page for label, page in scrape(running).items()}
    assert pushed and all(logs.values())
    texts = {"metrics pushed over OTLP": pushed, "the traces in Jaeger": "\n".join(traces), **scraped, **logs}
    for where, text in texts.items():
        for form in PHONE_FORMS:
            assert form not in text, f"a phone number ({form[-4:]}) in {where}"
        assert secret not in text, f"the API key in {where}"

