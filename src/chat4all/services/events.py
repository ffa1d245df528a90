"""A user's real-time events as an async iterator: the stream session (the WebSocket's) without
the WebSocket, for the gRPC EventService.

A driver task runs the session (catch-up, then live frames from the hub) into a bounded queue;
the consumer reads the queue. A consumer that stops reading blocks the driver, whose hub
subscription then fills up and is dropped: the stream ends with `LimitExceeded`, and the client
subscribes again with its last sequence numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from uuid import UUID

import orjson

from chat4all.domain.errors import LimitExceeded
from chat4all.ports.realtime import RealtimeHub, SubscriptionLost
from chat4all.services.interfaces import Conversations, Frame, Messages
from chat4all.services.stream import TYPING_SECONDS, Send, StreamSession, publish_typing

BUFFER = 256  # frames between the session and a slow consumer


class SessionStream:
    """One open stream (implements `EventStream`)."""

    def __init__(self, session: StreamSession, queue: asyncio.Queue[bytes]) -> None:
        self._session = session
        self._queue = queue
        self._driver: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def session_id(self) -> str:
        return self._session.session_id

    async def start(self, after: Mapping[UUID, int] | None) -> None:
        """Run the session; return once it is live (its `ready` frame was sent)."""
        self._driver = asyncio.create_task(self._drive(after), name=f"events:{self.session_id}")
        try:
            ready = orjson.loads(await self._next_raw())
        except BaseException:
            await self.close()
            raise
        assert ready["type"] == "ready", ready

    def __aiter__(self) -> SessionStream:
        return self

    async def __anext__(self) -> Frame:
        if self._closed:
            raise StopAsyncIteration
        frame: Frame = orjson.loads(await self._next_raw())
        return frame

    async def close(self) -> None:
        self._closed = True
        if self._driver is not None:
            self._driver.cancel()
            with contextlib.suppress(BaseException):
                await self._driver

    async def _drive(self, after: Mapping[UUID, int] | None) -> None:
        subscription = await self._session.open(after)
        try:
            while True:
                await self._session.on_published(await subscription.get())
        finally:
            await subscription.close()
            await self._session.close()

    async def _next_raw(self) -> bytes:
        if not self._queue.empty():
            return self._queue.get_nowait()
        assert self._driver is not None
        getter = asyncio.ensure_future(self._queue.get())
        try:
            await asyncio.wait({getter, self._driver}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not getter.done():
                getter.cancel()
        if getter.done() and not getter.cancelled():
            return getter.result()
        error = self._driver.exception()
        if isinstance(error, SubscriptionLost):
            raise LimitExceeded(
                "the subscriber fell too far behind; subscribe again with `after` set to the "
                "last sequence numbers seen"
            ) from error
        raise error or StopAsyncIteration


class EventService:
    """Implements `Events` in process, on the same stream sessions as the WebSocket."""

    def __init__(
        self,
        sessions: Callable[[UUID, Send], StreamSession],
        messages: Messages,
        conversations: Conversations,
        hub: RealtimeHub,
        buffer: int = BUFFER,
        typing_seconds: int = TYPING_SECONDS,
    ) -> None:
        self._sessions = sessions
        self._typing_seconds = typing_seconds
        self._messages = messages
        self._conversations = conversations
        self._hub = hub
        self._buffer = buffer

    async def subscribe(
        self, user_id: UUID, after: Mapping[UUID, int] | None = None
    ) -> SessionStream:
        queue: asyncio.Queue[bytes] = asyncio.Queue(self._buffer)
        stream = SessionStream(self._sessions(user_id, queue.put), queue)
        await stream.start(after)
        return stream

    async def ack(self, user_id: UUID, message_id: UUID) -> bool:
        message = await self._messages.get(user_id, message_id)
        return await self._messages.acknowledge(
            user_id,
            message_id,
            message.conversation_id,
            message.sequence_number,
            message.from_user_id,
        )

    async def typing(self, user_id: UUID, conversation_id: UUID) -> None:
        await publish_typing(
            self._hub, self._conversations, user_id, conversation_id, self._typing_seconds
        )
