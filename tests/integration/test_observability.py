"""Metrics, traces, logs and readiness of a running server (embedded profile, real HTTP)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any
from uuid import uuid4

import httpx
import orjson
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from chat4all.adapters.clock import SystemClock
from chat4all.adapters.redis import RedisRealtime
from chat4all.bootstrap import Platform
from chat4all.devcluster import free_port
from chat4all.observability import tracing
from chat4all.observability.logs import JsonFormatter
from tests.integration.harness import register, running_server, settings_for_tests

SEND_ROUTE = "/v1/conversations/{conversation_id}/messages"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def scrape(http: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    r = await http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return samples(r.text)


async def test_metrics_count_requests_by_route_messages_and_deliveries(http, base_url):
    alice, bob = await register(http), await register(http)
    cid = await alice.private_with(bob)
    before = await scrape(http)
    async with bob.stream(base_url) as stream:
        during = await scrape(http)
        assert value(during, "chat4all_stream_connections", transport="websocket") >= 1
        await alice.send(cid, "one")
        await alice.send(cid, "two")
        await stream.messages(2)  # acked: delivered
        missing = await alice.post(f"/v1/conversations/{uuid4()}/messages", {"nope": 1})
        assert missing.status_code == 422
        deadline = asyncio.get_running_loop().time() + 10
        while True:  # the status worker records the deliveries after the acks
            after = await scrape(http)
            delivered = value(after, "chat4all_messages_delivered_total", channel="internal")
            if (
                delivered - value(before, "chat4all_messages_delivered_total", channel="internal")
                >= 2
            ):
                break
            assert asyncio.get_running_loop().time() < deadline, "deliveries never counted"
            await asyncio.sleep(0.05)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    route = {"method": "POST", "route": SEND_ROUTE}
    assert grew("chat4all_http_request_duration_seconds_count", **route, status="202") == 2
    assert grew("chat4all_http_request_duration_seconds_count", **route, status="422") == 1
    # The raw path never becomes a label.
    assert not any(cid in str(labels) for _, labels in after)
    assert grew("chat4all_messages_accepted_total", channel="default") == 2
    assert grew("chat4all_message_delivery_latency_seconds_count", channel="internal") == 2
    lags = {dict(labels)["group"] for name, labels in after if name == "chat4all_bus_consumer_lag"}
    assert {"router", "delivery", "status"} <= lags


async def test_replayed_send_is_not_accepted_twice(http):
    alice, bob = await register(http), await register(http)
    cid = await alice.private_with(bob)
    before = await scrape(http)
    message_id = str(uuid4())
    await alice.send(cid, "once", message_id)
    await alice.send(cid, "once", message_id)
    after = await scrape(http)
    accepted = "chat4all_messages_accepted_total"
    assert (
        value(after, accepted, channel="default") - value(before, accepted, channel="default") == 1
    )


# --- readiness ---------------------------------------------------------------------------------


async def test_ready_when_everything_answers(http):
    r = await http.get("/readyz")
    assert r.status_code == 200
    assert set(r.json()["checks"]) >= {"metadata", "messages", "bus", "worker:relay"}
    assert (await http.get("/healthz")).json() == {"status": "ok"}


async def _with_dead_redis_and_a_hung_registry(platform: Platform) -> None:
    realtime = await RedisRealtime.connect(
        f"redis://127.0.0.1:{free_port()}/0", clock=SystemClock(), prefix=f"t{uuid4().hex}:"
    )

    async def hangs() -> None:
        await asyncio.Event().wait()

    platform.probes |= {"realtime": realtime.ping, "registry": hangs}
    platform.closers.append(realtime.close)


async def test_not_ready_names_what_is_down(tmp_path):
    settings = settings_for_tests(tmp_path)
    async with (
        running_server(settings, _with_dead_redis_and_a_hung_registry) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as http,
    ):
        r = await http.get("/readyz")
        assert r.status_code == 503
        assert r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert body["down"] == ["realtime", "registry"]
        assert body["checks"]["bus"] == "ok" and body["checks"]["metadata"] == "ok"
        assert "no answer within" in body["checks"]["registry"]
        assert "realtime" in body["detail"] and "registry" in body["detail"]
        assert (await http.get("/healthz")).status_code == 200


# --- traces and logs ---------------------------------------------------------------------------


class Captured(logging.Handler):
    """Every record of the process, formatted as the JSON lines a server writes."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.configure(provider)
    try:
        yield exporter
    finally:
        tracing.configure(None)
        provider.shutdown()


