"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from chat4all.domain.conversations import ConversationType, Role
from chat4all.domain.messages import MAX_SEQUENCE_NUMBER

Strict = ConfigDict(extra="forbid")
MAX_METADATA_BYTES = 16 * 1024


def storable_metadata(value: dict[str, Any]) -> dict[str, Any]:
    """Metadata is stored as JSON by every store: integers within 64 bits, bounded size."""
    try:
        encoded = orjson.dumps(value)
    except orjson.JSONEncodeError as e:
        raise ValueError(f"metadata cannot be stored: {e}") from e
    if len(encoded) > MAX_METADATA_BYTES:
        raise ValueError(
            f"metadata is {len(encoded)} bytes as JSON; the limit is {MAX_METADATA_BYTES}"
        )
    return value


Metadata = Annotated[
    dict[str, Any],
    AfterValidator(storable_metadata),
    Field(description="Free-form JSON for the client (at most 16 KiB, integers within 64 bits)."),
]


class RegisterRequest(BaseModel):
    model_config = Strict
    username: str = Field(examples=["alice"])
    email: str = Field(examples=["alice@example.com"])
    password: str = Field(examples=["correct horse battery"])


class UserOut(BaseModel):
    user_id: UUID
    username: str
    email: str | None = None
    created_at: datetime | None = None


class TokenRequest(BaseModel):
    model_config = Strict
    username: str
    password: str


class RefreshRequest(BaseModel):
    model_config = Strict
    refresh_token: str


class LogoutRequest(BaseModel):
    model_config = Strict
    refresh_token: str | None = None


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    refresh_token: str


class CreateConversationRequest(BaseModel):
    model_config = Strict
    type: ConversationType
    members: list[UUID] = Field(description="The other members; the caller joins as owner.")
    metadata: Metadata = Field(default_factory=dict)


class MemberOut(BaseModel):
    user_id: UUID
    role: Role
    joined_at: datetime
    last_read_sequence_number: int
    last_delivered_sequence_number: int


class LastMessageOut(BaseModel):
    message_id: UUID
    from_user_id: UUID
    sequence_number: int
    text: str | None = None
    type: str
    created_at: datetime


class ConversationOut(BaseModel):
    conversation_id: UUID
    type: ConversationType
    created_by: UUID
    created_at: datetime
    metadata: dict[str, Any]
    members: list[MemberOut]
    last_sequence_number: int = 0
    last_message: LastMessageOut | None = None
    unread_count: int = 0


class ConversationPage(BaseModel):
    items: list[ConversationOut]
    next_cursor: str | None = None


class AddMemberRequest(BaseModel):
    model_config = Strict
    user_id: UUID
    role: Role = Role.MEMBER


class SetRoleRequest(BaseModel):
    model_config = Strict
    role: Role


class TextPayload(BaseModel):
    model_config = Strict
    type: Literal["text"]
    text: str
    metadata: Metadata = Field(default_factory=dict)


class FilePayload(BaseModel):
    model_config = Strict
    type: Literal["file", "image", "video", "audio"]
    file_id: UUID
    text: str | None = Field(None, description="An optional caption.")
    metadata: Metadata = Field(default_factory=dict)


CHANNEL_PATTERN = r"^[a-z][a-z0-9_]{1,31}$"
MAX_TARGET_CHANNELS = 8
ChannelName = Annotated[str, Field(pattern=CHANNEL_PATTERN)]


class SendMessageRequest(BaseModel):
    model_config = Strict
    message_id: UUID = Field(
        description="Made by the client; the idempotency key. Sending it again returns the "
        "same answer, never a second message."
    )
    payload: Annotated[TextPayload | FilePayload, Field(discriminator="type")]
    target_channels: list[ChannelName] | None = Field(
        None,
        max_length=MAX_TARGET_CHANNELS,
        description='Channels to deliver on: names, or ["all"] for internal and every channel '
        "the recipient linked; default: internal plus the recipient's linked channels (only "
        "the first of their fallback order when they set one).",
    )
    reply_to_message_id: UUID | None = None
    metadata: Metadata = Field(default_factory=dict)


class SendMessageOut(BaseModel):
    message_id: UUID
    conversation_id: UUID
    sequence_number: int
    status: str
    created_at: datetime
    channels: dict[str, str] = Field(
        default_factory=dict,
        description="Per requested channel: `queued`, or `unavailable` (no connector installed)",
    )


class MessagePage(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None = None


class ReadRequest(BaseModel):
    model_config = Strict
    up_to_sequence_number: int = Field(ge=0, le=MAX_SEQUENCE_NUMBER)


class ReadOut(BaseModel):
    conversation_id: UUID
    last_read_sequence_number: int


class PresenceOut(BaseModel):
    user_id: UUID
    online: bool
    last_seen: datetime | None
