"""Protobuf messages back into domain objects and stream frames; domain values into request
fields. The conventions are `chat4all.api.grpc.codec`'s, read the other way round."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
from google.protobuf.timestamp_pb2 import Timestamp

from chat4all.domain.conversations import Conversation, ConversationType, Member, Role
from chat4all.domain.errors import InvalidInput
from chat4all.domain.messages import ConversationSummary, Message, Payload
from chat4all.domain.users import User
from chat4all.ports.realtime import PresenceState
from chat4all.services.frames import document_view
from chat4all.services.interfaces import ConversationView, Frame
from chat4all.v1 import (
    auth_pb2,
    common_pb2,
    conversation_pb2,
    events_pb2,
    message_pb2,
    presence_pb2,
)

# -- domain values -> request fields


def json_text(value: dict[str, Any] | None) -> str:
    try:
        return orjson.dumps(value).decode() if value else ""
    except orjson.JSONEncodeError as e:
        raise InvalidInput(f"metadata cannot be stored: {e}") from e


def payload(p: Payload) -> message_pb2.Payload:
    file_id = (p.file_reference or {}).get("file_id")
    return message_pb2.Payload(
        type=common_pb2.PayloadType.Value("PAYLOAD_TYPE_" + p.type.value.upper()),
        text=p.text,
        file_id=str(file_id) if file_id is not None else None,
        metadata_json=json_text(p.metadata),
    )


def conversation_type(kind: ConversationType) -> conversation_pb2.ConversationType.ValueType:
    return conversation_pb2.ConversationType.Value("CONVERSATION_TYPE_" + kind.value.upper())


def role(value: Role) -> conversation_pb2.Role.ValueType:
    return conversation_pb2.Role.Value("ROLE_" + value.value.upper())


# -- responses -> domain values


def time(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def iso(ts: Timestamp) -> str:
    return time(ts).isoformat()


def _enum_name(name: str, prefix: str) -> str:
    return name.removeprefix(prefix).lower()


def status_text(value: common_pb2.DeliveryStatus.ValueType) -> str:
    return _enum_name(common_pb2.DeliveryStatus.Name(value), "DELIVERY_STATUS_")


def payload_type_text(value: common_pb2.PayloadType.ValueType) -> str:
    return _enum_name(common_pb2.PayloadType.Name(value), "PAYLOAD_TYPE_")


def _json(text: str) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(text) if text else {}
    return value


def user(u: auth_pb2.User) -> User:
    """A user as the service shows it: never with its password hash (which stays in the auth
    service), and with `updated_at` as `created_at`."""
    created = time(u.created_at)
    return User(UUID(u.user_id), u.username, u.email, "", created, created)


def member(m: conversation_pb2.Member) -> Member:
    return Member(
        user_id=UUID(m.user_id),
        role=Role(_enum_name(conversation_pb2.Role.Name(m.role), "ROLE_")),
        joined_at=time(m.joined_at),
        last_read_seq=m.last_read_sequence_number,
        last_delivered_seq=m.last_delivered_sequence_number,
    )


def conversation(c: conversation_pb2.Conversation) -> ConversationView:
    cid = UUID(c.conversation_id)
    created = time(c.created_at)
    kind = _enum_name(conversation_pb2.ConversationType.Name(c.type), "CONVERSATION_TYPE_")
    summary = None
    if c.last_sequence_number or c.HasField("last_message"):
        last = None
        if c.HasField("last_message"):
            m = c.last_message
            last = {
                "message_id": m.message_id,
                "from_user_id": m.from_user_id,
                "type": payload_type_text(m.type),
                "text": m.text if m.HasField("text") else None,
                "sequence_number": m.sequence_number,
                "created_at": iso(m.created_at),
            }
        summary = ConversationSummary(
            cid,
            c.last_sequence_number,
            time(c.last_message_at) if c.HasField("last_message_at") else None,
            last,
        )
    return ConversationView(
        Conversation(
            cid,
            ConversationType(kind),
            UUID(c.created_by),
            created,
            created,
            _json(c.metadata_json),
        ),
        [member(m) for m in c.members],
        summary,
        c.unread_count,
    )


def message_document(m: message_pb2.Message) -> dict[str, Any]:
    """The message as its stored document (`Message.to_document`), as far as the API shows
    it: no per-channel history, client metadata, fingerprint or expiry."""
    p = m.payload
    doc_payload: dict[str, Any] = {
        "type": payload_type_text(p.type),
        "metadata": _json(p.metadata_json),
    }
    if p.HasField("text"):
        doc_payload["text"] = p.text
    if p.HasField("file_id"):
        doc_payload["file_reference"] = {"file_id": p.file_id}
    history = []
    for entry in m.status_history:
        item: dict[str, Any] = {
            "status": status_text(entry.status),
            "timestamp": iso(entry.timestamp),
        }
        if entry.HasField("recipient_id"):
            item["recipient_id"] = entry.recipient_id
        if entry.HasField("channel"):
            item["channel"] = entry.channel
        item["details"] = _json(entry.details_json)
        history.append(item)
    return {
        "message_id": m.message_id,
        "conversation_id": m.conversation_id,
        "from_user_id": m.from_user_id,
        "to_user_ids": list(m.to_user_ids),
        "payload": doc_payload,
        "target_channels": list(m.target_channels),
        "status": status_text(m.status),
        "status_history": history,
        "channel_delivery": {
            recipient: {
                channel: {
                    "status": status_text(state.status),
                    "updated_at": iso(state.updated_at),
                    "history": [],
                    "details": _json(state.details_json),
                }
                for channel, state in delivery.channels.items()
            }
            for recipient, delivery in m.channel_delivery.items()
        },
        "sequence_number": m.sequence_number,
        "reply_to_message_id": m.reply_to_message_id if m.HasField("reply_to_message_id") else None,
        "metadata": {},
        "is_edited": m.is_edited,
        "is_deleted": m.is_deleted,
        "created_at": iso(m.created_at),
        "updated_at": iso(m.updated_at),
        "ttl_expire_at": None,
        "fingerprint": "",
    }


def message(m: message_pb2.Message) -> Message:
    return Message.from_document(message_document(m))


def presence(s: presence_pb2.PresenceState) -> PresenceState:
    return PresenceState(
        UUID(s.user_id), s.online, time(s.last_seen) if s.HasField("last_seen") else None
    )


def frame(event: events_pb2.Event) -> Frame | None:
    """An event as the WebSocket frame it stands for; None for a kind this client does not
    know (a newer server's)."""
    kind = event.WhichOneof("event")
    if kind == "message_new":
        return {"type": "message.new", "data": document_view(message_document(event.message_new))}
    if kind == "message_status":
        s = event.message_status
        data: dict[str, Any] = {
            "message_id": s.message_id,
            "conversation_id": s.conversation_id,
            "recipient_id": s.recipient_id,
            "channel": s.channel,
            "status": status_text(s.status),
            "at": iso(s.at),
        }
        return {"type": "message.status", "data": data}
    if kind == "typing":
        t = event.typing
        data = {
            "conversation_id": t.conversation_id,
            "user_id": t.user_id,
            "state": "started" if t.expires_in else "stopped",
            "expires_in": t.expires_in,
        }
        return {"type": "typing", "data": data}
    if kind == "presence":
        state = presence(event.presence)
        data = {
            "user_id": str(state.user_id),
            "online": state.online,
            "last_seen": state.last_seen.isoformat() if state.last_seen else None,
        }
        return {"type": "presence", "data": data}
    return None