@pytest.fixture
def logs() -> Iterator[Captured]:
    handler, root = Captured(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
async def traced_url(tmp_path, spans, logs) -> AsyncIterator[str]:
    async with running_server(settings_for_tests(tmp_path)) as url:
        yield url


async def _spans_until(exporter: InMemorySpanExporter, names: set[str]) -> list[ReadableSpan]:
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        finished = list(exporter.get_finished_spans())
        if names <= {s.name for s in finished}:
            return finished
        assert asyncio.get_running_loop().time() < deadline, {s.name for s in finished}
        await asyncio.sleep(0.05)


async def test_one_send_is_one_trace_from_the_gateway_to_the_delivery_worker(
    traced_url, spans, logs
):
    async with httpx.AsyncClient(base_url=traced_url, timeout=10) as http:
        alice, bob = await register(http), await register(http)
        cid = await alice.private_with(bob)
        async with bob.stream(traced_url) as stream:
            spans.clear()
            sent = await alice.send(cid, "trace me")
            await stream.messages(1)
            request = f"POST {SEND_ROUTE}"
            finished = await _spans_until(spans, {request, "outbox relay", "router", "delivery"})

    [http_span] = [s for s in finished if s.name == request]
    trace_id = http_span.context.trace_id
    in_trace = [s for s in finished if s.context.trace_id == trace_id]
    by_id = {s.context.span_id: s for s in in_trace}

    def chain(span: ReadableSpan) -> list[str]:
        names = [span.name]
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            names.append(span.name)
        return names

    deliveries = [s for s in in_trace if s.name == "delivery"]
    # One job to bob, one to alice's other devices: both descend from the request.
    assert len(deliveries) == 2
    for delivery in deliveries:
        assert chain(delivery) == ["delivery", "router", "outbox relay", request]
    assert http_span.attributes is not None
    assert http_span.attributes["http.response.status_code"] == 202

    # The gateway's log line of this send carries the ids and the trace.
    accepted = [
        line for line in map(orjson.loads, logs.lines) if line["message"] == "message accepted"
    ]
    mine = [line for line in accepted if line["message_id"] == sent["message_id"]]
    assert mine and mine[0]["conversation_id"] == cid
    assert mine[0]["trace_id"] == format(trace_id, "032x")


async def test_no_message_text_reaches_the_logs(traced_url, logs):
    secret = f"do-not-log-{uuid4().hex}"
    async with httpx.AsyncClient(base_url=traced_url, timeout=10) as http:
        alice, bob = await register(http), await register(http)
        cid = await alice.private_with(bob)
        async with bob.stream(traced_url) as stream:
            sent = await alice.send(cid, secret)
            [got] = await stream.messages(1)
            assert got["payload"]["text"] == secret
            await bob.post(f"/v1/conversations/{cid}/read", {"up_to_sequence_number": 1})
            # Failures are logged too: a channel without a connector, and a rejected body.
            failing: dict[str, Any] = {
                "message_id": str(uuid4()),
                "payload": {"type": "text", "text": secret},
                "target_channels": ["nowhere"],
            }
            assert (
                await alice.post(f"/v1/conversations/{cid}/messages", failing)
            ).status_code == 202
            too_long = {
                "message_id": str(uuid4()),
                "payload": {"type": "text", "text": secret * 500},
            }
            assert (
                await alice.post(f"/v1/conversations/{cid}/messages", too_long)
            ).status_code == 422
            deadline = asyncio.get_running_loop().time() + 10
            while not any("delivery failed" in line for line in logs.lines):
                assert asyncio.get_running_loop().time() < deadline, "the failure was never logged"
                await asyncio.sleep(0.05)
    assert any(sent["message_id"] in line for line in logs.lines)  # the logs were captured
    assert not [line for line in logs.lines if secret in line]
