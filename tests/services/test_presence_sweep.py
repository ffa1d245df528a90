"""A gateway dies holding a user's only session: another gateway's sweep announces the user
offline to their contacts, once. Presence on the real Redis, the rest on the embedded platform."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from redis.asyncio import Redis

from chat4all.adapters.redis import Keys, RedisPresence, open_client
from chat4all.bootstrap import Platform
from chat4all.domain.conversations import ConversationType
from chat4all.services.presence import PresenceSweeper
from tests.fakes import FakeClock
from tests.servers import server_url, unique_name

pytestmark = pytest.mark.redis
TTL = 2.0


@pytest.fixture
async def redis() -> AsyncIterator[tuple[Redis, Keys]]:
    client = open_client(server_url("redis"))
    keys = Keys(unique_name("sweep") + ":")
    yield client, keys
    await client.delete(*[k async for k in client.scan_iter(f"{keys.prefix}*")] or ["none"])
    await client.aclose()


async def test_a_dead_gateways_user_is_announced_offline_once(
    platform: Platform, redis: tuple[Redis, Keys]
) -> None:
    client, keys = redis
    clock = FakeClock()
    alice = (await platform.auth.register("alice", "alice@example.com", "password-alice")).user_id
    bob = (await platform.auth.register("bob", "bob@example.com", "password-bob")).user_id
    await platform.conversations.create(alice, ConversationType.PRIVATE, [bob])
    watching = await platform.hub.subscribe(alice)

    dead_gateway = RedisPresence(client, keys, clock, session_ttl_seconds=TTL)
    since = clock.now()
    assert await dead_gateway.connected(bob, "bob-phone", since)
    sweepers = [
        PresenceSweeper(
            RedisPresence(client, keys, clock, session_ttl_seconds=TTL),
            platform.hub,
            platform.conversations,
            clock,
            TTL / 3,
        )
        for _ in range(2)
    ]
    assert [await s.sweep_once() for s in sweepers] == [0, 0]  # bob's session is still fresh
    clock.advance(TTL + 1)  # no heartbeat came: the gateway is gone
    assert sorted([await s.sweep_once() for s in sweepers]) == [0, 1]

    frame = orjson.loads(await watching.get())
    assert frame == {
        "type": "presence",
        "data": {"user_id": str(bob), "online": False, "last_seen": since.isoformat()},
    }
    [state] = await dead_gateway.states([bob])
    assert not state.online and state.last_seen == since
    await watching.close()
