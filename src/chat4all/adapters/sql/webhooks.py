"""Transactions on client webhooks and their delivery queue (`webhooks`, `webhook_deliveries`,
`webhook_attempts`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from chat4all.adapters.sql.errors import is_foreign_key_violation, violates
from chat4all.adapters.sql.schema import webhook_attempts, webhook_deliveries, webhooks
from chat4all.domain.errors import AlreadyExists, Conflict, InvalidInput
from chat4all.domain.webhooks import Attempt, Delivery, DeliveryState, Webhook, WebhookEvent
from chat4all.ports.webhooks import Claim, Outcome

_IN_CHUNK = 500
# Claims take this transaction-scoped advisory lock on PostgreSQL, so that the per-webhook
# count of leases is exact across dispatchers (SQLite's BEGIN IMMEDIATE already serializes).
_CLAIM_LOCK = 0x0C4A11_0E5  # any constant shared by every dispatcher
_ERROR_LENGTH = 500


async def create_webhook_txn(conn: AsyncConnection, webhook: Webhook) -> None:
    try:
        await conn.execute(webhooks.insert().values(**_webhook_values(webhook)))
    except IntegrityError as e:
        if violates(e, webhooks, "pk_webhooks"):
            raise AlreadyExists(f"webhook {webhook.webhook_id} already exists") from e
        if is_foreign_key_violation(e):
            raise InvalidInput(f"user {webhook.user_id} does not exist") from e
        raise


async def get_webhook_txn(conn: AsyncConnection, webhook_id: UUID) -> Webhook | None:
    row = (
        (await conn.execute(select(webhooks).where(webhooks.c.webhook_id == webhook_id)))
        .mappings()
        .first()
    )
    return _webhook(row) if row is not None else None


async def list_webhooks_txn(conn: AsyncConnection, user_id: UUID) -> list[Webhook]:
    query = (
        select(webhooks)
        .where(webhooks.c.user_id == user_id)
        .order_by(webhooks.c.created_at, webhooks.c.webhook_id)
    )
    return [_webhook(row) for row in (await conn.execute(query)).mappings()]


async def delete_webhook_txn(conn: AsyncConnection, webhook_id: UUID) -> bool:
    result = await conn.execute(webhooks.delete().where(webhooks.c.webhook_id == webhook_id))
    return bool(result.rowcount)


async def save_secrets_txn(conn: AsyncConnection, webhook: Webhook) -> bool:
    result = await conn.execute(
        webhooks.update()
        .where(webhooks.c.webhook_id == webhook.webhook_id)
        .values(
            secret=webhook.secret,
            previous_secret=webhook.previous_secret,
            previous_secret_until=webhook.previous_secret_until,
        )
    )
    return bool(result.rowcount)


async def subscribers_txn(
    conn: AsyncConnection, user_ids: list[UUID], event_type: str
) -> list[Webhook]:
    # Events are a JSON list (SQLite has no arrays): filtered here rather than in SQL.
    found: list[Webhook] = []
    for start in range(0, len(user_ids), _IN_CHUNK):
        query = select(webhooks).where(
            webhooks.c.user_id.in_(user_ids[start : start + _IN_CHUNK]), webhooks.c.is_active
        )
        found.extend(_webhook(row) for row in (await conn.execute(query)).mappings())
    return [w for w in found if event_type in w.events]


async def enqueue_deliveries_txn(conn: AsyncConnection, deliveries: Sequence[Delivery]) -> int:
    ids = list(dict.fromkeys(d.delivery_id for d in deliveries))
    known: set[UUID] = set()
    for start in range(0, len(ids), _IN_CHUNK):
        query = select(webhook_deliveries.c.delivery_id).where(
            webhook_deliveries.c.delivery_id.in_(ids[start : start + _IN_CHUNK])
        )
        known.update((await conn.execute(query)).scalars())
    new = {d.delivery_id: d for d in deliveries if d.delivery_id not in known}
    if new:
        try:
            await conn.execute(
                webhook_deliveries.insert(), [_delivery_values(d) for d in new.values()]
            )
        except IntegrityError as e:
            if is_foreign_key_violation(e):  # a webhook deleted meanwhile: the caller retries
                raise Conflict("a webhook was deleted while its deliveries were queued") from e
            raise
    return len(new)


async def claim_deliveries_txn(
    conn: AsyncConnection, now: datetime, limit: int, per_webhook: int, lease: timedelta
) -> list[Claim]:
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CLAIM_LOCK})
    d = webhook_deliveries
    leased = await conn.execute(
        select(d.c.webhook_id, func.count())
        .where(d.c.leased_until > now, d.c.state == DeliveryState.PENDING.value)
        .group_by(d.c.webhook_id)
    )
    held: Counter[UUID] = Counter({webhook_id: count for webhook_id, count in leased})
    # Read a few times the limit, so that one busy webhook's backlog does not hide the others'.
    due = (
        await conn.execute(
            select(d, webhooks)
            .join(webhooks, webhooks.c.webhook_id == d.c.webhook_id)
            .where(d.c.state == DeliveryState.PENDING.value, d.c.next_attempt_at <= now)
            .order_by(d.c.next_attempt_at, d.c.delivery_id)
            .limit(limit * 4)
        )
    ).mappings()
    lease_id, until = uuid4(), now + lease
    claims: list[Claim] = []
    for row in due:
        if len(claims) == limit:
            break
        webhook_id = row[d.c.webhook_id]
        if held[webhook_id] >= per_webhook:
            continue
        held[webhook_id] += 1
        claims.append(Claim(_delivery(row), _webhook(row), lease_id, until))
    if claims:
        await conn.execute(
            d.update()
            .where(d.c.delivery_id.in_([c.delivery.delivery_id for c in claims]))
            .values(lease_id=lease_id, leased_until=until, next_attempt_at=until)
        )
    return claims


async def finish_attempt_txn(conn: AsyncConnection, claim: Claim, outcome: Outcome) -> bool:
    d = webhook_deliveries
    attempt = outcome.attempt
    result = await conn.execute(
        d.update()
        .where(d.c.delivery_id == claim.delivery.delivery_id, d.c.lease_id == claim.lease_id)
        .values(
            state=outcome.state.value,
            next_attempt_at=outcome.next_attempt_at,
            attempts=d.c.attempts + 1,
            tries=d.c.tries + 1,
            lease_id=None,
            leased_until=None,
            last_status_code=attempt.status_code,
            last_error=_clip(attempt.error),
            updated_at=attempt.at,
        )
        .returning(d.c.attempts)
    )
    number = result.scalar()
    if number is None:
        return False
    await conn.execute(
        webhook_attempts.insert().values(
            delivery_id=attempt.delivery_id,
            number=number,
            at=attempt.at,
            duration_ms=attempt.duration_ms,
            status_code=attempt.status_code,
            error=_clip(attempt.error),
        )
    )
    return True


async def release_claims_txn(conn: AsyncConnection, claims: Sequence[Claim], now: datetime) -> None:
    d = webhook_deliveries
    for claim in claims:
        await conn.execute(
            d.update()
            .where(d.c.delivery_id == claim.delivery.delivery_id, d.c.lease_id == claim.lease_id)
            .values(lease_id=None, leased_until=None, next_attempt_at=now)
        )


async def get_delivery_txn(conn: AsyncConnection, delivery_id: UUID) -> Delivery | None:
    query = select(webhook_deliveries).where(webhook_deliveries.c.delivery_id == delivery_id)
    row = (await conn.execute(query)).mappings().first()
    return _delivery(row) if row is not None else None


async def list_deliveries_txn(
    conn: AsyncConnection,
    webhook_id: UUID,
    state: DeliveryState | None,
    before: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Delivery]:
    d = webhook_deliveries
    query = select(d).where(d.c.webhook_id == webhook_id)
    if state is not None:
        query = query.where(d.c.state == state.value)
    if before is not None:
        at, last_id = before
        query = query.where(
            or_(d.c.created_at < at, and_(d.c.created_at == at, d.c.delivery_id < last_id))
        )
    query = query.order_by(d.c.created_at.desc(), d.c.delivery_id.desc()).limit(limit)
    return [_delivery(row) for row in (await conn.execute(query)).mappings()]


async def list_attempts_txn(
    conn: AsyncConnection, delivery_ids: list[UUID]
) -> dict[UUID, list[Attempt]]:
    found: dict[UUID, list[Attempt]] = {i: [] for i in delivery_ids}
    a = webhook_attempts
    for start in range(0, len(delivery_ids), _IN_CHUNK):
        query = (
            select(a)
            .where(a.c.delivery_id.in_(delivery_ids[start : start + _IN_CHUNK]))
            .order_by(a.c.delivery_id, a.c.number)
        )
        for row in (await conn.execute(query)).mappings():
            found[row["delivery_id"]].append(
                Attempt(
                    delivery_id=row["delivery_id"],
                    number=row["number"],
                    at=row["at"],
                    duration_ms=row["duration_ms"],
                    status_code=row["status_code"],
                    error=row["error"],
                )
            )
    return found


async def replay_delivery_txn(
    conn: AsyncConnection, delivery_id: UUID, now: datetime
) -> Delivery | None:
    d = webhook_deliveries
    result = await conn.execute(
        d.update()
        .where(d.c.delivery_id == delivery_id, d.c.state != DeliveryState.PENDING.value)
        .values(
            state=DeliveryState.PENDING.value,
            tries=0,
            next_attempt_at=now,
            lease_id=None,
            leased_until=None,
            updated_at=now,
        )
    )
    current = await get_delivery_txn(conn, delivery_id)
    if current is not None and not result.rowcount:
        raise Conflict(f"delivery {delivery_id} is still pending; it will be attempted again")
    return current


def _clip(error: str | None) -> str | None:
    return error[:_ERROR_LENGTH] if error else error


def _webhook_values(webhook: Webhook) -> dict[str, Any]:
    return {
        "webhook_id": webhook.webhook_id,
        "user_id": webhook.user_id,
        "url": webhook.url,
        "events": [e.value for e in webhook.events],
        "secret": webhook.secret,
        "created_at": webhook.created_at,
        "previous_secret": webhook.previous_secret,
        "previous_secret_until": webhook.previous_secret_until,
    }


def _webhook(row: RowMapping) -> Webhook:
    # Columns, not names: a claim's rows join deliveries, which share some names.
    w = webhooks
    return Webhook(
        webhook_id=row[w.c.webhook_id],
        user_id=row[w.c.user_id],
        url=row[w.c.url],
        events=tuple(WebhookEvent(e) for e in row[w.c.events]),
        secret=row[w.c.secret],
        created_at=row[w.c.created_at],
        previous_secret=row[w.c.previous_secret],
        previous_secret_until=row[w.c.previous_secret_until],
    )


def _delivery_values(delivery: Delivery) -> dict[str, Any]:
    return {
        "delivery_id": delivery.delivery_id,
        "webhook_id": delivery.webhook_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "body": delivery.body,
        "state": delivery.state.value,
        "attempts": delivery.attempts,
        "tries": delivery.tries,
        "next_attempt_at": delivery.next_attempt_at,
        "created_at": delivery.created_at,
        "updated_at": delivery.created_at,
    }


def _delivery(row: RowMapping) -> Delivery:
    d = webhook_deliveries
    return Delivery(
        delivery_id=row[d.c.delivery_id],
        webhook_id=row[d.c.webhook_id],
        event_id=row[d.c.event_id],
        event_type=row[d.c.event_type],
        body=row[d.c.body],
        state=DeliveryState(row[d.c.state]),
        created_at=row[d.c.created_at],
        next_attempt_at=row[d.c.next_attempt_at],
        attempts=row[d.c.attempts],
        tries=row[d.c.tries],
        last_status_code=row[d.c.last_status_code],
        last_error=row[d.c.last_error],
    )
