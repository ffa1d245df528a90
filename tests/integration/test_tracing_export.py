"""Tracing is off without an OTLP endpoint, and with one it exports over OTLP/HTTP: a real HTTP
receiver on a free port gets the spans as protobuf."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from chat4all.devcluster import free_port
from chat4all.domain.events import current_trace_context
from chat4all.observability import tracing


class Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", free_port()), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Receiver.received = []
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(autouse=True)
def no_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in tracing.ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield
    tracing.configure(None)


def test_off_without_an_endpoint() -> None:
    assert tracing.configure_from_environment("chat4all-test") is None
    assert not tracing.enabled()
    with tracing.server_span("GET", {}) as span:
        assert span is None
        assert current_trace_context() is None


def test_spans_go_to_the_configured_collector(
    collector: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAT4ALL_OTEL_EXPORTER_OTLP_ENDPOINT", collector)
    provider = tracing.configure_from_environment("chat4all-test")
    assert provider is not None and tracing.enabled()
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with tracing.server_span("GET", {"traceparent": incoming}) as span:
        assert span is not None
        span.update_name("GET /healthz")
        traceparent = current_trace_context()
    assert traceparent is not None and traceparent.split("-")[1] == incoming.split("-")[1]
    provider.shutdown()  # flushes the batch

    [(path, content_type, body)] = Receiver.received
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    request = ExportTraceServiceRequest.FromString(body)
    [resource] = request.resource_spans
    service = {a.key: a.value.string_value for a in resource.resource.attributes}["service.name"]
    assert service == "chat4all-test"
    [span_data] = [s for scope in resource.scope_spans for s in scope.spans]
    assert span_data.name == "GET /healthz"
    assert span_data.trace_id.hex() == incoming.split("-")[1]
    assert span_data.parent_span_id.hex() == incoming.split("-")[2]
