"""Real-time fan-out to connected clients, presence, and a small key-value cache.

Frames cross the hub encoded (JSON bytes), as they would through Redis pub/sub.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID


class SubscriptionLost(Exception):
    """The subscriber fell too far behind (or its connection to the hub broke) and was dropped;
    the client reconnects and resumes from its last sequence numbers."""


class Subscription(Protocol):
    async def get(self) -> bytes:
        """The next frame published to this subscription's user; raises SubscriptionLost."""
        ...

    async def close(self) -> None: ...


class RealtimeHub(Protocol):
    async def publish(self, user_ids: Sequence[UUID], frame: bytes) -> None:
        """Send `frame` to every connected session of every user in `user_ids`."""
        ...

    async def subscribe(self, user_id: UUID) -> Subscription: ...


@dataclass(frozen=True)
class PresenceState:
    user_id: UUID
    online: bool
    last_seen: datetime | None


class PresenceStore(Protocol):
    """Sessions per user. A user is online while one of their sessions is live; the store
    tells which call moved a user between online and offline, so that exactly one caller
    (across every gateway) announces each change."""

    async def connected(self, user_id: UUID, session_id: str, at: datetime) -> bool:
        """Record a new session; True when the user was offline before it (came online)."""
        ...

    async def disconnected(self, user_id: UUID, session_id: str, at: datetime) -> bool:
        """End a session; True when it was the user's last live one (went offline)."""
        ...

    async def states(self, user_ids: Sequence[UUID]) -> list[PresenceState]: ...

    async def sweep_expired(self) -> list[PresenceState]:
        """Users whose every session expired without a goodbye (their gateway died), now
        offline. Each such user is returned once, to one caller among all processes."""
        ...


class KeyValueCache(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None: ...

    async def delete(self, key: str) -> None: ...
