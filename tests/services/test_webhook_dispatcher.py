"""The webhook dispatcher on the real metadata stores (SQLite and PostgreSQL), a real HTTP
sender and resolver, and a real receiver that checks every signature with `standardwebhooks`.
A fake clock walks through the production retry schedule (hours) without waiting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from chat4all.adapters.clock import SystemClock
from chat4all.adapters.sql import SqlMetadataStore, upgrade
from chat4all.adapters.webhooks.dns import SystemResolver
from chat4all.adapters.webhooks.http import HttpxWebhookSender
from chat4all.domain.webhooks import (
    DEFAULT_RETRY_SCHEDULE,
    Attempt,
    Delivery,
    DeliveryState,
    Webhook,
    WebhookEvent,
    delivery_id,
    new_secret,
)
from chat4all.ports.clock import Clock
from chat4all.ports.webhooks import Outcome
from chat4all.services.webhooks import WebhookPolicy, WebhookService
from chat4all.workers.webhook_dispatcher import DispatchPolicy, WebhookDispatcher
from tests.contract.metadata_store_contract import make_user
from tests.databases import fresh_postgres_database
from tests.fakes import FakeClock
from tests.webhook_receiver import Receiver

# Today, so that the signed timestamps are plausible; the fake clock moves from here.
START = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlMetadataStore]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'metadata.db'}"
        await upgrade(url)
        store = await SqlMetadataStore.connect(url)
        yield store
        await store.close()
        return
    async with fresh_postgres_database() as url:
        await upgrade(url)
        store = await SqlMetadataStore.connect(url)
        yield store
        await store.close()


@pytest.fixture
async def sender() -> AsyncIterator[HttpxWebhookSender]:
    sender = HttpxWebhookSender(timeout=5.0)
    yield sender
    await sender.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


def dispatcher(
    store: SqlMetadataStore,
    sender: HttpxWebhookSender,
    clock: Clock,
    *,
    allow_private: bool = True,
    **policy: object,
) -> WebhookDispatcher:
    return WebhookDispatcher(
        store,
        sender,
        SystemResolver(),
        clock,
        DispatchPolicy(allow_private_urls=allow_private, **policy),  # type: ignore[arg-type]
        jitter=lambda: 0.0,
    )


async def subscribe(store: SqlMetadataStore, url: str) -> Webhook:
    user = make_user()
    await store.create_user(user)
    webhook = Webhook(uuid4(), user.user_id, url, (WebhookEvent.MESSAGE_SENT,), new_secret(), START)
    await store.create_webhook(webhook)
    return webhook


async def queue(store: SqlMetadataStore, webhook: Webhook, count: int, at: datetime) -> list[UUID]:
    deliveries = []
    for i in range(count):
        event_id = str(uuid4())
        body = f'{{"type":"message.sent","data":{{"n":{i}}}}}'
        deliveries.append(
            Delivery(
                delivery_id(webhook.webhook_id, event_id),
                webhook.webhook_id,
                event_id,
                "message.sent",
                body,
                DeliveryState.PENDING,
                created_at=at,
                next_attempt_at=at,
            )
        )
    await store.enqueue_deliveries(deliveries)
    return [d.delivery_id for d in deliveries]


async def test_retries_follow_the_schedule_until_one_success(
    store: SqlMetadataStore, sender: HttpxWebhookSender, clock: FakeClock
) -> None:
    async with Receiver(fail_first=3, check_timestamp=False) as receiver:
        webhook = await subscribe(store, receiver.url)
        receiver.secrets = [webhook.secret]
        ids = await queue(store, webhook, 2, START)
        worker = dispatcher(store, sender, clock)

        assert await worker.dispatch_due() == 2
        for step in DEFAULT_RETRY_SCHEDULE[:3]:
            assert await worker.dispatch_due() == 0  # not due before its time
            clock.advance(step - 1)
            assert await worker.dispatch_due() == 0
            clock.advance(1)
            assert await worker.dispatch_due() == 2

    assert receiver.unverified() == []
    assert sorted(r.msg_id for r in receiver.successes()) == sorted(str(i) for i in ids)
    for delivery in ids:
        tries = [r for r in receiver.received if r.msg_id == str(delivery)]
        assert [r.status for r in tries] == [500, 500, 500, 200]
        assert len({r.body for r in tries}) == 1  # the same bytes every time
        stored = await store.get_delivery(delivery)
        assert stored is not None and stored.state is DeliveryState.SUCCEEDED
        log = (await store.list_attempts([delivery]))[delivery]
        assert [(a.number, a.status_code) for a in log] == [(1, 500), (2, 500), (3, 500), (4, 200)]
        assert [a.at - START for a in log] == [
            timedelta(0),
            timedelta(seconds=5),
            timedelta(seconds=305),
            timedelta(seconds=2105),
        ]


async def test_a_dead_endpoint_ends_in_the_dead_letter_and_replay_delivers(
    store: SqlMetadataStore, sender: HttpxWebhookSender, clock: FakeClock
) -> None:
    receiver = Receiver(check_timestamp=False)  # not started: nothing listens on its port
    webhook = await subscribe(store, receiver.url)
    receiver.secrets = [webhook.secret]
    (delivery,) = await queue(store, webhook, 1, START)
    worker = dispatcher(store, sender, clock)
    service = WebhookService(store, SystemResolver(), clock, WebhookPolicy(True))

    await worker.dispatch_due()
    for step in DEFAULT_RETRY_SCHEDULE:
        clock.advance(step)
        assert await worker.dispatch_due() == 1
    clock.advance(10 * 24 * 3600)
    assert await worker.dispatch_due() == 0

    (dead,) = await service.deliveries(
        webhook.user_id, webhook.webhook_id, state=DeliveryState.DEAD
    )
    assert dead.delivery.delivery_id == delivery
    assert dead.delivery.next_attempt_at is None
    assert len(dead.attempts) == len(DEFAULT_RETRY_SCHEDULE) + 1
    assert all(a.status_code is None and a.error for a in dead.attempts)
    assert (dead.attempts[-1].at - dead.attempts[0].at).total_seconds() / 3600 > 27

    async with receiver:
        replayed = await service.replay(webhook.user_id, webhook.webhook_id, delivery)
        assert replayed.delivery.state is DeliveryState.PENDING
        assert await worker.dispatch_due() == 1
    (success,) = receiver.received
    assert success.status == 200 and success.msg_id == str(delivery)
    stored = await store.get_delivery(delivery)
    assert stored is not None and stored.state is DeliveryState.SUCCEEDED


async def test_both_secrets_sign_during_a_rotation_and_only_the_new_after(
    store: SqlMetadataStore, sender: HttpxWebhookSender, clock: FakeClock
) -> None:
    async with Receiver(check_timestamp=False) as receiver:
        webhook = await subscribe(store, receiver.url)
        old = webhook.secret
        service = WebhookService(store, SystemResolver(), clock, WebhookPolicy(True))
        rotated = await service.rotate_secret(
            webhook.user_id, webhook.webhook_id, timedelta(hours=1)
        )
        receiver.secrets = [old, rotated.secret]
        worker = dispatcher(store, sender, clock)

        await queue(store, webhook, 1, clock.now())
        await worker.dispatch_due()
        clock.advance(3601)
        await queue(store, webhook, 1, clock.now())
        await worker.dispatch_due()

    during, after = receiver.received
    assert during.verified_by == [old, rotated.secret]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert after.verified_by == [rotated.secret]


async def test_private_addresses_are_refused_at_delivery_time(
    store: SqlMetadataStore, sender: HttpxWebhookSender, clock: FakeClock
) -> None:
    # Registered while allowed (or a name that resolved elsewhere then): each attempt checks.
    async with Receiver(check_timestamp=False) as receiver:
        webhook = await subscribe(store, receiver.url)
        (delivery,) = await queue(store, webhook, 1, START)
        await dispatcher(store, sender, clock, allow_private=False).dispatch_due()
    assert receiver.received == []
    (attempt,) = (await store.list_attempts([delivery]))[delivery]
    assert attempt.status_code is None
    assert attempt.error is not None and "loopback" in attempt.error


async def test_deliveries_survive_a_dispatcher_that_dies_mid_attempt(
    store: SqlMetadataStore, sender: HttpxWebhookSender, clock: FakeClock
) -> None:
    async with Receiver(check_timestamp=False) as receiver:
        webhook = await subscribe(store, receiver.url)
        receiver.secrets = [webhook.secret]
        ids = await queue(store, webhook, 3, START)
        lease = timedelta(seconds=40)
        # The first dispatcher claims and then is gone, with no outcome recorded.
        claimed = await store.claim_deliveries(clock.now(), 10, 10, lease)
        assert len(claimed) == 3
        successor = dispatcher(store, sender, clock, lease=lease)
        assert await successor.dispatch_due() == 0  # leased still
        clock.advance(lease.total_seconds())
        assert await successor.dispatch_due() == 3
        # The dead dispatcher's late result is ignored: the delivery has moved on.
        assert not await store.finish_attempt(
            claimed[0], _late_failure(claimed[0].delivery.delivery_id)
        )
    assert sorted(r.msg_id for r in receiver.successes()) == sorted(str(i) for i in ids)
    for delivery in ids:
        stored = await store.get_delivery(delivery)
        assert stored is not None and stored.state is DeliveryState.SUCCEEDED


def _late_failure(delivery: UUID) -> Outcome:
    return Outcome(Attempt(delivery, 0, START, 1, 500, None), DeliveryState.PENDING, START)


async def test_a_slow_endpoint_holds_only_its_own_slots(
    store: SqlMetadataStore, sender: HttpxWebhookSender
) -> None:
    clock = SystemClock()
    async with Receiver() as slow, Receiver() as fast:
        slow.gate = asyncio.Event()
        slow_hook = await subscribe(store, slow.url)
        fast_hook = await subscribe(store, fast.url)
        slow.secrets, fast.secrets = [slow_hook.secret], [fast_hook.secret]
        await queue(store, slow_hook, 8, clock.now())
        fast_ids = await queue(store, fast_hook, 3, clock.now())
        worker = dispatcher(store, sender, clock, per_webhook=2, poll_seconds=0.02)
        running = asyncio.create_task(worker.run())
        try:
            await fast.until(lambda r: len(r.successes()) == 3)
            await slow.until(lambda r: r.in_flight == 2)
            # The fast endpoint is done while the slow one still holds both its slots.
            assert slow.received == [] and slow.max_in_flight == 2
            slow.gate.set()
            await slow.until(lambda r: len(r.successes()) == 8)
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
    assert slow.max_in_flight == 2
    assert slow.unverified() == [] and fast.unverified() == []
    assert sorted(r.msg_id for r in fast.successes()) == sorted(str(i) for i in fast_ids)


async def test_a_stopping_dispatcher_hands_its_deliveries_back(
    store: SqlMetadataStore, sender: HttpxWebhookSender
) -> None:
    clock = SystemClock()
    async with Receiver(gate=asyncio.Event()) as receiver:
        webhook = await subscribe(store, receiver.url)
        (delivery,) = await queue(store, webhook, 1, clock.now())
        running = asyncio.create_task(dispatcher(store, sender, clock, poll_seconds=0.02).run())
        await receiver.until(lambda r: r.in_flight == 1)
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    # Due again at once, not when the 60 s lease would have ended.
    (claim,) = await store.claim_deliveries(clock.now(), 1, 1, timedelta(seconds=60))
    assert claim.delivery.delivery_id == delivery
