"""The conversation service over gRPC (implements `Conversations`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import grpc

from chat4all.adapters.grpc import codec
from chat4all.adapters.grpc.base import DEFAULT_TIMEOUT, RemoteClient
from chat4all.domain.conversations import ConversationType, Member, Role
from chat4all.domain.errors import NotFound
from chat4all.services.interfaces import ConversationView
from chat4all.v1 import conversation_pb2 as pb
from chat4all.v1 import conversation_pb2_grpc

PAGE = 100


class RemoteConversations(RemoteClient):
    """`member_ids` and `member` are answered from `GetConversation`: not cached here, unlike
    in process."""

    service = "conversation"

    def __init__(
        self,
        channel: grpc.aio.Channel,
        internal_token: Callable[[], str],
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(channel, internal_token, timeout)
        self._stub = conversation_pb2_grpc.ConversationServiceStub(channel)

    async def create(
        self,
        actor: UUID,
        kind: ConversationType,
        member_ids: Sequence[UUID],
        metadata: dict[str, Any] | None = None,
    ) -> tuple[ConversationView, bool]:
        request = pb.CreateConversationRequest(
            type=codec.conversation_type(kind),
            members=[str(u) for u in member_ids],
            metadata_json=codec.json_text(metadata),
        )
        response = await self._call(self._stub.CreateConversation, request, actor)
        return codec.conversation(response.conversation), response.created

    async def get(self, actor: UUID, conversation_id: UUID) -> ConversationView:
        request = pb.GetConversationRequest(conversation_id=str(conversation_id))
        return codec.conversation(await self._call(self._stub.GetConversation, request, actor))

    async def for_user(self, actor: UUID) -> list[ConversationView]:
        views: list[ConversationView] = []
        token = ""
        while True:
            request = pb.ListConversationsRequest(page_size=PAGE, page_token=token)
            page = await self._call(self._stub.ListConversations, request, actor)
            views += [codec.conversation(c) for c in page.conversations]
            token = page.next_page_token
            if not token:
                return views

    async def add_member(
        self, actor: UUID, conversation_id: UUID, user_id: UUID, role: Role = Role.MEMBER
    ) -> Member:
        request = pb.AddMemberRequest(
            conversation_id=str(conversation_id), user_id=str(user_id), role=codec.role(role)
        )
        return codec.member(await self._call(self._stub.AddMember, request, actor))

    async def remove_member(self, actor: UUID, conversation_id: UUID, user_id: UUID) -> None:
        request = pb.RemoveMemberRequest(conversation_id=str(conversation_id), user_id=str(user_id))
        await self._call(self._stub.RemoveMember, request, actor)

    async def set_role(self, actor: UUID, conversation_id: UUID, user_id: UUID, role: Role) -> None:
        request = pb.SetMemberRoleRequest(
            conversation_id=str(conversation_id), user_id=str(user_id), role=codec.role(role)
        )
        await self._call(self._stub.SetMemberRole, request, actor)

    async def member_ids(self, conversation_id: UUID, requester: UUID) -> list[UUID]:
        view = await self.get(requester, conversation_id)
        return [m.user_id for m in view.members]

    async def member(self, conversation_id: UUID, user_id: UUID) -> Member:
        view = await self.get(user_id, conversation_id)
        for m in view.members:
            if m.user_id == user_id:
                return m
        raise NotFound(f"conversation {conversation_id} does not exist or you are not a member")
