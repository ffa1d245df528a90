"""Conversations, members, read watermarks."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from chat4all.api.rest import cursors
from chat4all.api.rest.deps import PROBLEM_RESPONSES, CallerDep
from chat4all.api.rest.schemas import (
    AddMemberRequest,
    ConversationOut,
    ConversationPage,
    CreateConversationRequest,
    LastMessageOut,
    MemberOut,
    ReadOut,
    ReadRequest,
    SetRoleRequest,
)
from chat4all.domain.conversations import Member
from chat4all.domain.errors import InvalidInput
from chat4all.services.interfaces import ConversationView

router = APIRouter(prefix="/v1/conversations", tags=["conversations"], responses=PROBLEM_RESPONSES)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create(
    body: CreateConversationRequest,
    caller: CallerDep,
    response: Response,
) -> ConversationOut:
    """Start a conversation. A second private conversation between the same two users returns
    the first (200 instead of 201)."""
    view, created = await caller.platform.conversations.create(
        caller.user_id, body.type, body.members, body.metadata
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return conversation_out(view)


@router.get("")
async def list_conversations(
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: str | None = None,
) -> ConversationPage:
    """The caller's conversations, newest activity first, with the last message and the
    number of unread messages."""
    views = await caller.platform.conversations.for_user(caller.user_id)
    if cursor:
        position = cursors.decode(cursor)
        try:
            after = (position["t"], position["c"])
        except KeyError as e:
            raise InvalidInput("`cursor` is not a cursor this API gave out") from e
        views = [v for v in views if _sort_key(v) < after]
    page = views[:limit]
    next_cursor = None
    if len(views) > limit:
        t, c = _sort_key(page[-1])
        next_cursor = cursors.encode({"t": t, "c": c})
    return ConversationPage(items=[conversation_out(v) for v in page], next_cursor=next_cursor)


@router.get("/{conversation_id}")
async def get(conversation_id: UUID, caller: CallerDep) -> ConversationOut:
    return conversation_out(
        await caller.platform.conversations.get(caller.user_id, conversation_id)
    )


@router.post("/{conversation_id}/members", status_code=status.HTTP_201_CREATED)
async def add_member(conversation_id: UUID, body: AddMemberRequest, caller: CallerDep) -> MemberOut:
    member = await caller.platform.conversations.add_member(
        caller.user_id, conversation_id, body.user_id, body.role
    )
    return member_out(member)


@router.patch("/{conversation_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def set_role(
    conversation_id: UUID,
    user_id: UUID,
    body: SetRoleRequest,
    caller: CallerDep,
) -> Response:
    await caller.platform.conversations.set_role(
        caller.user_id, conversation_id, user_id, body.role
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/{conversation_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_member(conversation_id: UUID, user_id: UUID, caller: CallerDep) -> Response:
    await caller.platform.conversations.remove_member(caller.user_id, conversation_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{conversation_id}/read")
async def mark_read(conversation_id: UUID, body: ReadRequest, caller: CallerDep) -> ReadOut:
    """Move the caller's read watermark: every message up to `up_to_sequence_number` becomes
    `read` for the caller, and each sender is told."""
    watermark = await caller.platform.messages.mark_read(
        caller.user_id, conversation_id, body.up_to_sequence_number
    )
    return ReadOut(conversation_id=conversation_id, last_read_sequence_number=watermark)


def _sort_key(view: ConversationView) -> tuple[str, str]:
    return view.last_activity.isoformat(), str(view.conversation.conversation_id)


def member_out(m: Member) -> MemberOut:
    return MemberOut(
        user_id=m.user_id,
        role=m.role,
        joined_at=m.joined_at,
        last_read_sequence_number=m.last_read_seq,
        last_delivered_sequence_number=m.last_delivered_seq,
    )


def conversation_out(view: ConversationView) -> ConversationOut:
    c, summary = view.conversation, view.summary
    last = summary.last_message if summary else None
    return ConversationOut(
        conversation_id=c.conversation_id,
        type=c.type,
        created_by=c.created_by,
        created_at=c.created_at,
        metadata=c.metadata,
        members=[member_out(m) for m in view.members],
        last_sequence_number=summary.last_sequence_number if summary else 0,
        last_message=LastMessageOut.model_validate(last) if last else None,
        unread_count=view.unread_count,
    )
