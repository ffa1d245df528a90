"""What client webhooks need: their store (the durable delivery queue in the metadata
database), a DNS resolver for the SSRF check, and an HTTP sender."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from chat4all.domain.webhooks import Attempt, Delivery, DeliveryState, Webhook


@dataclass(frozen=True)
class Claim:
    """A delivery a dispatcher holds until `leased_until`; only the holder of `lease_id` can
    record the attempt's outcome."""

    delivery: Delivery
    webhook: Webhook
    lease_id: UUID
    leased_until: datetime


@dataclass(frozen=True)
class Outcome:
    """What an attempt leads to: the next try at `next_attempt_at`, or a final state."""

    attempt: Attempt
    state: DeliveryState
    next_attempt_at: datetime | None


class WebhookStore(Protocol):
    """Webhooks and their deliveries. Every method is atomic; the errors are the metadata
    store's (`InvalidInput`, `Conflict`, `Unavailable`)."""

    async def create_webhook(self, webhook: Webhook) -> None:
        """Raises InvalidInput when the owner does not exist."""
        ...

    async def get_webhook(self, webhook_id: UUID) -> Webhook | None: ...

    async def list_webhooks(self, user_id: UUID) -> list[Webhook]:
        """The user's webhooks, oldest first."""
        ...

    async def delete_webhook(self, webhook_id: UUID) -> bool:
        """Removes the webhook with its deliveries; False when there was none."""
        ...

    async def save_secrets(self, webhook: Webhook) -> bool:
        """Store `webhook`'s current and previous secrets (a rotation)."""
        ...

    async def subscribers(self, user_ids: Sequence[UUID], event_type: str) -> list[Webhook]:
        """The webhooks of `user_ids` subscribed to `event_type`."""
        ...

    async def enqueue_deliveries(self, deliveries: Sequence[Delivery]) -> int:
        """Queue the deliveries that are not queued yet (by `delivery_id`); how many were new."""
        ...

    async def claim_deliveries(
        self, now: datetime, limit: int, per_webhook: int, lease: timedelta
    ) -> list[Claim]:
        """Up to `limit` due deliveries, oldest due first, leased for `lease`, never more than
        `per_webhook` leased at once for one webhook (counting the leases others hold). Two
        dispatchers never hold one delivery at the same time."""
        ...

    async def finish_attempt(self, claim: Claim, outcome: Outcome) -> bool:
        """Log the attempt and move the delivery on, if `claim` still holds it (False: the
        lease ended and someone else may have it; nothing is written)."""
        ...

    async def release_claims(self, claims: Sequence[Claim], now: datetime) -> None:
        """Hand back deliveries whose attempts were abandoned (a dispatcher stopping): due at
        `now` again, rather than when their leases end. Claims no longer held are left alone."""
        ...

    async def get_delivery(self, delivery_id: UUID) -> Delivery | None: ...

    async def list_deliveries(
        self,
        webhook_id: UUID,
        *,
        state: DeliveryState | None = None,
        before: tuple[datetime, UUID] | None = None,
        limit: int = 50,
    ) -> list[Delivery]:
        """Newest first; `before` is the (created_at, delivery_id) of the last one seen."""
        ...

    async def list_attempts(self, delivery_ids: Sequence[UUID]) -> Mapping[UUID, list[Attempt]]:
        """Each delivery's attempts in the order they were made."""
        ...

    async def replay_delivery(self, delivery_id: UUID, now: datetime) -> Delivery | None:
        """Queue a delivery that is done (dead or succeeded) for a new run of the schedule,
        due at `now`. Raises Conflict when it is still pending; None when it does not exist."""
        ...


class HostResolver(Protocol):
    async def resolve(self, host: str, port: int) -> list[str]:
        """The IP addresses `host` resolves to; InvalidInput when it resolves to none."""
        ...


@dataclass(frozen=True)
class HttpResult:
    status_code: int | None
    error: str | None  # why there is no status code (timeout, refused, ...)


class WebhookSender(Protocol):
    async def post(
        self, url: str, address: str, headers: Mapping[str, str], body: bytes
    ) -> HttpResult:
        """POST `body` to `url`, connecting to the IP `address` (already checked) rather than
        resolving the host again. Never raises for a failed request: the result says why."""
        ...

    async def close(self) -> None: ...
