"""Domain objects and API views to protobuf messages, and request fields to domain values.

Conventions shared with the client side (`chat4all.adapters.grpc.codec`): ids are UUID strings;
times are `Timestamp`s; free-form JSON objects are text fields named `*_json` (parsed with the
standard library, so integers past 64 bits are seen and refused as the REST API refuses them);
a domain enum value `v` is the protobuf enum value `<PREFIX>_<V>` (`sent` is
`DELIVERY_STATUS_SENT`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar
from uuid import UUID

import orjson
from google.protobuf.timestamp_pb2 import Timestamp

from chat4all.api.rest.schemas import CHANNEL_PATTERN, MAX_TARGET_CHANNELS, storable_metadata
from chat4all.domain.conversations import ConversationType, Member, Role
from chat4all.domain.errors import InvalidInput
from chat4all.domain.messages import MAX_SEQUENCE_NUMBER, Payload, PayloadType
from chat4all.domain.users import User
from chat4all.ports.realtime import PresenceState
from chat4all.services.interfaces import ConversationView, Frame
from chat4all.v1 import (
    auth_pb2,
    common_pb2,
    conversation_pb2,
    events_pb2,
    message_pb2,
    presence_pb2,
)

E = TypeVar("E", bound=StrEnum)
_CHANNEL = re.compile(CHANNEL_PATTERN)


# -- requests -> domain values


def uuid(value: str, field: str) -> UUID:
    try:
        return UUID(value)
    except ValueError as e:
        raise InvalidInput(f"`{field}` must be a UUID, not {value!r}") from e


def optional_uuid(value: str | None, field: str) -> UUID | None:
    return uuid(value, field) if value else None


def json_object(text: str, field: str) -> dict[str, Any]:
    """A `*_json` field: empty, or a JSON object storable by every store."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as e:
        raise InvalidInput(f"`{field}` is not valid JSON: {e}") from e
    if not isinstance(value, dict):
        raise InvalidInput(f"`{field}` must be a JSON object")
    try:
        return storable_metadata(value)
    except ValueError as e:
        raise InvalidInput(f"`{field}`: {e}") from e


def enum_value(kind: type[E], prefix: str, number: int, name: str, field: str) -> E:
    """The domain enum value of protobuf enum value `name` (`number` when unknown)."""
    try:
        return kind(name.removeprefix(prefix).lower())
    except ValueError as e:
        wanted = ", ".join(prefix + v.value.upper() for v in kind)
        raise InvalidInput(f"`{field}` must be one of {wanted}, not {name or number}") from e


def conversation_type(value: conversation_pb2.ConversationType.ValueType) -> ConversationType:
    name = conversation_pb2.ConversationType.Name(value)
    return enum_value(ConversationType, "CONVERSATION_TYPE_", value, name, "type")


def role(value: conversation_pb2.Role.ValueType, default: Role | None = None) -> Role:
    if value == conversation_pb2.ROLE_UNSPECIFIED and default is not None:
        return default
    return enum_value(Role, "ROLE_", value, conversation_pb2.Role.Name(value), "role")


def payload_type(value: common_pb2.PayloadType.ValueType) -> PayloadType:
    name = common_pb2.PayloadType.Name(value)
    return enum_value(PayloadType, "PAYLOAD_TYPE_", value, name, "payload.type")


def payload(p: message_pb2.Payload) -> Payload:
    kind = payload_type(p.type)
    file_id = optional_uuid(p.file_id if p.HasField("file_id") else None, "payload.file_id")
    if kind is PayloadType.TEXT and p.HasField("file_id"):
        raise InvalidInput("a text message has no `payload.file_id`")
    return Payload(
        type=kind,
        text=p.text if p.HasField("text") else None,
        file_reference={"file_id": str(file_id)} if file_id else None,
        metadata=json_object(p.metadata_json, "payload.metadata_json"),
    )


def target_channels(names: Sequence[str]) -> tuple[str, ...]:
    if len(names) > MAX_TARGET_CHANNELS:
        raise InvalidInput(f"at most {MAX_TARGET_CHANNELS} `target_channels`")
    for name in names:
        if not _CHANNEL.match(name):
            raise InvalidInput(f"`target_channels`: {name!r} is not a channel name")
    # Empty: the router's default (internal plus the recipient's linked channels).
    return tuple(dict.fromkeys(names))


def sequence_number(value: int, field: str, minimum: int = 0) -> int:
    if not minimum <= value <= MAX_SEQUENCE_NUMBER:
        raise InvalidInput(f"`{field}` must be a sequence number of at least {minimum}")
    return value


def page_size(value: int, default: int) -> int:
    if value < 0:
        raise InvalidInput("`page_size` must not be negative")
    return min(value, 100) if value else default


# -- domain values -> responses


def timestamp(value: datetime | str) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(datetime.fromisoformat(value) if isinstance(value, str) else value)
    return ts


def json_text(value: dict[str, Any] | None) -> str:
    return orjson.dumps(value).decode() if value else ""


def delivery_status(value: str) -> common_pb2.DeliveryStatus.ValueType:
    return common_pb2.DeliveryStatus.Value("DELIVERY_STATUS_" + value.upper())


