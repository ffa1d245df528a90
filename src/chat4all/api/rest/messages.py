"""Sending messages, history, and a message's status."""

from __future__ import annotations

import logging
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Query, Response, status

from chat4all.api.rest import cursors
from chat4all.api.rest.deps import PROBLEM_RESPONSES, CallerDep
from chat4all.api.rest.schemas import FilePayload, MessagePage, SendMessageOut, SendMessageRequest
from chat4all.bootstrap import Platform
from chat4all.domain.errors import InvalidInput
from chat4all.domain.messages import (
    ALL_CHANNELS,
    INTERNAL_CHANNEL,
    MAX_SEQUENCE_NUMBER,
    Payload,
    PayloadType,
)
from chat4all.services.frames import message_view

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["messages"], responses=PROBLEM_RESPONSES)


@router.post(
    "/conversations/{conversation_id}/messages",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SendMessageOut,
    responses={409: {"description": "The message_id was already used with another body"}},
)
async def send(
    conversation_id: UUID,
    body: SendMessageRequest,
    caller: CallerDep,
) -> Response:
    """Accept a message. The answer comes only after the message is durably stored; the same
    `message_id` again gets the same answer (with `Idempotent-Replayed: true`)."""
    p = body.payload
    payload = Payload(
        type=PayloadType(p.type),
        text=p.text,
        file_reference={"file_id": str(p.file_id)} if isinstance(p, FilePayload) else None,
        metadata=p.metadata,
    )
    appended = await caller.platform.messages.send(
        caller.user_id,
        conversation_id,
        body.message_id,
        payload,
        tuple(dict.fromkeys(body.target_channels or ())),
        body.reply_to_message_id,
        body.metadata,
    )
    m = appended.message
    # The hottest route answers with bytes made here: validating and serialising a response
    # model for five known fields cost more than the rest of the endpoint.
    accepted = {
        "message_id": str(m.message_id),
        "conversation_id": str(m.conversation_id),
        "sequence_number": m.sequence_number,
        "status": "sent",
        "created_at": m.created_at.isoformat(),
        "channels": _channel_results(caller.platform, m.target_channels),
    }
    headers = None if appended.created else {"Idempotent-Replayed": "true"}
    if log.isEnabledFor(logging.DEBUG):  # the hot path: no record built unless wanted
        log.debug(
            "message accepted" if appended.created else "message replayed",
            extra={"message_id": m.message_id, "conversation_id": m.conversation_id},
        )
    return Response(orjson.dumps(accepted), status.HTTP_202_ACCEPTED, headers, "application/json")


@router.get("/conversations/{conversation_id}/messages")
async def history(
    conversation_id: UUID,
    caller: CallerDep,
    after_seq: Annotated[int | None, Query(ge=0, le=MAX_SEQUENCE_NUMBER)] = None,
    before_seq: Annotated[int | None, Query(ge=1, le=MAX_SEQUENCE_NUMBER)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: str | None = None,
) -> MessagePage:
    """History in `sequence_number` order. With `after_seq` the page goes forward from it;
    otherwise it is the newest page (before `before_seq` when given). `next_cursor` continues
    in the same direction."""
    if cursor:
        position = cursors.decode(cursor)
        after_seq, before_seq = position.get("a"), position.get("b")
        if not all(_is_sequence(v) for v in (after_seq, before_seq)):
            raise InvalidInput("`cursor` is not a cursor this API gave out")
    page = await caller.platform.messages.history(
        caller.user_id, conversation_id, after_seq, before_seq, limit
    )
    items: list[dict[str, Any]] = [message_view(m) for m in page]
    next_cursor = None
    if len(page) == limit:
        if after_seq is not None:
            next_cursor = cursors.encode({"a": page[-1].sequence_number, "b": before_seq})
        elif page[0].sequence_number > 1:
            next_cursor = cursors.encode({"b": page[0].sequence_number})
    return MessagePage(items=items, next_cursor=next_cursor)


@router.get("/messages/{message_id}")
async def get_message(message_id: UUID, caller: CallerDep) -> dict[str, Any]:
    """The message with its status per recipient and channel, and its status history."""
    return message_view(await caller.platform.messages.get(caller.user_id, message_id))


def _channel_results(platform: Platform, targets: tuple[str, ...]) -> dict[str, str]:
    """Per requested channel: `queued` (a delivery job will be made per recipient) or
    `unavailable` (no connector: it fails at once, with the reason in the message's status).
    By default the router adds the recipients' linked channels; their statuses tell."""
    installed = platform.channels.channel_types if platform.channels else []
    names = [c for c in targets if c != ALL_CHANNELS] or [INTERNAL_CHANNEL]
    return {
        c: "queued" if c == INTERNAL_CHANNEL or c in installed else "unavailable" for c in names
    } | ({c: "queued" for c in installed} if ALL_CHANNELS in targets else {})


def _is_sequence(value: object) -> bool:
    return value is None or (type(value) is int and 0 <= value <= MAX_SEQUENCE_NUMBER)
