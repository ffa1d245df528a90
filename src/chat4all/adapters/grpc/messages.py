"""The message service over gRPC (implements `Messages`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import grpc

from chat4all.adapters.grpc import codec
from chat4all.adapters.grpc.base import DEFAULT_TIMEOUT, RemoteClient
from chat4all.domain.messages import INTERNAL_CHANNEL, Message, Payload
from chat4all.domain.status import DeliveryStatus
from chat4all.ports.messages import Appended
from chat4all.v1 import events_pb2, events_pb2_grpc, message_pb2_grpc
from chat4all.v1 import message_pb2 as pb

MAX_PAGE = 100


class RemoteMessages(RemoteClient):
    service = "message"

    def __init__(
        self,
        channel: grpc.aio.Channel,
        internal_token: Callable[[], str],
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(channel, internal_token, timeout)
        self._stub = message_pb2_grpc.MessageServiceStub(channel)
        self._events = events_pb2_grpc.EventServiceStub(channel)

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
        """The answer carries the number and time the service gave the message, not its
        recipients or their statuses: `Appended.message` is the message as sent, with those
        (`to_user_ids` and `channel_delivery` are empty). Get the message for the rest."""
        request = pb.SendMessageRequest(
            conversation_id=str(conversation_id),
            message_id=str(message_id),
            payload=codec.payload(payload),
            target_channels=list(target_channels),
            reply_to_message_id=str(reply_to_message_id) if reply_to_message_id else None,
            metadata_json=codec.json_text(metadata),
        )
        answer = await self._call(self._stub.SendMessage, request, sender)
        created_at = codec.time(answer.created_at)
        message = Message(
            message_id=UUID(answer.message_id),
            conversation_id=UUID(answer.conversation_id),
            from_user_id=sender,
            to_user_ids=(),
            payload=payload,
            target_channels=target_channels,
            sequence_number=answer.sequence_number,
            status=DeliveryStatus(codec.status_text(answer.status)),
            status_history=(),
            channel_delivery={},
            created_at=created_at,
            updated_at=created_at,
            reply_to_message_id=reply_to_message_id,
            metadata=metadata or {},
        )
        return Appended(message, created=not answer.replayed)

    async def history(
        self,
        reader: UUID,
        conversation_id: UUID,
        after_seq: int | None,
        before_seq: int | None,
        limit: int,
    ) -> list[Message]:
        request = pb.ListMessagesRequest(
            conversation_id=str(conversation_id),
            after_sequence_number=after_seq,
            before_sequence_number=before_seq,
            page_size=max(1, min(limit, MAX_PAGE)),
        )
        page = await self._call(self._stub.ListMessages, request, reader)
        return [codec.message(m) for m in page.messages]

    async def get(self, reader: UUID, message_id: UUID) -> Message:
        request = pb.GetMessageRequest(message_id=str(message_id))
        return codec.message(await self._call(self._stub.GetMessage, request, reader))

    async def acknowledge(
        self,
        recipient: UUID,
        message_id: UUID,
        conversation_id: UUID,
        sequence_number: int,
        from_user_id: UUID,
    ) -> bool:
        """By the event service's `Ack`, which finds the rest from the message id."""
        request = events_pb2.AckRequest(message_id=str(message_id))
        return (await self._call(self._events.Ack, request, recipient)).recorded

    async def mark_read(
        self, reader: UUID, conversation_id: UUID, up_to_sequence_number: int
    ) -> int:
        request = pb.MarkReadRequest(
            conversation_id=str(conversation_id), up_to_sequence_number=up_to_sequence_number
        )
        return (await self._call(self._stub.MarkRead, request, reader)).last_read_sequence_number
