"""Every Prometheus metric Chat4All exposes, on the process-wide default registry.

Counters and histograms are per process; Prometheus adds up the gateways and workers. Label
values are bounded: route templates (never raw paths), channel names, consumer groups, topics.
docs/observability.md lists them with their meaning; the dashboards and alert rules in deploy/
use only these names (tests/integration/test_observability_deploy.py checks it).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from enum import IntEnum
from typing import ClassVar

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram
from prometheus_client import generate_latest as _generate_latest

from chat4all.domain.messages import Message
from chat4all.ports.connectors import SendError

__all__ = ["CONTENT_TYPE_LATEST", "REGISTRY"]

# Seconds: 1 ms to 10 s for requests; deliveries can wait for an offline recipient's ack, hence
# buckets up to an hour.
_REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_DELIVERY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)

HTTP_REQUEST_DURATION = Histogram(
    "chat4all_http_request_duration_seconds",
    "Time to answer an HTTP request, by method, route template and status code; its _count is "
    "the request rate.",
    ("method", "route", "status"),
    buckets=_REQUEST_BUCKETS,
)

MESSAGES_ACCEPTED = Counter(
    "chat4all_messages_accepted_total",
    "Messages stored and answered 202 (a repeated message_id is not counted again), by target "
    "channel.",
    ("channel",),
)
MESSAGES_DELIVERED = Counter(
    "chat4all_messages_delivered_total",
    "Per-recipient deliveries recorded (the recipient's client acknowledged, or the channel "
    "confirmed), by channel.",
    ("channel",),
)
MESSAGES_FAILED = Counter(
    "chat4all_messages_failed_total",
    "Per-recipient deliveries that failed for good, by channel.",
    ("channel",),
)
DELIVERY_LATENCY = Histogram(
    "chat4all_message_delivery_latency_seconds",
    "From a message's acceptance to its recorded delivery to one recipient, by channel.",
    ("channel",),
    buckets=_DELIVERY_BUCKETS,
)

BUS_CONSUMER_LAG = Gauge(
    "chat4all_bus_consumer_lag",
    "Events on the bus not yet committed by a consumer group, per topic, for the partitions "
    "this process consumes (sum over processes for the group's lag).",
    ("group", "topic"),
)
DEADLETTERED = Counter(
    "chat4all_bus_deadletter_events_total",
    "Events a worker gave up on and put on its group's dead-letter topic.",
    ("group",),
)

STREAM_CONNECTIONS = Gauge(
    "chat4all_stream_connections",
    "Real-time streams open on this process, by transport (websocket, grpc).",
    ("transport",),
)

# The next three are updated by the client-webhook and connector workers.
WEBHOOK_DELIVERY_ERRORS = Counter(
    "chat4all_webhook_delivery_errors_total",
    "Attempts to deliver a client webhook that failed, by reason (http_status: the endpoint "
    "answered other than 2xx; no_response: a refused URL, a timeout or a connection error); "
    "retries count once each.",
    ("reason",),
)
CONNECTOR_ERRORS = Counter(
    "chat4all_connector_errors_total",
    "Calls to an external platform's API (a connector) that failed, by channel and reason.",
    ("channel", "reason"),
)
CIRCUIT_BREAKER_STATE = Gauge(
    "chat4all_circuit_breaker_state",
    "State of each circuit breaker in front of an external endpoint: 0 closed, 1 half-open, "
    "2 open.",
    ("breaker",),
)


class BreakerState(IntEnum):
    """The values of `chat4all_circuit_breaker_state`."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


def count_webhook_error(status_code: int | None) -> None:
    WEBHOOK_DELIVERY_ERRORS.labels(
        "http_status" if status_code is not None else "no_response"
    ).inc()


class ChannelMetrics:
    """The delivery worker's listener: connector errors and circuit-breaker states."""

    _STATES: ClassVar[dict[str, BreakerState]] = {
        "closed": BreakerState.CLOSED,
        "half_open": BreakerState.HALF_OPEN,
        "open": BreakerState.OPEN,
    }

    def send_failed(self, channel: str, account_id: str, error: SendError) -> None:
        reason = error.code or ("retryable" if error.retryable else "permanent")
        CONNECTOR_ERRORS.labels(channel, reason).inc()

    def breaker_changed(self, channel: str, account_id: str, state: str) -> None:
        CIRCUIT_BREAKER_STATE.labels(f"{channel}:{account_id}").set(self._STATES[state])


def count_accepted(message: Message) -> None:
    # No target channels means default routing (internal plus the recipients' linked channels),
    # which the router decides later.
    for channel in message.target_channels or ("default",):
        _accepted(channel).inc()


@functools.cache  # on every send: `labels()` costs more than `inc()`; channels are few
def _accepted(channel: str) -> Counter:
    return MESSAGES_ACCEPTED.labels(channel)


def set_consumer_lag(group: str, lag: Mapping[str, int]) -> None:
    for topic, events in lag.items():
        BUS_CONSUMER_LAG.labels(group, topic).set(events)


def exposition() -> bytes:
    """The text format of every metric of this process, for `GET /metrics`."""
    return _generate_latest(REGISTRY)
