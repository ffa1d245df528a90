"""External channels: platform webhooks in, people's channel identities, and dead letters
(for operators, with the admin token)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from chat4all.api.problems import problem
from chat4all.api.rest.deps import PROBLEM_RESPONSES, CallerDep, PlatformDep
from chat4all.bootstrap import Platform
from chat4all.domain.errors import Forbidden, NotFound, Unauthenticated
from chat4all.ports.channels import DeadLetter, LinkedChannel
from chat4all.ports.connectors import WebhookRejected
from chat4all.services.channels import ChannelService

router = APIRouter(prefix="/v1", tags=["channels"], responses=PROBLEM_RESPONSES)

ChannelType = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,31}$")]


def _channels(platform: Platform) -> ChannelService:
    if platform.channels is None:
        raise NotFound("external channels are not enabled on this server")
    return platform.channels


@router.get("/channels/{channel_type}/{account_id}/webhook", response_class=PlainTextResponse)
async def webhook_handshake(
    channel_type: str, account_id: str, request: Request, platform: PlatformDep
) -> Response:
    """Meta's subscription check: `hub.challenge` back when `hub.verify_token` matches."""
    try:
        challenge = await _channels(platform).handshake(
            channel_type, account_id, dict(request.query_params)
        )
    except WebhookRejected as e:
        return _rejected(e, request)
    return PlainTextResponse(challenge)


@router.post("/channels/{channel_type}/{account_id}/webhook")
async def webhook(
    channel_type: str, account_id: str, request: Request, platform: PlatformDep
) -> Response:
    """A platform's webhook: verified on the raw body, stored durably, then answered 200.
    Messages and receipts are applied by the inbound worker."""
    body = await request.body()
    try:
        answer = await _channels(platform).receive_webhook(
            channel_type, account_id, body, request.headers
        )
    except WebhookRejected as e:
        return _rejected(e, request)
    if answer.status >= 400:
        return problem(
            answer.status, "malformed-webhook", "Malformed webhook", answer.detail, request.url.path
        )
    return Response(
        orjson.dumps({"ok": True, "detail": answer.detail}), media_type="application/json"
    )


def _rejected(e: WebhookRejected, request: Request) -> Response:
    return problem(e.status, "webhook-rejected", "Webhook rejected", e.reason, request.url.path)


class LinkRequest(BaseModel):
    channel_user_id: str = Field(min_length=1, max_length=255)
    priority: int | None = Field(
        None,
        ge=0,
        le=100,
        description="Place in your fallback order (lowest first); leave out to be reached on "
        "this channel alongside the others.",
    )


class LinkOut(BaseModel):
    channel_type: str
    channel_user_id: str
    priority: int | None = None


def _link_out(link: LinkedChannel) -> LinkOut:
    return LinkOut(
        channel_type=link.channel_type,
        channel_user_id=link.channel_user_id,
        priority=link.priority,
    )


@router.put("/users/me/channels/{channel_type}")
async def link_channel(channel_type: ChannelType, body: LinkRequest, caller: CallerDep) -> LinkOut:
    """Link your identity on a channel (a WhatsApp number, a Telegram chat id, a Messenger or
    Instagram id); messages to you go there too."""
    link = await _channels(caller.platform).link(
        caller.user_id, channel_type, body.channel_user_id, body.priority
    )
    return _link_out(link)


@router.get("/users/me/channels")
async def my_channels(caller: CallerDep) -> list[LinkOut]:
    return [_link_out(k) for k in await _channels(caller.platform).links(caller.user_id)]


async def _admin(request: Request, platform: PlatformDep) -> ChannelService:
    expected = request.app.state.admin_token if hasattr(request.app.state, "admin_token") else None
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if not expected:
        raise Forbidden("the admin API is off: set CHAT4ALL_ADMIN_TOKEN to use it")
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("send the admin token: `Authorization: Bearer <token>`")
    if not hmac.compare_digest(token.encode(), str(expected).encode()):
        raise Forbidden("that is not the admin token")
    return _channels(platform)


AdminDep = Annotated[ChannelService, Depends(_admin)]


class DeadLetterOut(BaseModel):
    id: UUID
    channel_type: str
    account_id: str | None
    message_id: UUID
    recipient_id: UUID
    reason: str
    created_at: Any
    replayed_at: Any = None


def _letter_out(letter: DeadLetter) -> DeadLetterOut:
    return DeadLetterOut(
        id=letter.id,
        channel_type=letter.channel_type,
        account_id=letter.account_id,
        message_id=letter.message_id,
        recipient_id=letter.recipient_id,
        reason=letter.reason,
        created_at=letter.created_at,
        replayed_at=letter.replayed_at,
    )


@router.get("/admin/dead-letters")
async def dead_letters(
    channels: AdminDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    include_replayed: bool = False,
) -> list[DeadLetterOut]:
    """Deliveries that ran out of tries, newest first, with the reason."""
    return [_letter_out(d) for d in await channels.dead_letters(limit, include_replayed)]


@router.post("/admin/dead-letters/{letter_id}/replay", status_code=202)
async def replay_dead_letter(letter_id: UUID, channels: AdminDep) -> DeadLetterOut:
    """Deliver the job again, with a fresh set of tries."""
    return _letter_out(await channels.replay(letter_id))
