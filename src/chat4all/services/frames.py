"""What clients see of a message, and the stream's frames (`{"type": ..., "data": ...}`)."""

from __future__ import annotations

from typing import Any

import orjson

from chat4all.domain.messages import Message, StatusChange


def message_view(message: Message, full: bool = True) -> dict[str, Any]:
    """The message as the API shows it; `full` adds per-recipient, per-channel statuses."""
    view: dict[str, Any] = {
        "message_id": str(message.message_id),
        "conversation_id": str(message.conversation_id),
        "sequence_number": message.sequence_number,
        "from_user_id": str(message.from_user_id),
        "to_user_ids": [str(u) for u in message.to_user_ids],
        "payload": message.payload.to_document(),
        "target_channels": list(message.target_channels),
        "reply_to_message_id": str(message.reply_to_message_id)
        if message.reply_to_message_id
        else None,
        "status": message.status.value,
        "is_edited": message.is_edited,
        "is_deleted": message.is_deleted,
        "created_at": message.created_at.isoformat(),
        "updated_at": message.updated_at.isoformat(),
    }
    if full:
        view["channel_delivery"] = {
            recipient: {
                channel: {"status": d.status.value, "updated_at": d.updated_at.isoformat()}
                | ({"details": d.details} if d.details else {})
                for channel, d in channels.items()
            }
            for recipient, channels in message.channel_delivery.items()
        }
        view["status_history"] = list(message.status_history)
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
