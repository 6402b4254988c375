"""OpenTelemetry for every process: tracer and meter providers, and W3C trace context in Kafka headers.

One tool call is one trace: the gateway's HTTP span is the root; the requester injects the context
into the command's Kafka headers; the consumer runtime extracts it, so the service's spans (and its
MongoDB and HTTP spans) are children; the reply carries it back.

Metrics are always served for Prometheus to scrape, at `/metrics` on the process's HTTP port
(`metrics_endpoint`), and also pushed over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Traces go
over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set
(the latter alone: a trace backend such as Jaeger, which takes no metrics).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence

from opentelemetry import metrics, propagate, trace
from opentelemetry.context import Context
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from switchboard.redaction import QueryRedaction
from switchboard.settings import SwitchboardSettings

KafkaHeaders = list[tuple[str, bytes]]

log = logging.getLogger(__name__)

_configured = False

DURATION_BUCKETS_MS = (5, 10, 25, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 4000, 6000, 10000)
"""Bucket bounds of every duration histogram: fine around a voice call's budget (a second or two of
silence), so a p99 read from the buckets says which side of it a tool is."""

DURATION_VIEWS = [
    View(instrument_name="switchboard.*duration", aggregation=ExplicitBucketHistogramAggregation(DURATION_BUCKETS_MS))
]


class JsonLinesSpanExporter(SpanExporter):
    """Appends each finished span as one JSON line: what a test or a person reads without a backend."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for span in spans:
            ctx = span.get_span_context()
            lines.append(
                json.dumps(
                    {
                        "name": span.name,
                        "service": span.resource.attributes.get("service.name"),
                        "instance": span.resource.attributes.get("service.instance.id"),
                        "trace_id": f"{ctx.trace_id:032x}",
                        "span_id": f"{ctx.span_id:016x}",
                        "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
                        "kind": span.kind.name,
                        "start": span.start_time,
                        "end": span.end_time,
                        "status": span.status.status_code.name,
                        "attributes": dict(span.attributes or {}),
                    },
                    default=str,
                )
            )
        with self._lock, open(self._path, "a", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
        return SpanExportResult.SUCCESS


def setup_telemetry(service_name: str, settings: SwitchboardSettings) -> None:
    """Install the process's tracer and meter providers (once). Exports only where configured."""
    global _configured
    if _configured:
        return
    _configured = True
    attributes = {"service.name": service_name, "service.namespace": "switchboard"}
    instance_id = getattr(settings, "instance_id", None)  # every process's settings has one; tells replicas apart
    if instance_id:
        attributes["service.instance.id"] = instance_id
    resource = Resource.create(attributes)

    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(QueryRedaction())  # first: no exporter sees a query string
    readers: list[MetricReader] = [PrometheusMetricReader()]
    if settings.otel_exporter_otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if settings.otel_exporter_otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        readers.append(
            PeriodicExportingMetricReader(
                OTLPMetricExporter(), export_interval_millis=settings.otel_metric_export_interval
            )
        )
    if settings.otel_file:
        tracer_provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(settings.otel_file)))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers, views=DURATION_VIEWS))
    _instrument_libraries()


async def metrics_endpoint(_request: Request) -> Response:
    """`GET /metrics`: this process's metrics in the Prometheus text format, for a Prometheus scrape."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def _instrument_libraries() -> None:
    try:
        from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

        PymongoInstrumentor().instrument()
    except ImportError:  # pragma: no cover - optional in a slim image
        log.debug("pymongo instrumentation not installed")
    try:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor().instrument()
    except ImportError:  # pragma: no cover
        log.debug("httpx instrumentation not installed")


def shutdown_telemetry() -> None:
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()
    meter_provider = metrics.get_meter_provider()
    if isinstance(meter_provider, MeterProvider):
        meter_provider.shutdown()


class _HeaderSetter:
    def set(self, carrier: KafkaHeaders, key: str, value: str) -> None:
        carrier.append((key, value.encode()))


class _HeaderGetter:
    def get(self, carrier: KafkaHeaders, key: str) -> list[str] | None:
        values = [v.decode(errors="replace") for k, v in carrier if k == key]
        return values or None

    def keys(self, carrier: KafkaHeaders) -> list[str]:
        return [k for k, _ in carrier]


def inject_headers(headers: KafkaHeaders, context: Context | None = None) -> KafkaHeaders:
    """Add the current (or given) trace context to Kafka headers, W3C `traceparent`/`tracestate`."""
    propagate.inject(headers, context=context, setter=_HeaderSetter())
    return headers


def extract_context(headers: Sequence[tuple[str, bytes]] | None) -> Context:
    return propagate.extract(list(headers or []), getter=_HeaderGetter())


tracer = trace.get_tracer("switchboard")
meter = metrics.get_meter("switchboard")


_outbox_depths: dict[str, int] = {}


def record_outbox_depth(service: str, depth: int) -> None:
    """What an outbox relay found overdue on its last pass (at most its batch): events not out yet."""
    _outbox_depths[service] = depth


meter.create_observable_gauge(
    "switchboard.outbox.depth",
    callbacks=[lambda _options: [Observation(n, {"service": s}) for s, n in list(_outbox_depths.items())]],
    description="Outbox entries past their grace period at the relay's last pass: events that did not get out.",
)
