"""The seed's MongoDB documents, built on the domain's own codec (`Message.to_document()`).

What differs from the domain's JSON-ready document, and why:

- `ttl_expire_at` is a BSON date, because MongoDB's TTL monitor only expires dates. BSON dates
  keep milliseconds, so the store rounds the expiry up to the next millisecond before it builds
  the message: a message never expires early, and what `append` returns is what `get` reads.
- Every other time stays the domain's ISO-8601 text with microseconds (UTC, so it sorts as
  time), and reads back exactly.
- A channel's `history` is a list of `{status, at}` documents instead of `[status, at]` pairs:
  FerretDB refuses nested arrays.
- Store-only fields: `revision` (bumped by every status write, for compare-and-set),
  `outbox_pending` and `outbox_key` (the message's `message.sent` outbox entry; removed once
  relayed).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from chat4all.domain.messages import Message, NewMessage

PREVIEW_CHARS: Final = 100
STATUS_FIELDS: Final = ("status", "status_history", "channel_delivery", "updated_at")


def ceil_to_millisecond(at: datetime) -> datetime:
    """`at` rounded up to what a BSON date can hold."""
    extra = at.microsecond % 1000
    return at + timedelta(microseconds=1000 - extra) if extra else at


def stored_message(
    new: NewMessage, sequence_number: int, now: datetime, ttl: timedelta | None
) -> Message:
    """`new` as stored under `sequence_number`, with its expiry at the store's precision."""
    message = new.stored(sequence_number, now, ttl)
    if message.ttl_expire_at is not None:
        message = replace(message, ttl_expire_at=ceil_to_millisecond(message.ttl_expire_at))
    return message


def as_appended(message: Message) -> Message:
    """The message as `append` stored it, before any status moved: the `message.sent` event's
    content, rebuilt by the domain's own rules from what never changes."""
    new = NewMessage(
        message_id=message.message_id,
        conversation_id=message.conversation_id,
        from_user_id=message.from_user_id,
        to_user_ids=message.to_user_ids,
        payload=message.payload,
        target_channels=message.target_channels,
        reply_to_message_id=message.reply_to_message_id,
        metadata=message.metadata,
    )
    first = new.stored(message.sequence_number, message.created_at, None)
    return replace(first, ttl_expire_at=message.ttl_expire_at)


def encode_document(document: dict[str, Any]) -> dict[str, Any]:
    """A domain document (`Message.to_document()`) as the `messages` collection holds it."""
    doc = dict(document)
    doc["channel_delivery"] = _encode_delivery(document["channel_delivery"])
    expire = document.get("ttl_expire_at")
    doc["ttl_expire_at"] = datetime.fromisoformat(expire) if expire else None
    return doc


def status_fields(message: Message) -> dict[str, Any]:
    """The fields a status change rewrites, encoded."""
    document = message.to_document()
    fields = {name: document[name] for name in STATUS_FIELDS}
    fields["channel_delivery"] = _encode_delivery(document["channel_delivery"])
    return fields


def decode_message(doc: dict[str, Any]) -> Message:
    """A `messages` document back to the domain's message."""
    document = dict(doc)
    document["channel_delivery"] = {
        recipient: {
            channel: {**delivery, "history": [[h["status"], h["at"]] for h in delivery["history"]]}
            for channel, delivery in channels.items()
        }
        for recipient, channels in doc["channel_delivery"].items()
    }
    expire = doc.get("ttl_expire_at")
    document["ttl_expire_at"] = expire.astimezone(UTC).isoformat() if expire else None
    return Message.from_document(document)


def preview(document: dict[str, Any]) -> dict[str, Any]:
    """What a conversation list shows of the last message (the seed's `last_message`).
    `sequence_number` comes first: `$max` compares documents field by field, so the newer
    message's preview always wins, whatever order concurrent writers arrive in."""
    payload = document["payload"]
    text = payload.get("text")
    return {
        "sequence_number": document["sequence_number"],
        "message_id": document["message_id"],
        "from_user_id": document["from_user_id"],
        "type": payload["type"],
        "text": text[:PREVIEW_CHARS] if text is not None else None,
        "created_at": document["created_at"],
    }


def _encode_delivery(delivery: dict[str, Any]) -> dict[str, Any]:
    return {
        recipient: {
            channel: {**d, "history": [{"status": s, "at": t} for s, t in d["history"]]}
            for channel, d in channels.items()
        }
        for recipient, channels in delivery.items()
    }
