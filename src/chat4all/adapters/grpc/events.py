"""The event service over gRPC (implements `Events`): the server stream read as frames."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from uuid import UUID

import grpc

from chat4all.adapters.grpc import codec
from chat4all.adapters.grpc.base import DEFAULT_TIMEOUT, RemoteClient
from chat4all.adapters.grpc.errors import domain_error
from chat4all.domain.errors import Unavailable
from chat4all.services.interfaces import Frame
from chat4all.v1 import events_pb2 as pb
from chat4all.v1 import events_pb2_grpc

Call = grpc.aio.UnaryStreamCall[pb.SubscribeRequest, pb.Event]


class RemoteEventStream:
    """One subscription (implements `EventStream`)."""

    def __init__(self, call: Call, session_id: str) -> None:
        self._call = call
        self._session_id = session_id

    @property
    def session_id(self) -> str:
        return self._session_id

    def __aiter__(self) -> RemoteEventStream:
        return self

    async def __anext__(self) -> Frame:
        while True:
            event = await _read(self._call)
            if event is None:
                raise StopAsyncIteration
            frame = codec.frame(event)
            if frame is not None:
                return frame

    async def close(self) -> None:
        self._call.cancel()


class RemoteEvents(RemoteClient):
    service = "events"

    def __init__(
        self,
        channel: grpc.aio.Channel,
        internal_token: Callable[[], str],
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(channel, internal_token, timeout)
        self._stub = events_pb2_grpc.EventServiceStub(channel)

    async def subscribe(
        self, user_id: UUID, after: Mapping[UUID, int] | None = None
    ) -> RemoteEventStream:
        request = pb.SubscribeRequest(after={str(c): s for c, s in (after or {}).items()})
        call = self._stub.Subscribe(request, metadata=self._metadata(user_id))
        try:
            first = await asyncio.wait_for(_read(call), self._timeout)
        except TimeoutError as e:
            call.cancel()
            raise Unavailable("the events service did not open the stream in time") from e
        except BaseException:
            call.cancel()
            raise
        if first is None or first.WhichOneof("event") != "ready":
            call.cancel()
            raise Unavailable("the events service ended the stream before it was ready")
        return RemoteEventStream(call, first.ready.session_id)

    async def ack(self, user_id: UUID, message_id: UUID) -> bool:
        request = pb.AckRequest(message_id=str(message_id))
        return (await self._call(self._stub.Ack, request, user_id)).recorded

    async def typing(self, user_id: UUID, conversation_id: UUID) -> None:
        request = pb.TypingRequest(conversation_id=str(conversation_id))
        await self._call(self._stub.Typing, request, user_id)


async def _read(call: Call) -> pb.Event | None:
    """The next event; None at the end of the stream."""
    try:
        event = await call.read()
    except grpc.aio.AioRpcError as e:
        raise domain_error(e, "events") from e
    return event if isinstance(event, pb.Event) else None  # else grpc.aio.EOF
