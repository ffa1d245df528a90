"""The contract every `WebhookStore` adapter passes (the metadata store's webhook half).

Subclass `WebhookStoreContract` and provide a `store` fixture, as for `MetadataStoreContract`.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from chat4all.domain.errors import Conflict, InvalidInput
from chat4all.domain.webhooks import (
    Attempt,
    Delivery,
    DeliveryState,
    Webhook,
    WebhookEvent,
    delivery_id,
    new_secret,
)
from chat4all.ports.webhooks import Claim, Outcome, WebhookStore
from tests.contract.metadata_store_contract import T0, make_user

LEASE = timedelta(seconds=60)


def make_webhook(
    user_id: UUID, events: tuple[WebhookEvent, ...] = (WebhookEvent.MESSAGE_SENT,)
) -> Webhook:
    return Webhook(uuid4(), user_id, "https://hooks.example.com/in", events, new_secret(), T0)


def make_delivery(webhook: Webhook, event_id: str | None = None, seconds: float = 0) -> Delivery:
    event_id = event_id or str(uuid4())
    at = T0 + timedelta(seconds=seconds)
    return Delivery(
        delivery_id(webhook.webhook_id, event_id),
        webhook.webhook_id,
        event_id,
        "message.sent",
        '{"type":"message.sent"}',
        DeliveryState.PENDING,
        created_at=at,
        next_attempt_at=at,
    )


def failed(claim: Claim, at_seconds: float, retry_in: float | None) -> Outcome:
    at = T0 + timedelta(seconds=at_seconds)
    attempt = Attempt(claim.delivery.delivery_id, 0, at, 12, 500, None)
    if retry_in is None:
        return Outcome(attempt, DeliveryState.DEAD, None)
    return Outcome(attempt, DeliveryState.PENDING, at + timedelta(seconds=retry_in))


class WebhookStoreContract:
    @pytest.fixture
    async def owner(self, store: WebhookStore) -> UUID:
        user = make_user()
        await store.create_user(user)  # type: ignore[attr-defined]
        return user.user_id

    @pytest.fixture
    async def webhook(self, store: WebhookStore, owner: UUID) -> Webhook:
        webhook = make_webhook(owner)
        await store.create_webhook(webhook)
        return webhook

    async def test_create_get_list_delete(self, store: WebhookStore, owner: UUID) -> None:
        first = make_webhook(owner)
        second = make_webhook(owner, (WebhookEvent.MESSAGE_READ, WebhookEvent.FILE_UPLOADED))
        await store.create_webhook(first)
        await store.create_webhook(second)
        assert await store.get_webhook(second.webhook_id) == second
        assert {w.webhook_id for w in await store.list_webhooks(owner)} == {
            first.webhook_id,
            second.webhook_id,
        }
        assert await store.delete_webhook(first.webhook_id)
        assert not await store.delete_webhook(first.webhook_id)
        assert await store.get_webhook(first.webhook_id) is None
        assert await store.list_webhooks(uuid4()) == []

    async def test_a_webhook_needs_an_existing_owner(self, store: WebhookStore) -> None:
        with pytest.raises(InvalidInput):
            await store.create_webhook(make_webhook(uuid4()))

    async def test_rotated_secrets_are_kept(self, store: WebhookStore, webhook: Webhook) -> None:
        rotated = webhook.rotated(new_secret(), T0, timedelta(hours=1))
        assert await store.save_secrets(rotated)
        assert await store.get_webhook(webhook.webhook_id) == rotated

    async def test_subscribers_are_the_users_webhooks_for_the_event(
        self, store: WebhookStore, owner: UUID
    ) -> None:
        sent = make_webhook(owner)
        read = make_webhook(owner, (WebhookEvent.MESSAGE_READ,))
        await store.create_webhook(sent)
        await store.create_webhook(read)
        found = await store.subscribers([owner, uuid4()], "message.sent")
        assert [w.webhook_id for w in found] == [sent.webhook_id]
        assert await store.subscribers([uuid4()], "message.sent") == []
        assert await store.subscribers([], "message.sent") == []

    async def test_enqueueing_an_event_twice_queues_it_once(
        self, store: WebhookStore, webhook: Webhook
    ) -> None:
        delivery = make_delivery(webhook)
        assert await store.enqueue_deliveries([delivery, delivery]) == 1
        assert await store.enqueue_deliveries([delivery]) == 0
        assert await store.get_delivery(delivery.delivery_id) == delivery

    async def test_claims_take_due_deliveries_once_and_respect_the_cap(
        self, store: WebhookStore, owner: UUID
    ) -> None:
        busy, quiet = make_webhook(owner), make_webhook(owner)
        for webhook in (busy, quiet):
            await store.create_webhook(webhook)
        queued = [make_delivery(busy, seconds=i) for i in range(5)]
        queued += [make_delivery(quiet, seconds=i) for i in range(2)]
        queued.append(make_delivery(quiet, seconds=3600))  # not due yet
        await store.enqueue_deliveries(queued)
        now = T0 + timedelta(seconds=10)

        first = await store.claim_deliveries(now, limit=10, per_webhook=2, lease=LEASE)
        assert sum(c.webhook == busy for c in first) == 2
        assert len(first) == 4
        assert [c.delivery.created_at for c in first if c.webhook == busy] == [
            T0,
            T0 + timedelta(seconds=1),
        ]
        # The two leases on `busy` still count; `quiet` has nothing else due.
        assert await store.claim_deliveries(now, limit=10, per_webhook=2, lease=LEASE) == []

        # A finished attempt frees its slot.
        done = next(c for c in first if c.webhook == busy)
        assert await store.finish_attempt(done, failed(done, 10, retry_in=None))
        again = await store.claim_deliveries(now, limit=10, per_webhook=2, lease=LEASE)
        assert [c.delivery.created_at for c in again] == [T0 + timedelta(seconds=2)]

    async def test_a_lapsed_lease_hands_the_delivery_over(
        self, store: WebhookStore, webhook: Webhook
    ) -> None:
        await store.enqueue_deliveries([make_delivery(webhook)])
        (stale,) = await store.claim_deliveries(T0, limit=1, per_webhook=1, lease=LEASE)
        later = T0 + LEASE + timedelta(seconds=1)
        (fresh,) = await store.claim_deliveries(later, limit=1, per_webhook=1, lease=LEASE)
        assert fresh.delivery.delivery_id == stale.delivery.delivery_id
        assert not await store.finish_attempt(stale, failed(stale, 61, retry_in=5))
        assert await store.finish_attempt(fresh, failed(fresh, 62, retry_in=5))
        attempts = await store.list_attempts([fresh.delivery.delivery_id])
        assert [a.number for a in attempts[fresh.delivery.delivery_id]] == [1]

    async def test_released_claims_are_due_at_once(
        self, store: WebhookStore, webhook: Webhook
    ) -> None:
        await store.enqueue_deliveries([make_delivery(webhook), make_delivery(webhook)])
        first, second = await store.claim_deliveries(T0, limit=2, per_webhook=2, lease=LEASE)
        assert await store.finish_attempt(first, failed(first, 1, retry_in=300))
        later = T0 + timedelta(seconds=2)
        await store.release_claims([first, second], later)
        (again,) = await store.claim_deliveries(later, limit=2, per_webhook=2, lease=LEASE)
        assert again.delivery.delivery_id == second.delivery.delivery_id  # not the finished one
        await store.release_claims([], later)

    async def test_attempts_are_logged_and_schedule_the_next(
        self, store: WebhookStore, webhook: Webhook
    ) -> None:
        delivery = make_delivery(webhook)
        await store.enqueue_deliveries([delivery])
        (claim,) = await store.claim_deliveries(T0, limit=5, per_webhook=5, lease=LEASE)
        assert await store.finish_attempt(claim, failed(claim, 0, retry_in=30))
        retried = await store.get_delivery(delivery.delivery_id)
        assert retried is not None
        assert (retried.state, retried.attempts, retried.tries) == (DeliveryState.PENDING, 1, 1)
        assert retried.next_attempt_at == T0 + timedelta(seconds=30)
        assert retried.last_status_code == 500
        early = T0 + timedelta(seconds=29)
        assert await store.claim_deliveries(early, limit=5, per_webhook=5, lease=LEASE) == []
        (claim,) = await store.claim_deliveries(
            T0 + timedelta(seconds=30), limit=5, per_webhook=5, lease=LEASE
        )
        ok = Attempt(delivery.delivery_id, 0, T0 + timedelta(seconds=31), 7, 204, None)
        assert await store.finish_attempt(claim, Outcome(ok, DeliveryState.SUCCEEDED, None))
        done = await store.get_delivery(delivery.delivery_id)
        assert done is not None and done.state is DeliveryState.SUCCEEDED
        assert done.next_attempt_at is None
        log = (await store.list_attempts([delivery.delivery_id]))[delivery.delivery_id]
        assert [(a.number, a.status_code) for a in log] == [(1, 500), (2, 204)]
        assert log[1].duration_ms == 7 and log[1].at == T0 + timedelta(seconds=31)

    async def test_dead_deliveries_are_listed_and_replayed(
        self, store: WebhookStore, webhook: Webhook
    ) -> None:
        deliveries = [make_delivery(webhook, seconds=i) for i in range(3)]
        await store.enqueue_deliveries(deliveries)
        (claim,) = await store.claim_deliveries(T0, limit=1, per_webhook=1, lease=LEASE)
        await store.finish_attempt(claim, failed(claim, 1, retry_in=None))
        dead = await store.list_deliveries(webhook.webhook_id, state=DeliveryState.DEAD)
        assert [d.delivery_id for d in dead] == [deliveries[0].delivery_id]
        newest_first = await store.list_deliveries(webhook.webhook_id, limit=2)
        assert [d.delivery_id for d in newest_first] == [
            deliveries[2].delivery_id,
            deliveries[1].delivery_id,
        ]
        last = newest_first[-1]
        rest = await store.list_deliveries(
            webhook.webhook_id, before=(last.created_at, last.delivery_id)
        )
        assert [d.delivery_id for d in rest] == [deliveries[0].delivery_id]

        later = T0 + timedelta(hours=1)
        replayed = await store.replay_delivery(deliveries[0].delivery_id, later)
        assert replayed is not None
        assert (replayed.state, replayed.tries, replayed.attempts) == (DeliveryState.PENDING, 0, 1)
        assert replayed.next_attempt_at == later
        with pytest.raises(Conflict):
            await store.replay_delivery(deliveries[0].delivery_id, later)
        assert await store.replay_delivery(uuid4(), later) is None

    async def test_deleting_a_webhook_deletes_its_deliveries(
        self, store: WebhookStore, webhook: Webhook
    ) -> None:
        delivery = make_delivery(webhook)
        await store.enqueue_deliveries([delivery])
        await store.delete_webhook(webhook.webhook_id)
        assert await store.get_delivery(delivery.delivery_id) is None
        with pytest.raises(Conflict):
            await store.enqueue_deliveries([make_delivery(webhook)])

    async def test_concurrent_claims_never_share_a_delivery(
        self, store: WebhookStore, owner: UUID
    ) -> None:
        webhooks = [make_webhook(owner) for _ in range(4)]
        for webhook in webhooks:
            await store.create_webhook(webhook)
        await store.enqueue_deliveries([make_delivery(w) for w in webhooks for _ in range(10)])
        rounds = await asyncio.gather(
            *(store.claim_deliveries(T0, limit=7, per_webhook=3, lease=LEASE) for _ in range(8))
        )
        claimed = [c.delivery.delivery_id for claims in rounds for c in claims]
        assert len(claimed) == len(set(claimed)) == 12  # the cap: 3 for each of 4 webhooks
