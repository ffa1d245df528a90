"""chat4all.v1.EventService: the WebSocket's events as a server stream."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from chat4all.api.grpc import codec
from chat4all.api.grpc.errors import Context, streaming, unary
from chat4all.api.grpc.identity import Callers
from chat4all.observability import metrics
from chat4all.services.interfaces import Events
from chat4all.v1 import events_pb2 as pb
from chat4all.v1 import events_pb2_grpc


class EventServicer(events_pb2_grpc.EventServiceServicer):
    def __init__(self, events: Events, callers: Callers) -> None:
        self._events = events
        self._callers = callers

    @streaming
    async def Subscribe(
        self, request: pb.SubscribeRequest, context: Context
    ) -> AsyncGenerator[pb.Event, None]:
        user_id = await self._callers.user_id(context)
        after = {codec.uuid(cid, "after"): seq for cid, seq in request.after.items()}
        stream = await self._events.subscribe(user_id, after)
        open_streams = metrics.STREAM_CONNECTIONS.labels("grpc")
        open_streams.inc()
        try:
            yield pb.Event(ready=pb.Ready(user_id=str(user_id), session_id=stream.session_id))
            async for frame in stream:
                event = codec.event(frame)
                if event is not None:
                    yield event
        finally:
            open_streams.dec()
            await stream.close()

    @unary
    async def Ack(self, request: pb.AckRequest, context: Context) -> pb.AckResponse:
        user_id = await self._callers.user_id(context)
        recorded = await self._events.ack(user_id, codec.uuid(request.message_id, "message_id"))
        return pb.AckResponse(recorded=recorded)

    @unary
    async def Typing(self, request: pb.TypingRequest, context: Context) -> pb.TypingResponse:
        user_id = await self._callers.user_id(context)
        cid = codec.uuid(request.conversation_id, "conversation_id")
        await self._events.typing(user_id, cid)
        return pb.TypingResponse()
