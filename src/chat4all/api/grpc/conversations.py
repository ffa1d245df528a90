"""chat4all.v1.ConversationService."""

from __future__ import annotations

from chat4all.api.grpc import codec
from chat4all.api.grpc.errors import Context, unary
from chat4all.api.grpc.identity import Callers
from chat4all.api.rest import cursors
from chat4all.domain.conversations import Role
from chat4all.domain.errors import InvalidInput
from chat4all.services.interfaces import Conversations, ConversationView
from chat4all.v1 import conversation_pb2 as pb
from chat4all.v1 import conversation_pb2_grpc

DEFAULT_PAGE = 25


class ConversationServicer(conversation_pb2_grpc.ConversationServiceServicer):
    def __init__(self, conversations: Conversations, callers: Callers) -> None:
        self._conversations = conversations
        self._callers = callers

    @unary
    async def CreateConversation(
        self, request: pb.CreateConversationRequest, context: Context
    ) -> pb.CreateConversationResponse:
        actor = await self._callers.user_id(context)
        view, created = await self._conversations.create(
            actor,
            codec.conversation_type(request.type),
            [codec.uuid(u, "members") for u in request.members],
            codec.json_object(request.metadata_json, "metadata_json"),
        )
        return pb.CreateConversationResponse(conversation=codec.conversation(view), created=created)

    @unary
    async def GetConversation(
        self, request: pb.GetConversationRequest, context: Context
    ) -> pb.Conversation:
        actor = await self._callers.user_id(context)
        cid = codec.uuid(request.conversation_id, "conversation_id")
        return codec.conversation(await self._conversations.get(actor, cid))

    @unary
    async def ListConversations(
        self, request: pb.ListConversationsRequest, context: Context
    ) -> pb.ListConversationsResponse:
        """Pages as the REST API's: newest activity first, the token holds where it stopped."""
        actor = await self._callers.user_id(context)
        limit = codec.page_size(request.page_size, DEFAULT_PAGE)
        views = await self._conversations.for_user(actor)
        if request.page_token:
            position = cursors.decode(request.page_token)
            try:
                after = (position["t"], position["c"])
            except KeyError as e:
                raise InvalidInput("`page_token` is not a token this API gave out") from e
            views = [v for v in views if _sort_key(v) < after]
        page = views[:limit]
        token = ""
        if len(views) > limit:
            t, c = _sort_key(page[-1])
            token = cursors.encode({"t": t, "c": c})
        return pb.ListConversationsResponse(
            conversations=[codec.conversation(v) for v in page], next_page_token=token
        )

    @unary
    async def AddMember(self, request: pb.AddMemberRequest, context: Context) -> pb.Member:
        actor = await self._callers.user_id(context)
        member = await self._conversations.add_member(
            actor,
            codec.uuid(request.conversation_id, "conversation_id"),
            codec.uuid(request.user_id, "user_id"),
            codec.role(request.role, default=Role.MEMBER),
        )
        return codec.member(member)

    @unary
    async def RemoveMember(
        self, request: pb.RemoveMemberRequest, context: Context
    ) -> pb.RemoveMemberResponse:
        actor = await self._callers.user_id(context)
        await self._conversations.remove_member(
            actor,
            codec.uuid(request.conversation_id, "conversation_id"),
            codec.uuid(request.user_id, "user_id"),
        )
        return pb.RemoveMemberResponse()

    @unary
    async def SetMemberRole(
        self, request: pb.SetMemberRoleRequest, context: Context
    ) -> pb.SetMemberRoleResponse:
        actor = await self._callers.user_id(context)
        await self._conversations.set_role(
            actor,
            codec.uuid(request.conversation_id, "conversation_id"),
            codec.uuid(request.user_id, "user_id"),
            codec.role(request.role),
        )
        return pb.SetMemberRoleResponse()


def _sort_key(view: ConversationView) -> tuple[str, str]:
    return view.last_activity.isoformat(), str(view.conversation.conversation_id)
