"""Client webhooks: register, list, remove, rotate the secret, the delivery log, replay."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field

from chat4all.api.rest import cursors
from chat4all.api.rest.deps import PROBLEM_RESPONSES, CallerDep
from chat4all.api.rest.schemas import Strict
from chat4all.domain.errors import InvalidInput
from chat4all.domain.webhooks import MAX_URL_LENGTH, DeliveryState, Webhook, WebhookEvent
from chat4all.services.webhooks import DeliveryLog

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=PROBLEM_RESPONSES)


class CreateWebhookRequest(BaseModel):
    model_config = Strict
    url: str = Field(max_length=MAX_URL_LENGTH, examples=["https://example.com/chat4all"])
    events: list[str] = Field(
        min_length=1, max_length=len(WebhookEvent) * 2, examples=[["message.sent"]]
    )


class RotateSecretRequest(BaseModel):
    model_config = Strict
    overlap_seconds: int | None = Field(
        None, ge=0, description="How long the old secret keeps signing (default: the setting)"
    )


class WebhookOut(BaseModel):
    webhook_id: UUID
    url: str
    events: list[WebhookEvent]
    created_at: datetime
    previous_secret_expires_at: datetime | None = None


class WebhookCreated(WebhookOut):
    secret: str = Field(description="`whsec_` + base64: verifies `webhook-signature`")


class WebhookPage(BaseModel):
    items: list[WebhookOut]


class SecretRotated(BaseModel):
    webhook_id: UUID
    secret: str
    previous_secret_expires_at: datetime | None


class AttemptOut(BaseModel):
    number: int
    at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None


class DeliveryOut(BaseModel):
    delivery_id: UUID = Field(description="Also the `webhook-id` header of every attempt")
    event_id: str
    event_type: str
    state: DeliveryState
    created_at: datetime
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    attempt_log: list[AttemptOut]


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None = None


@router.post("", status_code=status.HTTP_201_CREATED)
async def create(body: CreateWebhookRequest, caller: CallerDep) -> WebhookCreated:
    """Subscribe a URL to events. The answer carries the signing secret."""
    webhook = await caller.platform.webhooks.create(caller.user_id, body.url, body.events)
    return WebhookCreated(**_webhook_out(webhook).model_dump(), secret=webhook.secret)


@router.get("")
async def list_webhooks(caller: CallerDep) -> WebhookPage:
    webhooks = await caller.platform.webhooks.for_user(caller.user_id)
    return WebhookPage(items=[_webhook_out(w) for w in webhooks])


@router.get("/{webhook_id}")
async def get(webhook_id: UUID, caller: CallerDep) -> WebhookOut:
    return _webhook_out(await caller.platform.webhooks.get(caller.user_id, webhook_id))


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete(webhook_id: UUID, caller: CallerDep) -> Response:
    """Remove the webhook with its queued and logged deliveries."""
    await caller.platform.webhooks.delete(caller.user_id, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{webhook_id}/rotate-secret")
async def rotate_secret(
    webhook_id: UUID, caller: CallerDep, body: RotateSecretRequest | None = None
) -> SecretRotated:
    """A new secret. Until `previous_secret_expires_at`, deliveries carry a signature with
    each secret, so the receiver can switch at its own pace."""
    seconds = body.overlap_seconds if body else None
    webhook = await caller.platform.webhooks.rotate_secret(
        caller.user_id, webhook_id, None if seconds is None else timedelta(seconds=seconds)
    )
    return SecretRotated(
        webhook_id=webhook.webhook_id,
        secret=webhook.secret,
        previous_secret_expires_at=webhook.previous_secret_until,
    )


@router.get("/{webhook_id}/deliveries")
async def deliveries(
    webhook_id: UUID,
    caller: CallerDep,
    state: DeliveryState | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: str | None = None,
) -> DeliveryPage:
    """The webhook's deliveries, newest first, each with its attempts (status codes, timings)
    and next attempt. `state=dead` lists the dead letters."""
    before = None
    if cursor:
        position = cursors.decode(cursor)
        try:
            before = (datetime.fromisoformat(position["t"]), UUID(position["d"]))
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidInput("`cursor` is not a cursor this API gave out") from e
        if before[0].tzinfo is None:
            raise InvalidInput("`cursor` is not a cursor this API gave out")
    logs = await caller.platform.webhooks.deliveries(
        caller.user_id, webhook_id, state=state, before=before, limit=limit + 1
    )
    page = logs[:limit]
    next_cursor = None
    if len(logs) > limit:
        last = page[-1].delivery
        next_cursor = cursors.encode({"t": last.created_at.isoformat(), "d": str(last.delivery_id)})
    return DeliveryPage(items=[_delivery_out(log) for log in page], next_cursor=next_cursor)


@router.post("/{webhook_id}/deliveries/{delivery_id}/replay", status_code=status.HTTP_202_ACCEPTED)
async def replay(webhook_id: UUID, delivery_id: UUID, caller: CallerDep) -> DeliveryOut:
    """Send a dead (or delivered) delivery again, with the same `webhook-id`, through a new
    run of the retry schedule. 409 while it is still pending."""
    log = await caller.platform.webhooks.replay(caller.user_id, webhook_id, delivery_id)
    return _delivery_out(log)


def _webhook_out(webhook: Webhook) -> WebhookOut:
    return WebhookOut(
        webhook_id=webhook.webhook_id,
        url=webhook.url,
        events=list(webhook.events),
        created_at=webhook.created_at,
        previous_secret_expires_at=webhook.previous_secret_until,
    )


def _delivery_out(log: DeliveryLog) -> DeliveryOut:
    d = log.delivery
    return DeliveryOut(
        delivery_id=d.delivery_id,
        event_id=d.event_id,
        event_type=d.event_type,
        state=d.state,
        created_at=d.created_at,
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at,
        last_status_code=d.last_status_code,
        last_error=d.last_error,
        attempt_log=[
            AttemptOut(
                number=a.number,
                at=a.at,
                duration_ms=a.duration_ms,
                status_code=a.status_code,
                error=a.error,
            )
            for a in log.attempts
        ],
    )