def user(u: User, with_email: bool) -> auth_pb2.User:
    if not with_email:
        return auth_pb2.User(user_id=str(u.user_id), username=u.username)
    return auth_pb2.User(
        user_id=str(u.user_id),
        username=u.username,
        email=u.email,
        created_at=timestamp(u.created_at),
    )


def member(m: Member) -> conversation_pb2.Member:
    return conversation_pb2.Member(
        user_id=str(m.user_id),
        role=conversation_pb2.Role.Value("ROLE_" + m.role.value.upper()),
        joined_at=timestamp(m.joined_at),
        last_read_sequence_number=m.last_read_seq,
        last_delivered_sequence_number=m.last_delivered_seq,
    )


def conversation(view: ConversationView) -> conversation_pb2.Conversation:
    c, summary = view.conversation, view.summary
    out = conversation_pb2.Conversation(
        conversation_id=str(c.conversation_id),
        type=conversation_pb2.ConversationType.Value("CONVERSATION_TYPE_" + c.type.value.upper()),
        created_by=str(c.created_by),
        created_at=timestamp(c.created_at),
        metadata_json=json_text(c.metadata),
        members=[member(m) for m in view.members],
        last_sequence_number=summary.last_sequence_number if summary else 0,
        unread_count=view.unread_count,
    )
    if summary and summary.last_message_at:
        out.last_message_at.CopyFrom(timestamp(summary.last_message_at))
    last = summary.last_message if summary else None
    if last:
        out.last_message.CopyFrom(
            conversation_pb2.LastMessage(
                message_id=last["message_id"],
                from_user_id=last["from_user_id"],
                sequence_number=last["sequence_number"],
                type=common_pb2.PayloadType.Value("PAYLOAD_TYPE_" + last["type"].upper()),
                text=last.get("text"),
                created_at=timestamp(last["created_at"]),
            )
        )
    return out


def message(view: dict[str, Any]) -> message_pb2.Message:
    """A message as the API shows it (`chat4all.services.frames.message_view`); statuses per
    recipient and the status history when the view has them."""
    p = view["payload"]
    file_reference = p.get("file_reference") or {}
    out = message_pb2.Message(
        message_id=view["message_id"],
        conversation_id=view["conversation_id"],
        sequence_number=view["sequence_number"],
        from_user_id=view["from_user_id"],
        to_user_ids=view["to_user_ids"],
        payload=message_pb2.Payload(
            type=common_pb2.PayloadType.Value("PAYLOAD_TYPE_" + p["type"].upper()),
            text=p.get("text"),
            file_id=file_reference.get("file_id"),
            metadata_json=json_text(p.get("metadata")),
        ),
        target_channels=view["target_channels"],
        reply_to_message_id=view["reply_to_message_id"],
        status=delivery_status(view["status"]),
        is_edited=view["is_edited"],
        is_deleted=view["is_deleted"],
        created_at=timestamp(view["created_at"]),
        updated_at=timestamp(view["updated_at"]),
    )
    for recipient, channels in view.get("channel_delivery", {}).items():
        delivery = out.channel_delivery[recipient]
        for channel, state in channels.items():
            delivery.channels[channel].CopyFrom(
                message_pb2.ChannelStatus(
                    status=delivery_status(state["status"]),
                    updated_at=timestamp(state["updated_at"]),
                    details_json=json_text(state.get("details")),
                )
            )
    out.status_history.extend(
        message_pb2.StatusHistoryEntry(
            status=delivery_status(entry["status"]),
            timestamp=timestamp(entry["timestamp"]),
            recipient_id=entry.get("recipient_id"),
            channel=entry.get("channel"),
            details_json=json_text(entry.get("details")),
        )
        for entry in view.get("status_history", ())
    )
    return out


def presence(state: PresenceState) -> presence_pb2.PresenceState:
    out = presence_pb2.PresenceState(user_id=str(state.user_id), online=state.online)
    if state.last_seen is not None:
        out.last_seen.CopyFrom(timestamp(state.last_seen))
    return out


def event(frame: Frame) -> events_pb2.Event | None:
    """A stream frame as an event; None for a kind the gRPC stream does not carry."""
    kind, data = frame["type"], frame["data"]
    if kind == "message.new":
        return events_pb2.Event(message_new=message(data))
    if kind == "message.status":
        return events_pb2.Event(
            message_status=events_pb2.MessageStatus(
                message_id=data["message_id"],
                conversation_id=data["conversation_id"],
                recipient_id=data["recipient_id"],
                channel=data["channel"],
                status=delivery_status(data["status"]),
                at=timestamp(data["at"]),
            )
        )
    if kind == "typing":
        return events_pb2.Event(
            typing=events_pb2.TypingEvent(
                conversation_id=data["conversation_id"],
                user_id=data["user_id"],
                expires_in=data["expires_in"],
            )
        )
    if kind == "presence":
        last_seen = data.get("last_seen")
        return events_pb2.Event(
            presence=presence(
                PresenceState(
                    UUID(data["user_id"]),
                    bool(data["online"]),
                    datetime.fromisoformat(last_seen) if last_seen else None,
                )
            )
        )
    return None
