"""Presence of users: online now, or when last seen; and telling their contacts when it changes.

A user's contacts are the other members of their conversations. A `presence` frame goes to them
when the user's first session opens, when their last one closes, and when every session of theirs
expired because its gateway died (the sweep, run by every gateway; the store hands each expired
user to one of them).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from chat4all.domain.errors import Chat4AllError, InvalidInput
from chat4all.ports.clock import Clock
from chat4all.ports.realtime import PresenceState, PresenceStore, RealtimeHub
from chat4all.services.frames import frame
from chat4all.services.interfaces import Conversations

log = logging.getLogger(__name__)

MAX_USERS = 100


class PresenceService:
    def __init__(self, store: PresenceStore) -> None:
        self._store = store

    async def states(self, user_ids: Sequence[UUID]) -> list[PresenceState]:
        if not 1 <= len(user_ids) <= MAX_USERS:
            raise InvalidInput(f"give between 1 and {MAX_USERS} user ids")
        return await self._store.states(user_ids)


def presence_frame(user_id: UUID, online: bool, last_seen: datetime | None) -> bytes:
    return frame(
        "presence",
        {
            "user_id": str(user_id),
            "online": online,
            "last_seen": last_seen.isoformat() if last_seen else None,
        },
    )


async def contacts(conversations: Conversations, user_id: UUID) -> list[UUID]:
    """The other members of the user's conversations."""
    found: set[UUID] = set()
    for view in await conversations.for_user(user_id):
        found.update(await conversations.member_ids(view.conversation.conversation_id, user_id))
    found.discard(user_id)
    return sorted(found)


async def announce(
    hub: RealtimeHub,
    conversations: Conversations,
    user_id: UUID,
    online: bool,
    last_seen: datetime | None,
) -> None:
    """Push the user's new presence to their contacts' sessions."""
    others = await contacts(conversations, user_id)
    if others:
        await hub.publish(others, presence_frame(user_id, online, last_seen))


class PresenceSweeper:
    """Announces users gone offline because their gateway died without closing their sessions."""

    def __init__(
        self,
        store: PresenceStore,
        hub: RealtimeHub,
        conversations: Conversations,
        clock: Clock,
        interval_seconds: float,
    ) -> None:
        self._store = store
        self._hub = hub
        self._conversations = conversations
        self._clock = clock
        self._interval = interval_seconds

    async def sweep_once(self) -> int:
        gone = await self._store.sweep_expired()
        for state in gone:
            try:
                await announce(
                    self._hub, self._conversations, state.user_id, False, state.last_seen
                )
            except (
                Chat4AllError
            ) as e:  # the store already counts them offline; only the push is lost
                log.warning("presence: could not announce %s offline: %s", state.user_id, e.detail)
        return len(gone)

    async def run(self) -> None:
        while True:
            await self._clock.sleep(self._interval)
            await self.sweep_once()
