"""Metadata store: the seed's relational tables (users, conversations, members, tokens, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from chat4all.domain.conversations import Conversation, Member, Role
from chat4all.domain.users import User


@dataclass(frozen=True)
class WatermarkMove:
    """Move one member's read and/or delivered watermark forward to these sequence numbers."""

    conversation_id: UUID
    user_id: UUID
    read_seq: int | None = None
    delivered_seq: int | None = None


@dataclass(frozen=True)
class RefreshToken:
    """A refresh token as stored: only its hash. Rotation chains tokens of one `family_id`."""

    token_id: UUID
    user_id: UUID
    token_hash: str
    family_id: UUID
    expires_at: datetime
    created_at: datetime
    revoked_at: datetime | None = None


class MetadataStore(Protocol):
    """Every method is atomic. Violated uniqueness raises `AlreadyExists`; an unreachable
    database raises `Unavailable`. No other driver error leaves an adapter."""

    # users
    async def create_user(self, user: User) -> None:
        """Raises AlreadyExists when the username or the email is taken (detail names which)."""
        ...

    async def get_user(self, user_id: UUID) -> User | None: ...

    async def get_user_by_username(self, username: str) -> User | None: ...

    async def get_users(self, user_ids: Sequence[UUID]) -> list[User]:
        """The users of `user_ids` that exist, in no particular order."""
        ...

    # refresh tokens (the seed's `access_tokens` table)
    async def add_refresh_token(self, token: RefreshToken) -> None: ...

    async def get_refresh_token(self, token_hash: str) -> RefreshToken | None: ...

    async def rotate_refresh_token(
        self, old_token_id: UUID, new: RefreshToken, now: datetime
    ) -> bool:
        """Revoke the old token and store the new one, atomically. False (and nothing stored)
        when the old token was already revoked: the caller treats that as token reuse."""
        ...

    async def revoke_token_family(self, family_id: UUID, now: datetime) -> None: ...

    # conversations and members
    async def create_conversation(
        self,
        conversation: Conversation,
        members: Sequence[tuple[UUID, Role]],
        private_key: str | None = None,
    ) -> tuple[Conversation, bool]:
        """Store a conversation and its members. With a `private_key` (one per pair of users),
        an existing conversation with that key is returned instead: (conversation, created)."""
        ...

    async def get_conversation(self, conversation_id: UUID) -> Conversation | None: ...

    async def list_memberships(self, user_id: UUID) -> list[tuple[Conversation, Member]]:
        """The active conversations `user_id` is a member of, each with that membership,
        most recently updated first."""
        ...

    async def get_member(self, conversation_id: UUID, user_id: UUID) -> Member | None: ...

    async def list_members(self, conversation_id: UUID) -> list[Member]: ...

    async def add_member(
        self, conversation_id: UUID, user_id: UUID, role: Role, joined_at: datetime
    ) -> Member:
        """Raises AlreadyExists when the user is already a member."""
        ...

    async def remove_member(self, conversation_id: UUID, user_id: UUID) -> bool: ...

    async def set_role(self, conversation_id: UUID, user_id: UUID, role: Role) -> bool: ...

    async def advance_watermarks(
        self,
        conversation_id: UUID,
        user_id: UUID,
        *,
        read_seq: int | None = None,
        delivered_seq: int | None = None,
    ) -> Member | None:
        """Move a member's read/delivered watermarks forward (never back). Returns the member
        as it was before the change, or None if not a member."""
        ...

    async def advance_many_watermarks(self, moves: Sequence[WatermarkMove]) -> None:
        """`advance_watermarks` for each move (never back; non-members ignored), in one
        transaction: the status worker's batch costs one round trip."""
        ...

    async def ping(self) -> None:
        """Raises Unavailable when the store cannot be reached."""
        ...

    async def close(self) -> None: ...
