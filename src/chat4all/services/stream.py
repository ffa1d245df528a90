"""One client's real-time session: catch-up, resume, live messages without gaps, receipts.

Per conversation the session keeps a cursor: the last sequence number it sent to this client.
A live message past `cursor + 1` first sends what lies between, read from the store, so a
client never sees a gap; one at or below the cursor is a duplicate and is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID, uuid4

import orjson

from chat4all.domain.errors import Chat4AllError, InvalidInput, NotFound
from chat4all.domain.messages import MAX_SEQUENCE_NUMBER
from chat4all.ports.clock import Clock
from chat4all.ports.messages import MessageStore
from chat4all.ports.realtime import PresenceStore, RealtimeHub, Subscription
from chat4all.services.frames import frame, message_new, message_view
from chat4all.services.interfaces import Conversations, Messages
from chat4all.services.presence import announce

log = logging.getLogger(__name__)

PAGE = 100
TYPING_SECONDS = 6
TYPING_STATES = ("started", "stopped")
_RECENT = 1024  # messages remembered for acks, per session; older acks read the store

Send = Callable[[bytes], Awaitable[None]]


class StreamSession:
    def __init__(
        self,
        user_id: UUID,
        send: Send,
        *,
        store: MessageStore,
        messages: Messages,
        conversations: Conversations,
        hub: RealtimeHub,
        presence: PresenceStore,
        clock: Clock,
        typing_seconds: int = TYPING_SECONDS,
    ) -> None:
        self.user_id = user_id
        self.session_id = uuid4().hex
        self._send = send
        self._store = store
        self._messages = messages
        self._conversations = conversations
        self._hub = hub
        self._presence = presence
        self._clock = clock
        self._cursors: dict[UUID, int] = {}
        # message_id -> (conversation_id, sequence_number, from_user_id), as strings: plain
        # tuples of strings are not tracked by the garbage collector, UUID objects would be.
        self._recent: OrderedDict[str, tuple[str, int, str]] = OrderedDict()
        self._lock = asyncio.Lock()
        self._typing_seconds = typing_seconds
        # conversation -> the task that says "stopped" when this user's typing runs out
        self._typing: dict[UUID, asyncio.Task[None]] = {}

    async def open(self, after: Mapping[UUID, int] | None = None) -> Subscription:
        """Subscribe, announce, and send everything not yet delivered to this user (for the
        conversations in `after`, everything past the sequence number given)."""
        resume = await self._positions(after or {})
        subscription = await self._hub.subscribe(self.user_id)
        now = self._clock.now()
        came_online = await self._presence.connected(self.user_id, self.session_id, now)
        try:
            await self._send(
                frame("ready", {"user_id": str(self.user_id), "session_id": self.session_id})
            )
            await self._catch_up(resume)
            if came_online:  # after the client's own catch-up: contacts can wait, it cannot
                await self._announce(online=True, at=now)
        except BaseException:
            await subscription.close()
            await self.close()
            raise
        return subscription

    async def close(self) -> None:
        for cid in tuple(self._typing):
            with contextlib.suppress(Chat4AllError):
                await self._stop_typing(cid)
        now = self._clock.now()
        if await self._presence.disconnected(self.user_id, self.session_id, now):
            await self._announce(online=False, at=now)

    async def _announce(self, online: bool, at: datetime) -> None:
        try:
            await announce(self._hub, self._conversations, self.user_id, online, at)
        except Chat4AllError as e:  # presence is kept; only this push to the contacts is lost
            log.warning("presence of %s not announced: %s", self.user_id, e.detail)

    async def on_published(self, raw: bytes) -> None:
        """A frame from the hub: live messages go through the cursor check, others pass."""
        parsed = orjson.loads(raw)
        if parsed["type"] != "message.new":
            await self._send(raw)
            return
        data = parsed["data"]
        cid, seq = UUID(data["conversation_id"]), data["sequence_number"]
        async with self._lock:
            cursor = self._cursors.get(cid)
            if cursor is None:
                cursor = await self._initial_cursor(cid)
            if seq <= cursor:
                return
            if seq > cursor + 1:
                await self._replay(cid, cursor, before=seq)
            self._remember(data)
            self._cursors[cid] = seq
            await self._send(raw)

    async def on_client_frame(self, raw: str | bytes) -> None:
        """Handle one client frame; raises InvalidInput (a clear error frame) on bad content.
        The caller closes the connection when the frame is not JSON at all."""
        parsed = orjson.loads(raw)
        if not isinstance(parsed, dict) or not isinstance(parsed.get("type"), str):
            raise InvalidInput('a frame is a JSON object {"type": ..., "data": {...}}')
        data = parsed.get("data") or {}
        if not isinstance(data, dict):
            raise InvalidInput("`data` must be a JSON object")
        handler = self._handlers.get(parsed["type"])
        if handler is None:
            raise InvalidInput(
                f"unknown frame type {parsed['type']!r}; expected one of {sorted(self._handlers)}"
            )
        await handler(self, data)

    async def _on_ack(self, data: dict[str, Any]) -> None:
        message_id = _uuid(data, "message_id")
        known = self._recent.get(str(message_id))
        if known is not None:
            cid, seq, sender = known
            await self._messages.acknowledge(self.user_id, message_id, UUID(cid), seq, UUID(sender))
            return
        message = await self._store.get(message_id)
        if message is None or not await self._is_member(message.conversation_id):
            raise NotFound(f"message {message_id} does not exist")
        await self._messages.acknowledge(
            self.user_id,
            message_id,
            message.conversation_id,
            message.sequence_number,
            message.from_user_id,
        )

    async def _on_typing(self, data: dict[str, Any]) -> None:
        """`state: "started"` (the default) again at least every `expires_in` seconds while
        the user types; "stopped" when they stop. Typing that is not renewed stops by itself."""
        cid = _uuid(data, "conversation_id")
        state = data.get("state", "started")
        if state not in TYPING_STATES:
            raise InvalidInput(f"typing `state` must be one of {list(TYPING_STATES)}")
        if state == "stopped":
            await self._stop_typing(cid)
            return
        await publish_typing(
            self._hub, self._conversations, self.user_id, cid, self._typing_seconds
        )
        previous = self._typing.pop(cid, None)
        if previous is not None:
            previous.cancel()
        self._typing[cid] = asyncio.create_task(self._typing_runs_out(cid))

    async def _typing_runs_out(self, cid: UUID) -> None:
        await self._clock.sleep(self._typing_seconds)
        self._typing.pop(cid, None)
        with contextlib.suppress(Chat4AllError):  # the others' clients expire it themselves
            await publish_typing(self._hub, self._conversations, self.user_id, cid, 0)

    async def _stop_typing(self, cid: UUID) -> None:
        task = self._typing.pop(cid, None)
        if task is not None:
            task.cancel()
        await publish_typing(self._hub, self._conversations, self.user_id, cid, 0)

    async def _on_resume(self, data: dict[str, Any]) -> None:
        after = data.get("after")
        if not isinstance(after, dict):
            raise InvalidInput('resume needs `after`: {"<conversation_id>": <last seen seq>}')
        wanted = await self._positions(after)
        async with self._lock:
            for cid, seq in wanted.items():
                await self._replay(cid, seq, before=None)
        await self._send(frame("resumed", {str(c): self._cursors.get(c, 0) for c in wanted}))

    async def _on_ping(self, data: dict[str, Any]) -> None:
        await self._send(frame("pong", data))

    _handlers: ClassVar[dict[str, Callable[[StreamSession, dict[str, Any]], Awaitable[None]]]] = {
        "ack": _on_ack,
        "typing": _on_typing,
        "resume": _on_resume,
        "ping": _on_ping,
    }

    async def _positions(self, after: Mapping[Any, Any]) -> dict[UUID, int]:
        """Resume positions, checked: conversation ids of the user's, and sequence numbers."""
        wanted: dict[UUID, int] = {}
        for key, value in after.items():
            try:
                cid, seq = UUID(str(key)), int(value)
            except (ValueError, TypeError) as e:
                raise InvalidInput(
                    f"resume: {key!r}: {value!r} is not a conversation id and seq"
                ) from e
            if not 0 <= seq <= MAX_SEQUENCE_NUMBER:
                raise InvalidInput(f"resume: {seq} is not a sequence number")
            wanted[cid] = seq
        for cid in wanted:
            await self._conversations.member_ids(cid, self.user_id)
        return wanted

    async def _catch_up(self, resume: Mapping[UUID, int]) -> None:
        conversations = await self._conversations.for_user(self.user_id)
        async with self._lock:
            for view in conversations:
                cid = view.conversation.conversation_id
                start = resume.get(cid, view.members[0].last_delivered_seq)
                last = view.summary.last_sequence_number if view.summary else 0
                if last > start:
                    await self._replay(cid, start, before=None)
                else:
                    self._cursors[cid] = start

    async def _replay(self, cid: UUID, after: int, before: int | None) -> None:
        """Send the stored messages after `after` (and before `before`), in order."""
        self._cursors[cid] = after
        while True:
            page = await self._store.history(
                cid, after_seq=self._cursors[cid], before_seq=before, limit=PAGE
            )
            for message in page:
                view = message_view(message, full=False)
                self._remember(view)
                await self._send(message_new(view))
                self._cursors[cid] = message.sequence_number
            if len(page) < PAGE:
                return

    async def _initial_cursor(self, cid: UUID) -> int:
        try:
            return (await self._conversations.member(cid, self.user_id)).last_delivered_seq
        except NotFound:
            return 0

    async def _is_member(self, cid: UUID) -> bool:
        try:
            await self._conversations.member_ids(cid, self.user_id)
        except Chat4AllError:
            return False
        return True

    def _remember(self, view: dict[str, Any]) -> None:
        self._recent[view["message_id"]] = (
            view["conversation_id"],
            view["sequence_number"],
            view["from_user_id"],
        )
        if len(self._recent) > _RECENT:
            self._recent.popitem(last=False)


async def publish_typing(
    hub: RealtimeHub,
    conversations: Conversations,
    user_id: UUID,
    conversation_id: UUID,
    expires_in: int = TYPING_SECONDS,
) -> None:
    """Tell the conversation's other members that `user_id` is typing (for `expires_in`
    seconds unless renewed), or stopped typing (`expires_in` 0)."""
    members = await conversations.member_ids(conversation_id, user_id)
    others = [m for m in members if m != user_id]
    typing = {
        "conversation_id": str(conversation_id),
        "user_id": str(user_id),
        "state": "started" if expires_in else "stopped",
        "expires_in": expires_in,
    }
    await hub.publish(others, frame("typing", typing))


def _uuid(data: dict[str, Any], field: str) -> UUID:
    try:
        return UUID(str(data[field]))
    except (KeyError, ValueError) as e:
        raise InvalidInput(f"`data.{field}` must be a UUID") from e
