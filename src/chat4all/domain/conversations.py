"""Conversations, their members and who may do what to them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from chat4all.domain.errors import Forbidden, InvalidInput


class ConversationType(StrEnum):
    PRIVATE = "private"
    GROUP = "group"


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


@dataclass(frozen=True)
class Member:
    user_id: UUID
    role: Role
    joined_at: datetime
    last_read_seq: int = 0
    last_delivered_seq: int = 0


@dataclass(frozen=True)
class Conversation:
    conversation_id: UUID
    type: ConversationType
    created_by: UUID
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any] = field(default_factory=dict)
    is_active: bool = True


def initial_members(
    kind: ConversationType, creator: UUID, others: Sequence[UUID], max_group_size: int
) -> list[tuple[UUID, Role]]:
    """The members a new conversation starts with: the creator as owner, the rest as members."""
    unique_others = list(dict.fromkeys(u for u in others if u != creator))
    if kind is ConversationType.PRIVATE:
        if len(unique_others) != 1:
            raise InvalidInput("a private conversation has exactly one other member")
    elif len(unique_others) + 1 > max_group_size:
        raise InvalidInput(f"a group has at most {max_group_size} members")
    return [(creator, Role.OWNER), *((u, Role.MEMBER) for u in unique_others)]


def check_can_add(conversation: Conversation, actor: Member, current_size: int, limit: int) -> None:
    if conversation.type is ConversationType.PRIVATE:
        raise InvalidInput("members cannot be added to a private conversation")
    if actor.role is Role.MEMBER:
        raise Forbidden("only an owner or admin may add members")
    if current_size + 1 > limit:
        raise InvalidInput(f"a group has at most {limit} members")


def check_can_remove(
    conversation: Conversation, actor: Member, target: Member, members: Sequence[Member]
) -> None:
    """Anyone may leave; owners remove anyone but another owner; admins remove members. The
    last owner cannot leave while others remain."""
    if conversation.type is ConversationType.PRIVATE:
        raise InvalidInput("members cannot be removed from a private conversation")
    if actor.user_id == target.user_id:
        owners = sum(m.role is Role.OWNER for m in members)
        if target.role is Role.OWNER and owners == 1 and len(members) > 1:
            raise InvalidInput("the last owner cannot leave; make another member owner first")
        return
    if actor.role is Role.OWNER and target.role is not Role.OWNER:
        return
    if actor.role is Role.ADMIN and target.role is Role.MEMBER:
        return
    raise Forbidden(f"a {actor.role} may not remove a {target.role}")


def check_can_set_role(conversation: Conversation, actor: Member, role: Role) -> None:
    if conversation.type is ConversationType.PRIVATE:
        raise InvalidInput("roles do not apply to a private conversation")
    if actor.role is not Role.OWNER:
        raise Forbidden("only an owner may change roles")
