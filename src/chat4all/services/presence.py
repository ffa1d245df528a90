"""Presence of users: online now, or when last seen."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from chat4all.domain.errors import InvalidInput
from chat4all.ports.realtime import PresenceState, PresenceStore

MAX_USERS = 100


class PresenceService:
    def __init__(self, store: PresenceStore) -> None:
        self._store = store

    async def states(self, user_ids: Sequence[UUID]) -> list[PresenceState]:
        if not 1 <= len(user_ids) <= MAX_USERS:
            raise InvalidInput(f"give between 1 and {MAX_USERS} user ids")
        return await self._store.states(user_ids)
