"""In-process real-time hub, presence and cache (the embedded profile's stand-in for Redis)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from chat4all.ports.clock import Clock
from chat4all.ports.realtime import PresenceState, SubscriptionLost

# A session that stops reading (a stalled client) must not grow memory without bound; past
# this many frames it is cut off and resumes from its last sequence numbers on reconnect.
MAX_QUEUED_FRAMES = 10_000


class _Subscription:
    def __init__(self, hub: InProcessHub, user_id: UUID) -> None:
        self._hub = hub
        self.user_id = user_id
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(MAX_QUEUED_FRAMES)

    async def get(self) -> bytes:
        frame = await self.queue.get()
        if frame is None:
            raise SubscriptionLost("the session fell too far behind")
        return frame

    async def close(self) -> None:
        self._hub._remove(self)


class InProcessHub:
    def __init__(self) -> None:
        self._subscribers: dict[UUID, set[_Subscription]] = defaultdict(set)

    async def publish(self, user_ids: Sequence[UUID], frame: bytes) -> None:
        for user_id in user_ids:
            for sub in tuple(self._subscribers.get(user_id, ())):
                try:
                    sub.queue.put_nowait(frame)
                except asyncio.QueueFull:
                    self._remove(sub)
                    sub.queue.get_nowait()
                    sub.queue.put_nowait(None)

    async def subscribe(self, user_id: UUID) -> _Subscription:
        sub = _Subscription(self, user_id)
        self._subscribers[user_id].add(sub)
        return sub

    def _remove(self, sub: _Subscription) -> None:
        subs = self._subscribers.get(sub.user_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subscribers[sub.user_id]


class InProcessPresence:
    def __init__(self) -> None:
        self._sessions: dict[UUID, set[str]] = defaultdict(set)
        self._last_seen: dict[UUID, datetime] = {}

    async def connected(self, user_id: UUID, session_id: str, at: datetime) -> bool:
        sessions = self._sessions[user_id]
        came_online = not sessions
        sessions.add(session_id)
        self._last_seen[user_id] = max(at, self._last_seen.get(user_id, at))
        return came_online

    async def disconnected(self, user_id: UUID, session_id: str, at: datetime) -> bool:
        self._last_seen[user_id] = max(at, self._last_seen.get(user_id, at))
        sessions = self._sessions.get(user_id)
        if sessions is None or session_id not in sessions:
            return False
        sessions.discard(session_id)
        if sessions:
            return False
        del self._sessions[user_id]
        return True

    async def states(self, user_ids: Sequence[UUID]) -> list[PresenceState]:
        return [
            PresenceState(u, bool(self._sessions.get(u)), self._last_seen.get(u)) for u in user_ids
        ]

    async def sweep_expired(self) -> list[PresenceState]:
        # The sessions live in this process and end with it: none can outlive its gateway.
        return []


class InProcessCache:
    """A dict with expiry times, read against the injected clock."""

    def __init__(self, clock: Clock, max_entries: int = 100_000) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[str, tuple[bytes, float | None]] = {}

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and expires <= self._clock.monotonic():
            del self._entries[key]
            return None
        return value

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        if len(self._entries) >= self._max_entries and key not in self._entries:
            self._evict()
        expires = self._clock.monotonic() + ttl_seconds if ttl_seconds is not None else None
        self._entries[key] = (value, expires)

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    def _evict(self) -> None:
        now = self._clock.monotonic()
        expired = [k for k, (_, exp) in self._entries.items() if exp is not None and exp <= now]
        for key in expired:
            del self._entries[key]
        if len(self._entries) >= self._max_entries:  # still full: drop the oldest tenth
            for key in list(self._entries)[: self._max_entries // 10]:
                del self._entries[key]
