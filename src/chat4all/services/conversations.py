"""Conversations and members. A non-member learns nothing about a conversation: every miss,
whether the conversation does not exist or the caller is not in it, is the same NotFound."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID, uuid4

import orjson

from chat4all.domain.conversations import (
    Conversation,
    ConversationType,
    Member,
    Role,
    check_can_add,
    check_can_remove,
    check_can_set_role,
    initial_members,
)
from chat4all.domain.errors import InvalidInput, NotFound
from chat4all.domain.events import Event, Topic
from chat4all.ports.clock import Clock
from chat4all.ports.messages import MessageStore
from chat4all.ports.metadata import MetadataStore
from chat4all.ports.realtime import KeyValueCache
from chat4all.services.interfaces import ConversationView

MEMBERS_CACHE_SECONDS = 60.0


def not_found(conversation_id: UUID) -> NotFound:
    return NotFound(f"conversation {conversation_id} does not exist or you are not a member")


class ConversationService:
    def __init__(
        self,
        metadata: MetadataStore,
        messages: MessageStore,
        cache: KeyValueCache,
        clock: Clock,
        max_group_size: int,
    ) -> None:
        self._metadata = metadata
        self._messages = messages
        self._cache = cache
        self._clock = clock
        self._max_group_size = max_group_size

    async def create(
        self,
        actor: UUID,
        kind: ConversationType,
        member_ids: Sequence[UUID],
        metadata: dict[str, Any] | None = None,
    ) -> tuple[ConversationView, bool]:
        members = initial_members(kind, actor, member_ids, self._max_group_size)
        wanted = [user_id for user_id, _ in members]
        found = {u.user_id for u in await self._metadata.get_users(wanted)}
        missing = [str(u) for u in wanted if u not in found]
        if missing:
            raise NotFound(f"no such user: {', '.join(missing)}")
        now = self._clock.now()
        private_key = (
            ":".join(sorted(map(str, wanted))) if kind is ConversationType.PRIVATE else None
        )
        conversation, created = await self._metadata.create_conversation(
            Conversation(uuid4(), kind, actor, now, now, metadata or {}), members, private_key
        )
        if created:
            await self._messages.enqueue([_created_event(conversation, wanted)])
        view = ConversationView(
            conversation, await self._metadata.list_members(conversation.conversation_id)
        )
        return view, created

    async def get(self, actor: UUID, conversation_id: UUID) -> ConversationView:
        conversation = await self._metadata.get_conversation(conversation_id)
        members = await self._metadata.list_members(conversation_id)
        me = next((m for m in members if m.user_id == actor), None)
        if conversation is None or me is None or not conversation.is_active:
            raise not_found(conversation_id)
        return await self._with_activity(conversation, members, me)

    async def for_user(self, actor: UUID) -> list[ConversationView]:
        """The caller's conversations, newest activity first."""
        memberships = await self._metadata.list_memberships(actor)
        summaries = await self._messages.summaries([c.conversation_id for c, _ in memberships])
        views = []
        for conversation, me in memberships:
            cid = conversation.conversation_id
            summary = summaries.get(cid)
            unread = 0
            if summary and summary.last_sequence_number > me.last_read_seq:
                unread = await self._messages.count_after(cid, me.last_read_seq, actor)
            views.append(ConversationView(conversation, [me], summary, unread))
        views.sort(
            key=lambda v: (v.last_activity, str(v.conversation.conversation_id)), reverse=True
        )
        return views

    async def add_member(
        self, actor: UUID, conversation_id: UUID, user_id: UUID, role: Role = Role.MEMBER
    ) -> Member:
        conversation, members = await self._load(actor, conversation_id)
        me = _find(members, actor)
        check_can_add(conversation, me, len(members), self._max_group_size)
        if role is Role.OWNER or (role is Role.ADMIN and me.role is not Role.OWNER):
            raise InvalidInput(
                "a new member may join as `member`, or as `admin` when an owner adds"
            )
        if not await self._metadata.get_users([user_id]):
            raise NotFound(f"no such user: {user_id}")
        member = await self._metadata.add_member(conversation_id, user_id, role, self._clock.now())
        await self._forget_members(conversation_id)
        return member

    async def remove_member(self, actor: UUID, conversation_id: UUID, user_id: UUID) -> None:
        conversation, members = await self._load(actor, conversation_id)
        target = next((m for m in members if m.user_id == user_id), None)
        if target is None:
            raise NotFound(f"user {user_id} is not a member of this conversation")
        check_can_remove(conversation, _find(members, actor), target, members)
        await self._metadata.remove_member(conversation_id, user_id)
        await self._forget_members(conversation_id)

    async def set_role(self, actor: UUID, conversation_id: UUID, user_id: UUID, role: Role) -> None:
        conversation, members = await self._load(actor, conversation_id)
        check_can_set_role(conversation, _find(members, actor), role)
        if not any(m.user_id == user_id for m in members):
            raise NotFound(f"user {user_id} is not a member of this conversation")
        await self._metadata.set_role(conversation_id, user_id, role)

    async def member_ids(self, conversation_id: UUID, requester: UUID) -> list[UUID]:
        """The members' ids (cached: this is on every send's path); NotFound for a non-member."""
        key = f"members:{conversation_id}"
        cached = await self._cache.get(key)
        if cached is not None:
            ids = [UUID(u) for u in orjson.loads(cached)]
        else:
            conversation = await self._metadata.get_conversation(conversation_id)
            members = await self._metadata.list_members(conversation_id) if conversation else []
            ids = [m.user_id for m in members] if conversation and conversation.is_active else []
            await self._cache.set(key, orjson.dumps([str(u) for u in ids]), MEMBERS_CACHE_SECONDS)
        if requester not in ids:
            raise not_found(conversation_id)
        return ids

    async def member(self, conversation_id: UUID, user_id: UUID) -> Member:
        member = await self._metadata.get_member(conversation_id, user_id)
        if member is None:
            raise not_found(conversation_id)
        return member

    async def advance_read(self, conversation_id: UUID, user_id: UUID, seq: int) -> None:
        await self._metadata.advance_watermarks(conversation_id, user_id, read_seq=seq)

    async def _load(self, actor: UUID, conversation_id: UUID) -> tuple[Conversation, list[Member]]:
        conversation = await self._metadata.get_conversation(conversation_id)
        members = await self._metadata.list_members(conversation_id)
        if conversation is None or not any(m.user_id == actor for m in members):
            raise not_found(conversation_id)
        return conversation, members

    async def _with_activity(
        self, conversation: Conversation, members: list[Member], me: Member
    ) -> ConversationView:
        cid = conversation.conversation_id
        summary = (await self._messages.summaries([cid])).get(cid)
        unread = (
            await self._messages.count_after(cid, me.last_read_seq, me.user_id) if summary else 0
        )
        return ConversationView(conversation, members, summary, unread)

    async def _forget_members(self, conversation_id: UUID) -> None:
        await self._cache.delete(f"members:{conversation_id}")


def _find(members: list[Member], user_id: UUID) -> Member:
    return next(m for m in members if m.user_id == user_id)


def _created_event(conversation: Conversation, member_ids: list[UUID]) -> Event:
    return Event(
        type=Topic.CONVERSATION_CREATED,
        key=str(conversation.conversation_id),
        data={
            "conversation_id": str(conversation.conversation_id),
            "type": conversation.type.value,
            "created_by": str(conversation.created_by),
            "members": [str(u) for u in member_ids],
            "created_at": conversation.created_at.isoformat(),
        },
        time=conversation.created_at,
    )
