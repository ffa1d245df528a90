"""Events as Kafka records: the CloudEvents 1.0 Kafka protocol binding, binary content mode.

The record key is `event.key` (the conversation id), so the partitioner keeps one key's events in
one partition. The attributes travel as `ce_*` headers (`ce_specversion`, `ce_id`, `ce_source`,
`ce_type`, `ce_time`, `ce_subject`, and the distributed-tracing extension's `ce_traceparent` when
the event has one) with `content-type: application/json`; the value is the event's `data` as JSON.
Parsing goes through `Event.from_dict`, as on the embedded log, so both buses give back equal
events.

A record that does not parse (another producer's bytes, a missing header) becomes an event of
type `UNDECODABLE` carrying the raw record, never an exception: one bad record must not stop a
consumer, and the workers dead-letter what they cannot handle.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from chat4all.domain.events import UNDECODABLE, Event

SPEC_VERSION: Final = b"1.0"
CONTENT_TYPE: Final = b"application/json"
Headers = list[tuple[str, str | bytes | None]]


def encode(event: Event) -> tuple[bytes, bytes, Headers]:
    """The record's key, value and headers for `event`."""
    headers: Headers = [
        ("ce_specversion", SPEC_VERSION),
        ("ce_id", event.id.encode()),
        ("ce_source", event.source.encode()),
        ("ce_type", event.type.encode()),
        ("ce_time", event.time.isoformat().encode()),
        ("ce_subject", event.key.encode()),
        ("content-type", CONTENT_TYPE),
    ]
    if event.traceparent is not None:  # the CloudEvents distributed-tracing extension
        headers.append(("ce_traceparent", event.traceparent.encode()))
    return event.key.encode(), orjson.dumps(event.data), headers


def decode(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, str | bytes | None]] | Mapping[str, str | bytes | None] | None,
    timestamp_ms: int,
) -> Event:
    """The event in a record; an `UNDECODABLE` event holding the record if it is not one."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    found = {
        name: raw.encode() if isinstance(raw, str) else raw
        for name, raw in pairs
        if raw is not None
    }
    try:
        attributes = {
            name: found[f"ce_{name}"].decode() for name in ("id", "type", "source", "time")
        }
        subject = found.get("ce_subject")
        traceparent = found.get("ce_traceparent")
        data = orjson.loads(value if value is not None else b"null")
        if found.get("ce_specversion") != SPEC_VERSION or not isinstance(data, dict):
            raise ValueError("not a CloudEvents 1.0 record with a JSON object as data")
        return Event.from_dict(
            {
                **attributes,
                "subject": subject.decode() if subject is not None else _text(key),
                "data": data,
                "traceparent": traceparent.decode() if traceparent is not None else None,
            }
        )
    except (KeyError, ValueError, TypeError) as e:  # orjson and UnicodeDecodeError are ValueErrors
        return _undecodable(topic, partition, offset, key, value, found, timestamp_ms, e)


def _undecodable(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: dict[str, bytes],
    timestamp_ms: int,
    error: Exception,
) -> Event:
    data: dict[str, Any] = {
        "error": f"{type(error).__name__}: {error}",
        "key": _base64(key),
        "value": _base64(value),
        "headers": {name: _base64(raw) for name, raw in headers.items()},
    }
    return Event(
        type=UNDECODABLE,
        key=_text(key),
        data=data,
        time=datetime.fromtimestamp(max(timestamp_ms, 0) / 1000, UTC),
        id=f"undecodable:{topic}:{partition}:{offset}",  # stable: a redelivery keeps its id
    )


def _text(raw: bytes | None) -> str:
    return raw.decode(errors="replace") if raw is not None else ""


def _base64(raw: bytes | None) -> str | None:
    return base64.b64encode(raw).decode() if raw is not None else None
