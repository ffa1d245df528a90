"""What clients see of a message, and the stream's frames (`{"type": ..., "data": ...}`)."""

from __future__ import annotations

from typing import Any

import orjson

from chat4all.domain.messages import Message, StatusChange

_SHOWN = (
    "message_id",
    "conversation_id",
    "sequence_number",
    "from_user_id",
    "to_user_ids",
    "payload",
    "target_channels",
    "reply_to_message_id",
    "status",
    "is_edited",
    "is_deleted",
    "created_at",
    "updated_at",
)


def message_view(message: Message, full: bool = True) -> dict[str, Any]:
    """The message as the API shows it; `full` adds per-recipient, per-channel statuses."""
    return document_view(message.to_document(), full)


def document_view(doc: dict[str, Any], full: bool = False) -> dict[str, Any]:
    """`message_view` straight from the stored document, without parsing it into a Message
    (the router does this for every message)."""
    view = {key: doc[key] for key in _SHOWN}
    if full:
        view["channel_delivery"] = {
            recipient: {
                channel: {"status": d["status"], "updated_at": d["updated_at"]}
                | ({"details": d["details"]} if d.get("details") else {})
                for channel, d in channels.items()
            }
            for recipient, channels in doc["channel_delivery"].items()
        }
        view["status_history"] = doc["status_history"]
    return view


def frame(kind: str, data: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": kind, "data": data})


def message_new(view: dict[str, Any]) -> bytes:
    return frame("message.new", view)


def message_status(change: StatusChange) -> bytes:
    return frame(
        "message.status",
        {
            "message_id": str(change.message_id),
            "conversation_id": str(change.conversation_id),
            "recipient_id": str(change.recipient_id),
            "channel": change.channel,
            "status": change.status.value,
            "at": change.at.isoformat(),
        },
    )
