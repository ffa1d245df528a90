"""Events that cross the bus: the seed's topics and a CloudEvents-shaped envelope.

The key of every message event is its `conversation_id`, so one conversation's events keep their
order on every bus.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from chat4all.domain.messages import Message, StatusChange
from chat4all.domain.status import DeliveryStatus

SOURCE = "chat4all"
# The type of an event standing for a record a bus could not parse (another producer's bytes):
# its data holds the raw record (`key`, `value` and `headers` in base64, and the `error`). No
# worker can handle it, so it ends on the group's dead-letter topic with those bytes.
UNDECODABLE = "chat4all.undecodable"


# Where a new event learns the trace it belongs to: a function giving the current W3C
# `traceparent`, installed by the composition root when tracing is on (the domain knows no
# tracing library). Off, events carry none.
_trace_context: Callable[[], str | None] | None = None


def set_trace_context_provider(provider: Callable[[], str | None] | None) -> None:
    global _trace_context
    _trace_context = provider


def current_trace_context() -> str | None:
    """The `traceparent` of the span running now, if tracing is on and a span is."""
    return _trace_context() if _trace_context is not None else None


class Topic(StrEnum):
    MESSAGE_SENT = "message.sent"
    MESSAGE_DELIVERED = "message.delivered"
    MESSAGE_READ = "message.read"
    MESSAGE_FAILED = "message.failed"
    MESSAGE_DELIVERY = "message.delivery"  # delivery jobs: one per recipient and channel
    FILE_UPLOADED = "file.uploaded"
    USER_PRESENCE = "user.presence"
    CONVERSATION_CREATED = "conversation.created"
    CHANNEL_INBOUND = "channel.inbound"  # verified webhook contents, before they become messages
    DELIVERY_DEAD_LETTER = "deadletter.delivery"


@dataclass(frozen=True)
class Event:
    """One event: CloudEvents 1.0 attributes (`id`, `type`, `source`, `time`, `subject`) + data,
    and the distributed-tracing extension's `traceparent`: the span that made the event, so that
    the workers' spans join its trace."""

    type: str
    key: str
    data: dict[str, Any]
    time: datetime
    id: str = field(default_factory=lambda: str(uuid4()))
    source: str = SOURCE
    traceparent: str | None = field(default_factory=current_trace_context, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "id": self.id,
            "type": self.type,
            "source": self.source,
            "subject": self.key,
            "time": self.time.isoformat(),
            "data": self.data,
        }
        if self.traceparent is not None:
            out["traceparent"] = self.traceparent
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Event:
        return cls(
            id=raw["id"],
            type=raw["type"],
            source=raw.get("source", SOURCE),
            key=raw["subject"],
            time=datetime.fromisoformat(raw["time"]),
            data=raw["data"],
            traceparent=raw.get("traceparent"),
        )


def message_sent(message: Message, traceparent: str | None) -> Event:
    """`traceparent`: the trace of the send (stores build this event away from the request)."""
    return Event(
        type=Topic.MESSAGE_SENT,
        key=str(message.conversation_id),
        data=message.to_document(),
        time=message.created_at,
        id=f"sent:{message.message_id}",  # stable: a re-published outbox row keeps its id
        traceparent=traceparent,
    )


def file_uploaded(document: dict[str, Any], at: datetime | None) -> Event:
    """A file finished uploading; `document` is its `file_metadata`."""
    return Event(
        type=Topic.FILE_UPLOADED,
        key=document["conversation_id"],
        data=document,
        time=at or datetime.fromisoformat(document["updated_at"]),
        id=f"uploaded:{document['file_id']}",  # stable: announcing it again makes no twin
    )


def status_changed(change: StatusChange) -> Event:
    topic = {
        # A platform took the message (an external channel's `sent`): it travels with the
        # receipts, so the status worker records it in order with them.
        "sent": Topic.MESSAGE_DELIVERED,
        "delivered": Topic.MESSAGE_DELIVERED,
        "read": Topic.MESSAGE_READ,
        "failed": Topic.MESSAGE_FAILED,
    }[change.status.value]
    return Event(
        type=topic,
        key=str(change.conversation_id),
        data=status_change_to_dict(change),
        time=change.at,
    )


def read_up_to(
    conversation_id: UUID, reader_id: UUID, after_seq: int, up_to_seq: int, at: datetime
) -> Event:
    """A read watermark moved from `after_seq` to `up_to_seq`: those messages are read."""
    return Event(
        type=Topic.MESSAGE_READ,
        key=str(conversation_id),
        data={
            "conversation_id": str(conversation_id),
            "reader_id": str(reader_id),
            "after_sequence_number": after_seq,
            "up_to_sequence_number": up_to_seq,
            "at": at.isoformat(),
        },
        time=at,
    )


def status_change_to_dict(change: StatusChange) -> dict[str, Any]:
    return {
        "message_id": str(change.message_id),
        "conversation_id": str(change.conversation_id),
        "recipient_id": str(change.recipient_id),
        "channel": change.channel,
        "status": change.status.value,
        "at": change.at.isoformat(),
        "details": change.details,
    }


def status_change_from_dict(raw: dict[str, Any]) -> StatusChange:
    return StatusChange(
        message_id=UUID(raw["message_id"]),
        conversation_id=UUID(raw["conversation_id"]),
        recipient_id=UUID(raw["recipient_id"]),
        channel=raw["channel"],
        status=DeliveryStatus(raw["status"]),
        at=datetime.fromisoformat(raw["at"]),
        details=raw.get("details") or {},
    )
