"""OpenTelemetry traces: one trace from the HTTP request through the bus to the workers.

Off unless configured: without a tracer provider every helper here is a no-op that costs a
branch, and events carry no `traceparent`. `configure_from_environment` turns it on with an
OTLP/HTTP exporter when `CHAT4ALL_OTEL_EXPORTER_OTLP_ENDPOINT` or the standard
`OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set; tests call
`configure` with their own provider (an in-memory exporter).

The link across the bus: every event made while a span runs records that span's W3C
`traceparent` (`domain.events` asks `current_traceparent` through the hook installed here); a
worker handling the event starts its span as a child of it, and the events it makes in turn
carry the worker's span.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, Span, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from chat4all.domain.events import Event, set_trace_context_provider

TRACER_NAME = "chat4all"
ENDPOINT_VARIABLES = (
    "CHAT4ALL_OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)

_propagator = TraceContextTextMapPropagator()
_tracer: Tracer | None = None


def enabled() -> bool:
    return _tracer is not None


def configure(provider: trace.TracerProvider | None) -> None:
    """Trace with `provider` from now on (None: stop tracing). Process-wide, like logging."""
    global _tracer
    _tracer = provider.get_tracer(TRACER_NAME) if provider is not None else None
    set_trace_context_provider(current_traceparent if provider is not None else None)


def configure_from_environment(service_name: str) -> TracerProvider | None:
    """An SDK provider exporting over OTLP/HTTP when an endpoint is configured; else None and
    tracing stays off. The caller shuts the provider down at exit (flushes the last spans)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    ours = os.environ.get(ENDPOINT_VARIABLES[0])
    if not ours and not any(os.environ.get(name) for name in ENDPOINT_VARIABLES[1:]):
        return None
    # The exporter reads the standard variables itself; ours is a base URL like theirs.
    exporter = OTLPSpanExporter(endpoint=f"{ours.rstrip('/')}/v1/traces") if ours else None
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)}
        )
    )
    provider.add_span_processor(BatchSpanProcessor(exporter or OTLPSpanExporter()))
    configure(provider)
    return provider


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the span running now, or None."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


def _parent(traceparent: str | None) -> otel_context.Context | None:
    if traceparent is None:
        return None
    return _propagator.extract({"traceparent": traceparent})


@contextlib.contextmanager
def server_span(name: str, headers: Mapping[str, str]) -> Iterator[Span | None]:
    """The span of one HTTP request, continuing the caller's trace when it sent `traceparent`."""
    if _tracer is None:
        yield None
        return
    parent = _propagator.extract(headers)
    with _tracer.start_as_current_span(name, context=parent, kind=SpanKind.SERVER) as span:
        yield span


@contextlib.contextmanager
def consuming(name: str, event: Event, **attributes: Any) -> Iterator[None]:
    """A worker's span for one event, a child of the span that made the event."""
    if _tracer is None or event.traceparent is None:
        yield
        return
    with _tracer.start_as_current_span(
        name,
        context=_parent(event.traceparent),
        kind=SpanKind.CONSUMER,
        attributes={"messaging.message.id": event.id, "messaging.destination.name": event.type}
        | attributes,
    ):
        yield


@contextlib.contextmanager
def batch_span(name: str, events: Sequence[Event]) -> Iterator[None]:
    """One span for work done on a batch at once, linked to every event's own trace."""
    if _tracer is None:
        yield
        return
    links = [
        Link(trace.get_current_span(parent).get_span_context())
        for parent in (_parent(e.traceparent) for e in events)
        if parent is not None
    ]
    if not links:
        yield
        return
    with _tracer.start_as_current_span(
        name,
        kind=SpanKind.CONSUMER,
        links=links,
        attributes={"messaging.batch.message_count": len(events)},
    ):
        yield


@contextlib.contextmanager
def producing(name: str, events: Sequence[Event]) -> Iterator[list[Event]]:
    """Spans for handing traced events on (the outbox relay): each event comes back carrying
    its span, a child of the event's own; the spans end when the block does."""
    if _tracer is None:
        yield list(events)
        return
    spans: list[Span] = []
    out: list[Event] = []
    for event in events:
        if event.traceparent is None:
            out.append(event)
            continue
        span = _tracer.start_span(
            name,
            context=_parent(event.traceparent),
            kind=SpanKind.PRODUCER,
            attributes={"messaging.message.id": event.id, "messaging.destination.name": event.type},
        )
        spans.append(span)
        carrier: dict[str, str] = {}
        _propagator.inject(carrier, context=trace.set_span_in_context(span))
        out.append(replace(event, traceparent=carrier.get("traceparent")))
    try:
        yield out
    finally:
        for span in spans:
            span.end()


@contextlib.contextmanager
def client_span(name: str, **attributes: Any) -> Iterator[None]:
    """A span around a call to something outside (a connector's platform API)."""
    if _tracer is None:
        yield
        return
    with _tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes):
        yield
