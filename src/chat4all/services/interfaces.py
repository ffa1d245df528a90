"""The application services as the API layer sees them: one `Protocol` per service.

Each is implemented in process by this package (`AuthService`, `ConversationService`,
`MessageService`, `PresenceService`, `EventService`) and, in the cluster profile, by a gRPC
client of the same service running in another process (`chat4all.adapters.grpc`). Both raise
the same domain errors, so REST, WebSocket and gRPC behave the same whichever is wired.

`actor`, `reader`, `recipient`...: the user on whose behalf the call is made, authenticated by
the caller. This module imports only the domain and the ports: adapters may depend on it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from chat4all.domain.conversations import Conversation, ConversationType, Member, Role
from chat4all.domain.messages import INTERNAL_CHANNEL, ConversationSummary, Message, Payload
from chat4all.domain.users import User
from chat4all.ports.messages import Appended
from chat4all.ports.realtime import PresenceState

# A real-time event as the WebSocket sends it: {"type": "message.new", "data": {...}}.
Frame = dict[str, Any]


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True)
class Principal:
    """Who a valid access token speaks for."""

    user_id: UUID
    token_id: str
    expires_at: float
    # The token itself, for a remote auth service that must be shown it again (logout).
    access_token: str = field(default="", repr=False)


@dataclass(frozen=True)
class ConversationView:
    conversation: Conversation
    members: list[Member]
    summary: ConversationSummary | None = None
    unread_count: int = 0

    @property
    def last_activity(self) -> datetime:
        if self.summary and self.summary.last_message_at:
            return self.summary.last_message_at
        return self.conversation.created_at


class Auth(Protocol):
    """Accounts and tokens."""

    async def register(self, username: str, email: str, password: str) -> User: ...

    async def login(self, username: str, password: str) -> TokenPair:
        """Sign in; `Unauthenticated` for a wrong username or password."""
        ...

    async def refresh(self, refresh_token: str) -> TokenPair:
        """New tokens for a refresh token, which works once."""
        ...

    async def logout(self, principal: Principal, refresh_token: str | None) -> None:
        """Revoke the access token now and, when given, the refresh token's whole session."""
        ...

    async def authenticate(self, access_token: str) -> Principal:
        """Who the token speaks for; `Unauthenticated` when invalid, expired or revoked."""
        ...

    async def get_user(self, user_id: UUID) -> User:
        """The account; `Unauthenticated` when it no longer exists."""
        ...

    async def user_id_of(self, username: str) -> UUID:
        """The id of the user called `username`; `NotFound` when nobody is."""
        ...


class Conversations(Protocol):
    """Conversations and members. Every miss, whether the conversation does not exist or the
    actor is not in it, is the same `NotFound`."""

    async def create(
        self,
        actor: UUID,
        kind: ConversationType,
        member_ids: Sequence[UUID],
        metadata: dict[str, Any] | None = None,
    ) -> tuple[ConversationView, bool]:
        """The new conversation and True, or an existing private one and False."""
        ...

    async def get(self, actor: UUID, conversation_id: UUID) -> ConversationView:
        """The conversation with every member."""
        ...

    async def for_user(self, actor: UUID) -> list[ConversationView]:
        """The actor's conversations, newest activity first, each with only the actor as
        member."""
        ...

    async def add_member(
        self, actor: UUID, conversation_id: UUID, user_id: UUID, role: Role = Role.MEMBER
    ) -> Member: ...

    async def remove_member(self, actor: UUID, conversation_id: UUID, user_id: UUID) -> None: ...

    async def set_role(
        self, actor: UUID, conversation_id: UUID, user_id: UUID, role: Role
    ) -> None: ...

    async def member_ids(self, conversation_id: UUID, requester: UUID) -> list[UUID]:
        """The members' ids; `NotFound` when `requester` is not one of them."""
        ...

    async def member(self, conversation_id: UUID, user_id: UUID) -> Member:
        """`user_id`'s membership; `NotFound` when they are not a member."""
        ...


class Messages(Protocol):
    """Sending, history, receipts."""

    async def send(
        self,
        sender: UUID,
        conversation_id: UUID,
        message_id: UUID,
        payload: Payload,
        target_channels: tuple[str, ...] = (INTERNAL_CHANNEL,),
        reply_to_message_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Appended:
        """Store the message (or find it stored: `created` False); `IdempotencyConflict` for
        a `message_id` already used with another body."""
        ...

    async def history(
        self,
        reader: UUID,
        conversation_id: UUID,
        after_seq: int | None,
        before_seq: int | None,
        limit: int,
    ) -> list[Message]:
        """A page in sequence order: forward from `after_seq`, or else the newest page before
        `before_seq` (or the end)."""
        ...

    async def get(self, reader: UUID, message_id: UUID) -> Message: ...

    async def acknowledge(
        self,
        recipient: UUID,
        message_id: UUID,
        conversation_id: UUID,
        sequence_number: int,
        from_user_id: UUID,
    ) -> bool:
        """The recipient's client has the message: it becomes `delivered` for them. False for
        the sender's own message."""
        ...

    async def mark_read(
        self, reader: UUID, conversation_id: UUID, up_to_sequence_number: int
    ) -> int:
        """Move the reader's read watermark; returns the watermark after the call."""
        ...


class Presence(Protocol):
    async def states(self, user_ids: Sequence[UUID]) -> list[PresenceState]:
        """Online or not, and last seen, of each user (in the order given)."""
        ...


class EventStream(Protocol):
    """A user's real-time events, in order; ends with `LimitExceeded` when the subscriber fell
    too far behind (subscribe again with `after`)."""

    @property
    def session_id(self) -> str:
        """This stream's session (as the `ready` frame names it)."""
        ...

    def __aiter__(self) -> AsyncIterator[Frame]: ...

    async def __anext__(self) -> Frame: ...

    async def close(self) -> None: ...


class Events(Protocol):
    """The real-time stream for callers that are not a WebSocket (the gRPC EventService)."""

    async def subscribe(
        self, user_id: UUID, after: Mapping[UUID, int] | None = None
    ) -> EventStream:
        """Open the user's stream: first every message not yet delivered to them (or, for the
        conversations in `after`, every message past the sequence number given), then live
        events. Returns once the stream is live; the user counts as online until it closes."""
        ...

    async def ack(self, user_id: UUID, message_id: UUID) -> bool:
        """The user's client has the message (False for their own message)."""
        ...

    async def typing(self, user_id: UUID, conversation_id: UUID) -> None:
        """Tell the conversation's other members that the user is typing."""
        ...


@dataclass(frozen=True)
class Services:
    """One implementation of each service: all in process, or all remote."""

    auth: Auth
    conversations: Conversations
    messages: Messages
    presence: Presence
    events: Events
