"""Query strings are redacted in the URL attributes of every span a process makes."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from switchboard.redaction import QueryRedaction, redact_query, redact_url


def test_every_query_value_is_redacted_and_the_names_kept() -> None:
    assert redact_query("phone=%2B14155550123&token=s3cret&empty=") == "phone=REDACTED&token=REDACTED&empty=REDACTED"
    key = "sbk_0123456789abcdef_" + "A" * 43
    assert redact_query(key) == "REDACTED=REDACTED"
    assert redact_query("%2B14155550123&page=2") == "REDACTED=REDACTED&page=REDACTED"
    assert redact_query("") == ""
    assert redact_url("https://api.example/v1/orders?phone=+1415#frag") == "https://api.example/v1/orders?phone=REDACTED"
    assert redact_url("/admin/v1/accounts/a/contacts") == "/admin/v1/accounts/a/contacts"


def test_spans_start_with_their_query_redacted() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(QueryRedaction())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    attributes = {
        "url.query": "phone=%2B14155550123",
        "url.full": "https://contacts.example/search?q=%2B14155550123&key=abc",
        "http.url": "http://127.0.0.1/x?token=t0ken",
        "http.target": "/x?token=t0ken",
        "url.path": "/x",
    }
    with tracer.start_as_current_span("GET", attributes=attributes):
        pass
    (span,) = exporter.get_finished_spans()
    assert dict(span.attributes or {}) == {
        "url.query": "phone=REDACTED",
        "url.full": "https://contacts.example/search?q=REDACTED&key=REDACTED",
        "http.url": "http://127.0.0.1/x?token=REDACTED",
        "http.target": "/x?token=REDACTED",
        "url.path": "/x",
    }
