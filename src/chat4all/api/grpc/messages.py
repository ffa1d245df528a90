"""chat4all.v1.MessageService."""

from __future__ import annotations

from chat4all.api.grpc import codec
from chat4all.api.grpc.errors import Context, unary
from chat4all.api.grpc.identity import Callers
from chat4all.api.rest import cursors
from chat4all.domain.errors import InvalidInput
from chat4all.domain.messages import MAX_SEQUENCE_NUMBER
from chat4all.services.frames import message_view
from chat4all.services.interfaces import Messages
from chat4all.v1 import common_pb2, message_pb2_grpc
from chat4all.v1 import message_pb2 as pb

DEFAULT_PAGE = 50


class MessageServicer(message_pb2_grpc.MessageServiceServicer):
    def __init__(self, messages: Messages, callers: Callers) -> None:
        self._messages = messages
        self._callers = callers

    @unary
    async def SendMessage(
        self, request: pb.SendMessageRequest, context: Context
    ) -> pb.SendMessageResponse:
        sender = await self._callers.user_id(context)
        appended = await self._messages.send(
            sender,
            codec.uuid(request.conversation_id, "conversation_id"),
            codec.uuid(request.message_id, "message_id"),
            codec.payload(request.payload),
            codec.target_channels(request.target_channels),
            codec.optional_uuid(
                request.reply_to_message_id if request.HasField("reply_to_message_id") else None,
                "reply_to_message_id",
            ),
            codec.json_object(request.metadata_json, "metadata_json"),
        )
        m = appended.message
        return pb.SendMessageResponse(
            message_id=str(m.message_id),
            conversation_id=str(m.conversation_id),
            sequence_number=m.sequence_number,
            status=common_pb2.DELIVERY_STATUS_SENT,
            created_at=codec.timestamp(m.created_at),
            replayed=not appended.created,
        )

    @unary
    async def ListMessages(
        self, request: pb.ListMessagesRequest, context: Context
    ) -> pb.ListMessagesResponse:
        """Pages as the REST API's: the token continues in the same direction."""
        reader = await self._callers.user_id(context)
        cid = codec.uuid(request.conversation_id, "conversation_id")
        limit = codec.page_size(request.page_size, DEFAULT_PAGE)
        after = before = None
        if request.HasField("after_sequence_number"):
            after = codec.sequence_number(request.after_sequence_number, "after_sequence_number")
        if request.HasField("before_sequence_number"):
            before = codec.sequence_number(
                request.before_sequence_number, "before_sequence_number", minimum=1
            )
        if request.page_token:
            position = cursors.decode(request.page_token)
            after, before = position.get("a"), position.get("b")
            if not all(_is_sequence(v) for v in (after, before)):
                raise InvalidInput("`page_token` is not a token this API gave out")
        page = await self._messages.history(reader, cid, after, before, limit)
        token = ""
        if len(page) == limit:
            if after is not None:
                token = cursors.encode({"a": page[-1].sequence_number, "b": before})
            elif page[0].sequence_number > 1:
                token = cursors.encode({"b": page[0].sequence_number})
        return pb.ListMessagesResponse(
            messages=[codec.message(message_view(m)) for m in page], next_page_token=token
        )

    @unary
    async def GetMessage(self, request: pb.GetMessageRequest, context: Context) -> pb.Message:
        reader = await self._callers.user_id(context)
        message = await self._messages.get(reader, codec.uuid(request.message_id, "message_id"))
        return codec.message(message_view(message))

    @unary
    async def MarkRead(self, request: pb.MarkReadRequest, context: Context) -> pb.MarkReadResponse:
        reader = await self._callers.user_id(context)
        cid = codec.uuid(request.conversation_id, "conversation_id")
        # Any int64 is a sequence number or negative, which the service refuses itself.
        watermark = await self._messages.mark_read(reader, cid, request.up_to_sequence_number)
        return pb.MarkReadResponse(conversation_id=str(cid), last_read_sequence_number=watermark)


def _is_sequence(value: object) -> bool:
    return value is None or (type(value) is int and 0 <= value <= MAX_SEQUENCE_NUMBER)
