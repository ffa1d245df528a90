"""The caller, other users, presence."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from chat4all.api.rest.deps import PROBLEM_RESPONSES, CallerDep
from chat4all.api.rest.schemas import PresenceOut, UserOut
from chat4all.domain.errors import InvalidInput, NotFound, Unauthenticated

router = APIRouter(prefix="/v1", tags=["users"], responses=PROBLEM_RESPONSES)


@router.get("/users/me")
async def me(caller: CallerDep) -> UserOut:
    user = await caller.platform.auth.get_user(caller.user_id)
    return UserOut(
        user_id=user.user_id, username=user.username, email=user.email, created_at=user.created_at
    )


@router.get("/users/by-username/{username}")
async def by_username(username: str, caller: CallerDep) -> UserOut:
    """Find someone to talk to. Only the id and username are shown."""
    return UserOut(user_id=await caller.platform.auth.user_id_of(username), username=username)


@router.get("/presence")
async def presence(
    caller: CallerDep,
    user_ids: Annotated[str, Query(description="Comma-separated user ids (at most 100)")],
) -> list[PresenceOut]:
    try:
        ids = [UUID(u) for u in user_ids.split(",") if u.strip()]
    except ValueError as e:
        raise InvalidInput("`user_ids` must be comma-separated UUIDs") from e
    if not 1 <= len(ids) <= 100:
        raise InvalidInput("give between 1 and 100 user ids")
    states = await caller.platform.presence.states(ids)
    return [PresenceOut(user_id=s.user_id, online=s.online, last_seen=s.last_seen) for s in states]


@router.get("/users/{user_id}")
async def by_id(user_id: UUID, caller: CallerDep) -> UserOut:
    """Name a user seen by id (a member, a sender). Only the id and username are shown."""
    try:
        user = await caller.platform.auth.get_user(user_id)
    except Unauthenticated as e:  # what get_user says of a caller whose account is gone
        raise NotFound(f"no user has the id {user_id}") from e
    return UserOut(user_id=user.user_id, username=user.username)
