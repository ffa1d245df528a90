"""Client webhooks: register, list, remove, rotate secrets, read the delivery log, replay."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from chat4all.domain.errors import InvalidInput, NotFound
from chat4all.domain.webhooks import (
    Attempt,
    Delivery,
    DeliveryState,
    Webhook,
    new_secret,
    parse_events,
    parse_url,
    refused_address,
)
from chat4all.ports.clock import Clock
from chat4all.ports.webhooks import HostResolver, WebhookStore

MAX_WEBHOOKS_PER_USER = 20
MAX_ROTATION_OVERLAP = timedelta(days=7)


@dataclass(frozen=True)
class WebhookPolicy:
    # Development and tests only: lets webhooks call loopback and private addresses.
    allow_private_urls: bool = False
    rotation_overlap: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class DeliveryLog:
    delivery: Delivery
    attempts: list[Attempt]


async def checked_address(resolver: HostResolver, url: str, *, allow_private: bool) -> list[str]:
    """The addresses the URL's host resolves to, after the SSRF check: InvalidInput when it
    resolves to none, or to any that is not public (unless `allow_private`)."""
    endpoint = parse_url(url)
    addresses = await resolver.resolve(endpoint.host, endpoint.port)
    if not allow_private:
        for address in addresses:
            kind = refused_address(address)
            if kind is not None:
                raise InvalidInput(
                    f"{endpoint.host} resolves to {address}, a {kind} address; webhooks only "
                    "call public addresses (CHAT4ALL_WEBHOOK_ALLOW_PRIVATE_URLS=true allows "
                    "others, for development)"
                )
    return addresses


class WebhookService:
    def __init__(
        self, store: WebhookStore, resolver: HostResolver, clock: Clock, policy: WebhookPolicy
    ) -> None:
        self._store = store
        self._resolver = resolver
        self._clock = clock
        self._policy = policy

    async def create(self, user_id: UUID, url: str, events: Sequence[str]) -> Webhook:
        chosen = parse_events(events)
        await checked_address(self._resolver, url, allow_private=self._policy.allow_private_urls)
        if len(await self._store.list_webhooks(user_id)) >= MAX_WEBHOOKS_PER_USER:
            raise InvalidInput(f"a user has at most {MAX_WEBHOOKS_PER_USER} webhooks")
        webhook = Webhook(uuid4(), user_id, url, chosen, new_secret(), self._clock.now())
        await self._store.create_webhook(webhook)
        return webhook

    async def for_user(self, user_id: UUID) -> list[Webhook]:
        return await self._store.list_webhooks(user_id)

    async def get(self, user_id: UUID, webhook_id: UUID) -> Webhook:
        webhook = await self._store.get_webhook(webhook_id)
        # Someone else's webhook is as absent as one that never existed.
        if webhook is None or webhook.user_id != user_id:
            raise NotFound(f"webhook {webhook_id} does not exist")
        return webhook

    async def delete(self, user_id: UUID, webhook_id: UUID) -> None:
        await self.get(user_id, webhook_id)
        await self._store.delete_webhook(webhook_id)

    async def rotate_secret(
        self, user_id: UUID, webhook_id: UUID, overlap: timedelta | None = None
    ) -> Webhook:
        """A new secret; the old one keeps signing beside it for `overlap` (the policy's
        default when None), so receivers can switch without missing a delivery."""
        overlap = self._policy.rotation_overlap if overlap is None else overlap
        if not timedelta(0) <= overlap <= MAX_ROTATION_OVERLAP:
            raise InvalidInput(f"the overlap must be between 0 and {MAX_ROTATION_OVERLAP}")
        webhook = await self.get(user_id, webhook_id)
        rotated = webhook.rotated(new_secret(), self._clock.now(), overlap)
        if not await self._store.save_secrets(rotated):
            raise NotFound(f"webhook {webhook_id} does not exist")
        return rotated

    async def deliveries(
        self,
        user_id: UUID,
        webhook_id: UUID,
        *,
        state: DeliveryState | None = None,
        before: tuple[datetime, UUID] | None = None,
        limit: int = 50,
    ) -> list[DeliveryLog]:
        await self.get(user_id, webhook_id)
        found = await self._store.list_deliveries(
            webhook_id, state=state, before=before, limit=limit
        )
        attempts = await self._store.list_attempts([d.delivery_id for d in found])
        return [DeliveryLog(d, attempts.get(d.delivery_id, [])) for d in found]

    async def replay(self, user_id: UUID, webhook_id: UUID, delivery_id: UUID) -> DeliveryLog:
        """Send a dead (or succeeded) delivery again, with the same `webhook-id`, through a
        fresh run of the retry schedule."""
        await self.get(user_id, webhook_id)
        delivery = await self._store.get_delivery(delivery_id)
        if delivery is None or delivery.webhook_id != webhook_id:
            raise NotFound(f"delivery {delivery_id} of webhook {webhook_id} does not exist")
        replayed = await self._store.replay_delivery(delivery_id, self._clock.now())
        if replayed is None:
            raise NotFound(f"delivery {delivery_id} of webhook {webhook_id} does not exist")
        attempts = await self._store.list_attempts([delivery_id])
        return DeliveryLog(replayed, attempts.get(delivery_id, []))
