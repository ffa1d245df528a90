"""Messages: the seed's `messages` document, its payload and how statuses are applied to it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from chat4all.domain.errors import InvalidInput
from chat4all.domain.status import DeliveryStatus, aggregate, best_of, can_advance

INTERNAL_CHANNEL = "internal"
# In `target_channels`: internal plus every channel the recipient linked.
ALL_CHANNELS = "all"
# Sequence numbers fit a signed 64-bit integer in every store; larger ones are refused at the edge.
MAX_SEQUENCE_NUMBER = 2**63 - 1


class PayloadType(StrEnum):
    TEXT = "text"
    FILE = "file"
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"


@dataclass(frozen=True)
class Payload:
    type: PayloadType
    text: str | None = None
    file_reference: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def check(self, max_text_length: int) -> None:
        if self.type is PayloadType.TEXT:
            if self.text is None or not self.text.strip():
                raise InvalidInput("a text message needs a non-empty `payload.text`")
            if len(self.text) > max_text_length:
                raise InvalidInput(
                    f"`payload.text` is {len(self.text)} characters; the limit is {max_text_length}"
                )
        elif self.file_reference is None or "file_id" not in self.file_reference:
            raise InvalidInput(f"a {self.type} message needs a `payload.file_id`")
        elif self.text is not None and len(self.text) > max_text_length:
            raise InvalidInput(f"a caption is limited to {max_text_length} characters")

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"type": self.type.value, "metadata": self.metadata}
        if self.text is not None:
            doc["text"] = self.text
        if self.file_reference is not None:
            doc["file_reference"] = self.file_reference
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Payload:
        return cls(
            type=PayloadType(doc["type"]),
            text=doc.get("text"),
            file_reference=doc.get("file_reference"),
            metadata=doc.get("metadata") or {},
        )


@dataclass(frozen=True)
class StatusChange:
    """One recipient's status on one channel moved (or is claimed to have moved)."""

    message_id: UUID
    conversation_id: UUID
    recipient_id: UUID
    channel: str
    status: DeliveryStatus
    at: datetime
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChannelDelivery:
    status: DeliveryStatus
    updated_at: datetime
    history: tuple[tuple[DeliveryStatus, datetime], ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NewMessage:
    """A message as a sender submits it, before the store gives it a sequence number."""

    message_id: UUID
    conversation_id: UUID
    from_user_id: UUID
    to_user_ids: tuple[UUID, ...]
    payload: Payload
    target_channels: tuple[str, ...] = (INTERNAL_CHANNEL,)
    reply_to_message_id: UUID | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """A digest of what the sender asked for; the same id with another digest is a conflict."""
        p = self.payload
        parts = (
            str(self.conversation_id),
            str(self.from_user_id),
            p.type.value,
            p.text if p.text is not None else "\x00",
            _canonical_json(p.file_reference),
            _canonical_json(p.metadata),
            ",".join(self.target_channels),
            str(self.reply_to_message_id or ""),
            _canonical_json(self.metadata),
        )
        # Length-prefixed, so no two different bodies make the same string.
        canonical = "".join(f"{len(part)}:{part}" for part in parts)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def stored(self, sequence_number: int, now: datetime, ttl: timedelta | None) -> Message:
        channels = (
            {INTERNAL_CHANNEL: None}
            if not self.target_channels
            else dict.fromkeys(self.target_channels)
        )
        return Message(
            message_id=self.message_id,
            conversation_id=self.conversation_id,
            from_user_id=self.from_user_id,
            to_user_ids=self.to_user_ids,
            payload=self.payload,
            target_channels=self.target_channels,
            sequence_number=sequence_number,
            status=DeliveryStatus.SENT,
            status_history=({"status": "sent", "timestamp": now.isoformat(), "details": {}},),
            channel_delivery={
                str(r): {
                    c: ChannelDelivery(DeliveryStatus.SENT, now, ((DeliveryStatus.SENT, now),))
                    for c in channels
                }
                for r in self.to_user_ids
            },
            reply_to_message_id=self.reply_to_message_id,
            metadata=self.metadata,
            created_at=now,
            updated_at=now,
            ttl_expire_at=now + ttl if ttl else None,
            fingerprint=self.fingerprint(),
        )


@dataclass(frozen=True)
class Message:
    """The seed's `messages` document. `channel_delivery` is keyed by recipient, then channel."""

    message_id: UUID
    conversation_id: UUID
    from_user_id: UUID
    to_user_ids: tuple[UUID, ...]
    payload: Payload
    target_channels: tuple[str, ...]
    sequence_number: int
    status: DeliveryStatus
    status_history: tuple[dict[str, Any], ...]
    channel_delivery: dict[str, dict[str, ChannelDelivery]]
    created_at: datetime
    updated_at: datetime
    reply_to_message_id: UUID | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    is_edited: bool = False
    is_deleted: bool = False
    ttl_expire_at: datetime | None = None
    fingerprint: str = ""

    def recipient_status(self, recipient_id: UUID) -> DeliveryStatus | None:
        channels = self.channel_delivery.get(str(recipient_id))
        return best_of(c.status for c in channels.values()) if channels else None

    def apply(self, change: StatusChange) -> Message | None:
        """The message after `change`, or None when the change is not a step forward."""
        recipient = str(change.recipient_id)
        channels = self.channel_delivery.get(recipient)
        if channels is None:
            return None  # the sender, or not a recipient of this message
        current = channels.get(change.channel)
        if current is not None and not can_advance(current.status, change.status):
            return None
        history = (current.history if current else ()) + ((change.status, change.at),)
        details = {**(current.details if current else {}), **change.details}
        new_channels = {
            **channels,
            change.channel: ChannelDelivery(change.status, change.at, history, details),
        }
        delivery = {**self.channel_delivery, recipient: new_channels}
        entry: dict[str, Any] = {
            "status": change.status.value,
            "timestamp": change.at.isoformat(),
            "recipient_id": recipient,
            "channel": change.channel,
            "details": change.details,
        }
        overall = aggregate(best_of(c.status for c in chs.values()) for chs in delivery.values())
        return replace(
            self,
            channel_delivery=delivery,
            status=overall,
            status_history=(*self.status_history, entry),
            updated_at=max(self.updated_at, change.at),
        )

    def to_document(self) -> dict[str, Any]:
        """The message as the seed's document, in JSON-ready types."""
        return {
            "message_id": str(self.message_id),
            "conversation_id": str(self.conversation_id),
            "from_user_id": str(self.from_user_id),
            "to_user_ids": [str(u) for u in self.to_user_ids],
            "payload": self.payload.to_document(),
            "target_channels": list(self.target_channels),
            "status": self.status.value,
            "status_history": list(self.status_history),
            "channel_delivery": {
                r: {
                    c: {
                        "status": d.status.value,
                        "updated_at": d.updated_at.isoformat(),
                        "history": [[s.value, t.isoformat()] for s, t in d.history],
                        "details": d.details,
                    }
                    for c, d in chs.items()
                }
                for r, chs in self.channel_delivery.items()
            },
            "sequence_number": self.sequence_number,
            "reply_to_message_id": str(self.reply_to_message_id)
            if self.reply_to_message_id
            else None,
            "metadata": self.metadata,
            "is_edited": self.is_edited,
            "is_deleted": self.is_deleted,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "ttl_expire_at": self.ttl_expire_at.isoformat() if self.ttl_expire_at else None,
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Message:
        ts = datetime.fromisoformat
        return cls(
            message_id=UUID(doc["message_id"]),
            conversation_id=UUID(doc["conversation_id"]),
            from_user_id=UUID(doc["from_user_id"]),
            to_user_ids=tuple(UUID(u) for u in doc["to_user_ids"]),
            payload=Payload.from_document(doc["payload"]),
            target_channels=tuple(doc["target_channels"]),
            sequence_number=int(doc["sequence_number"]),
            status=DeliveryStatus(doc["status"]),
            status_history=tuple(doc["status_history"]),
            channel_delivery={
                r: {
                    c: ChannelDelivery(
                        DeliveryStatus(d["status"]),
                        ts(d["updated_at"]),
                        tuple((DeliveryStatus(s), ts(t)) for s, t in d["history"]),
                        d.get("details") or {},
                    )
                    for c, d in chs.items()
                }
                for r, chs in doc["channel_delivery"].items()
            },
            reply_to_message_id=UUID(doc["reply_to_message_id"])
            if doc.get("reply_to_message_id")
            else None,
            metadata=doc.get("metadata") or {},
            is_edited=bool(doc.get("is_edited")),
            is_deleted=bool(doc.get("is_deleted")),
            created_at=ts(doc["created_at"]),
            updated_at=ts(doc["updated_at"]),
            ttl_expire_at=ts(doc["ttl_expire_at"]) if doc.get("ttl_expire_at") else None,
            fingerprint=doc.get("fingerprint", ""),
        )


def _canonical_json(value: dict[str, Any] | None) -> str:
    if not value:  # the usual case, and the cheap one
        return ""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class ConversationSummary:
    """The seed's `conversation_history` in short: where a conversation's log stands."""

    conversation_id: UUID
    last_sequence_number: int
    last_message_at: datetime | None
    last_message: dict[str, Any] | None
