"""The webhook fan-out on both buses and both metadata stores: the SQLite log with SQLite (the
embedded profile), Kafka with PostgreSQL (the cluster's). Who receives which event, and an
event the bus hands over twice becomes one delivery."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from chat4all.adapters.kafka import KafkaEventBus
from chat4all.adapters.sql import SqlMetadataStore, upgrade
from chat4all.adapters.sqlite.event_log import SQLiteEventLog
from chat4all.adapters.sqlite.message_store import SQLiteMessageStore
from chat4all.domain.conversations import Role
from chat4all.domain.events import Event, Topic, message_sent, read_up_to, status_changed
from chat4all.domain.messages import (
    INTERNAL_CHANNEL,
    NewMessage,
    Payload,
    PayloadType,
    StatusChange,
)
from chat4all.domain.status import DeliveryStatus
from chat4all.domain.webhooks import Webhook, WebhookEvent, new_secret
from chat4all.ports.bus import EventBus
from chat4all.workers.webhook_fanout import WebhookFanout
from tests.contract.metadata_store_contract import T0, make_conversation, make_user
from tests.databases import fresh_postgres_database
from tests.fakes import FakeClock
from tests.servers import server_url, unique_name


@dataclass
class Stores:
    bus: EventBus
    metadata: SqlMetadataStore
    messages: SQLiteMessageStore


@pytest.fixture(
    params=["sqlite", pytest.param("kafka", marks=[pytest.mark.kafka, pytest.mark.postgres])]
)
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    messages = await SQLiteMessageStore.open(tmp_path / "messages.db")
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'metadata.db'}"
        await upgrade(url)
        metadata = await SqlMetadataStore.connect(url)
        bus: EventBus = await SQLiteEventLog.open(tmp_path / "events.db")
        yield Stores(bus, metadata, messages)
        await bus.close()
        await metadata.close()
    else:
        async with fresh_postgres_database() as url:
            await upgrade(url)
            metadata = await SqlMetadataStore.connect(url)
            kafka = await KafkaEventBus.connect(
                server_url("kafka"),
                client_id=unique_name("c4t"),
                partitions=2,
                namespace=unique_name("c4t"),
            )
            yield Stores(kafka, metadata, messages)
            await kafka.close()
            await metadata.close()
    await messages.close()


async def fan_out(
    stores: Stores, events: list[Event], webhooks: list[Webhook], expected: int
) -> None:
    """Publish `events`, run the fan-out until `webhooks` have `expected` deliveries in all."""
    await stores.bus.publish(events)
    fanout = WebhookFanout(
        stores.bus, FakeClock(T0), stores.metadata, stores.metadata, stores.messages
    )
    running = asyncio.create_task(fanout.run())
    try:
        async with asyncio.timeout(60):
            # The store has no change signal to wait on: ask it every 50 ms.
            for _ in itertools.count():
                if await _queued(stores.metadata, webhooks) >= expected:
                    break
                await asyncio.sleep(0.05)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def _queued(metadata: SqlMetadataStore, webhooks: list[Webhook]) -> int:
    return sum([len(await metadata.list_deliveries(w.webhook_id, limit=100)) for w in webhooks])


async def test_each_member_gets_what_concerns_them(stores: Stores) -> None:
    metadata = stores.metadata
    alice, bob, carol, dave = (make_user() for _ in range(4))
    for user in (alice, bob, carol, dave):
        await metadata.create_user(user)
    hooks = {}
    for user in (alice, bob, carol, dave):
        hook = Webhook(
            uuid4(), user.user_id, "https://h.example/", tuple(WebhookEvent), new_secret(), T0
        )
        await metadata.create_webhook(hook)
        hooks[user.user_id] = hook
    # A group of alice, bob and carol; dave is outside.
    group = make_conversation(alice.user_id)
    members = [
        (alice.user_id, Role.OWNER),
        (bob.user_id, Role.MEMBER),
        (carol.user_id, Role.MEMBER),
    ]
    await metadata.create_conversation(group, members)
    cid = group.conversation_id
    new = NewMessage(
        uuid4(),
        cid,
        alice.user_id,
        (bob.user_id, carol.user_id),
        Payload(PayloadType.TEXT, text="hi"),
    )
    message = (await stores.messages.append(new, T0, None)).message
    created = Event(
        type=Topic.CONVERSATION_CREATED,
        key=str(cid),
        data={"conversation_id": str(cid), "members": [str(u) for u, _ in members]},
        time=T0,
    )
    delivered = status_changed(
        StatusChange(
            message.message_id, cid, bob.user_id, INTERNAL_CHANNEL, DeliveryStatus.DELIVERED, T0
        )
    )
    read = read_up_to(cid, carol.user_id, 0, 1, T0)
    sent = message_sent(message, None)
    # `sent` twice: the bus delivers at least once.
    await fan_out(
        stores, [created, sent, sent, delivered, read], list(hooks.values()), expected=3 + 3 + 2 + 2
    )

    async def types(user: UUID) -> list[str]:
        found = await metadata.list_deliveries(hooks[user].webhook_id, limit=100)
        return sorted(d.event_type for d in found)

    everything = ["conversation.created", "message.delivered", "message.read", "message.sent"]
    assert await types(alice.user_id) == everything  # the sender hears of every status
    assert await types(bob.user_id) == ["conversation.created", "message.delivered", "message.sent"]
    assert await types(carol.user_id) == ["conversation.created", "message.read", "message.sent"]
    assert await types(dave.user_id) == []
