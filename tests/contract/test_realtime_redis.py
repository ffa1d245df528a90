"""The real-time contracts on Redis, plus what only a server shared by processes has: two
gateways, a connection that breaks, sessions a crashed gateway leaves behind.

Every test has its own key prefix (and so its own channels and client names) on the shared
server, and deletes its keys afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from uuid import uuid4

import pytest
from redis.asyncio import Redis

from chat4all.adapters.clock import SystemClock
from chat4all.adapters.redis import (
    Keys,
    RedisCache,
    RedisHub,
    RedisPresence,
    RedisRealtime,
    open_client,
)
from chat4all.devcluster import free_port
from chat4all.domain.errors import Unavailable
from chat4all.ports.realtime import PresenceState, SubscriptionLost
from tests.contract.realtime_contract import (
    KeyValueCacheContract,
    PresenceContract,
    RealtimeHubContract,
)
from tests.fakes import FakeClock
from tests.servers import server_url, unique_name

pytestmark = pytest.mark.redis

TTL = 60.0


@pytest.fixture
def url() -> str:
    return server_url("redis")


@pytest.fixture
def keys() -> Keys:
    return Keys(unique_name("c4test") + ":")


@pytest.fixture
async def client(url: str, keys: Keys) -> AsyncIterator[Redis]:
    client = open_client(url)
    try:
        yield client
    finally:
        names = [name async for name in client.scan_iter(match=f"{keys.prefix}*", count=1000)]
        if names:
            await client.delete(*names)
        await client.aclose()


@pytest.fixture
async def hub(client: Redis, keys: Keys) -> AsyncIterator[RedisHub]:
    hub = RedisHub(client, keys)
    try:
        yield hub
    finally:
        await hub.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def presence(client: Redis, keys: Keys, clock: FakeClock) -> RedisPresence:
    return RedisPresence(client, keys, clock, session_ttl_seconds=TTL)


class TestRedisHub(RealtimeHubContract):
    pass


class TestRedisPresence(PresenceContract):
    pass


class TestRedisCache(KeyValueCacheContract):
    @pytest.fixture
    def cache(self, client: Redis, keys: Keys) -> RedisCache:
        return RedisCache(client, keys)

    @pytest.fixture
    def pass_time(self):
        return asyncio.sleep  # Redis keeps time itself: the contract's TTLs are short


async def _other_gateway(url: str, keys: Keys, name: str) -> tuple[Redis, RedisHub]:
    client = open_client(url)
    return client, RedisHub(client, keys, client_name=f"{keys.prefix}{name}")


async def _connections_named(client: Redis, name: str) -> list[dict[str, str]]:
    return [c for c in await client.client_list() if c.get("name") == name]


# the hub across processes


async def test_a_publish_on_one_gateway_reaches_subscribers_on_the_others(
    url: str, keys: Keys, client: Redis
) -> None:
    a_client, a = await _other_gateway(url, keys, "a")
    b_client, b = await _other_gateway(url, keys, "b")
    try:
        alice, bob = uuid4(), uuid4()
        on_a, on_b = await a.subscribe(alice), await b.subscribe(alice)
        bob_on_b = await b.subscribe(bob)
        await a.publish([alice, bob], b"from a")
        await b.publish([alice], b"from b")
        for sub in (on_a, on_b):
            got = [await asyncio.wait_for(sub.get(), 2) for _ in range(2)]
            assert got == [b"from a", b"from b"]
        assert await asyncio.wait_for(bob_on_b.get(), 2) == b"from a"
        # A gateway where the user has no session is not sent the frame at all.
        channel = keys.stream(bob)
        assert await client.pubsub_numsub(channel) == [(channel.encode(), 1)]
    finally:
        for hub, hub_client in ((a, a_client), (b, b_client)):
            await hub.close()
            await hub_client.aclose()


async def test_one_connection_carries_every_subscription_of_a_process(
    hub: RedisHub, client: Redis, keys: Keys
) -> None:
    users = [uuid4() for _ in range(50)]
    subs = [await hub.subscribe(u) for u in users for _ in range(2)]
    connections = await _connections_named(client, f"{keys.prefix}hub")
    assert len(connections) == 1
    assert connections[0]["sub"] == "50"
    await hub.publish(users, b"to all")
    for sub in subs:
        assert await asyncio.wait_for(sub.get(), 2) == b"to all"
    for sub in subs[::2]:
        await sub.close()  # each user keeps one session: still subscribed
    assert (await _connections_named(client, f"{keys.prefix}hub"))[0]["sub"] == "50"
    for sub in subs[1::2]:
        await sub.close()
    # Unsubscribing does not wait for Redis's confirmation: the count drops soon after.
    for _ in range(50):
        if (await _connections_named(client, f"{keys.prefix}hub"))[0]["sub"] == "0":
            break
        await asyncio.sleep(0.1)
    assert (await _connections_named(client, f"{keys.prefix}hub"))[0]["sub"] == "0"


async def test_killed_connection_loses_every_subscription_and_a_new_one_works(
    hub: RedisHub, client: Redis, keys: Keys
) -> None:
    alice, bob = uuid4(), uuid4()
    first, second = await hub.subscribe(alice), await hub.subscribe(bob)
    await hub.publish([alice], b"before")
    [connection] = await _connections_named(client, f"{keys.prefix}hub")
    assert await client.client_kill_filter(_id=connection["id"]) == 1
    # A frame read before the break is still delivered; then the loss is reported.
    assert await asyncio.wait_for(first.get(), 2) == b"before"
    for sub in (first, second):
        with pytest.raises(SubscriptionLost):
            await asyncio.wait_for(sub.get(), 5)
        with pytest.raises(SubscriptionLost):  # and stays lost
            await asyncio.wait_for(sub.get(), 1)
        await sub.close()
    again = await hub.subscribe(alice)
    await hub.publish([alice], b"after")
    assert await asyncio.wait_for(again.get(), 2) == b"after"
    assert len(await _connections_named(client, f"{keys.prefix}hub")) == 1
    await again.close()


async def test_a_session_that_stops_reading_is_cut_off_alone(client: Redis, keys: Keys) -> None:
    hub = RedisHub(client, keys, max_queued_frames=5)
    try:
        user = uuid4()
        slow, fast = await hub.subscribe(user), await hub.subscribe(user)
        received: list[bytes] = []

        async def read_fast() -> None:
            while len(received) < 20:
                received.append(await fast.get())

        reader = asyncio.create_task(read_fast())
        for i in range(20):
            await hub.publish([user], str(i).encode())
            await asyncio.sleep(0.005)
        await asyncio.wait_for(reader, 5)
        assert received == [str(i).encode() for i in range(20)]
        got = []
        with pytest.raises(SubscriptionLost):
            for _ in range(20):
                got.append(await asyncio.wait_for(slow.get(), 2))
        assert len(got) <= 5
    finally:
        await hub.close()


async def test_commands_survive_their_connections_being_killed(
    url: str, keys: Keys, client: Redis
) -> None:
    # What a Redis restart does to the pool: the next command reconnects instead of failing.
    realtime = await RedisRealtime.connect(url, clock=SystemClock(), prefix=keys.prefix)
    try:
        await asyncio.gather(*(realtime.cache.set(f"k{i}", b"v") for i in range(4)))
        pool = await _connections_named(realtime.client, f"{keys.prefix}pool")
        assert pool
        for connection in pool:
            await realtime.client.client_kill_filter(_id=connection["id"])
        assert await realtime.cache.get("k0") == b"v"
        await realtime.hub.publish([uuid4()], b"x")
        assert (await realtime.presence.states([uuid4()]))[0].online is False
    finally:
        await realtime.close()  # the `client` fixture deletes the keys


async def test_keepalive_pings_leave_a_quiet_connection_working(client: Redis, keys: Keys) -> None:
    hub = RedisHub(client, keys, keepalive_seconds=0.05)
    try:
        user = uuid4()
        sub = await hub.subscribe(user)
        await asyncio.sleep(0.5)  # quiet: PING, PONG, PING, ...
        await hub.publish([user], b"still here")
        assert await asyncio.wait_for(sub.get(), 2) == b"still here"
    finally:
        await hub.close()


async def test_closing_the_hub_ends_its_subscriptions(hub: RedisHub) -> None:
    sub = await hub.subscribe(uuid4())
    await hub.close()
    with pytest.raises(SubscriptionLost):
        await asyncio.wait_for(sub.get(), 2)
    with pytest.raises(Unavailable):
        await hub.subscribe(uuid4())


async def test_no_server_is_unavailable_everywhere_and_quickly(keys: Keys) -> None:
    realtime = await RedisRealtime.connect(
        f"redis://127.0.0.1:{free_port()}/0", clock=SystemClock(), prefix=keys.prefix
    )
    user = uuid4()
    calls = [
        realtime.ping(),
        realtime.hub.publish([user], b"x"),
        realtime.hub.subscribe(user),
        realtime.presence.connected(user, "s", SystemClock().now()),
        realtime.presence.states([user]),
        realtime.cache.get("k"),
        realtime.cache.set("k", b"v", 5),
    ]
    try:
        for call in calls:
            with pytest.raises(Unavailable):
                await asyncio.wait_for(call, 5)
    finally:
        await realtime.close()


# presence across gateways


async def test_a_crashed_gateways_sessions_expire(
    client: Redis, keys: Keys, clock: FakeClock
) -> None:
    crashed = RedisPresence(client, keys, clock, session_ttl_seconds=TTL)
    other = RedisPresence(client, keys, clock, session_ttl_seconds=TTL)
    user, since = uuid4(), clock.now()
    await crashed.connected(user, "s1", since)
    [state] = await other.states([user])
    assert state.online
    # The gateway dies: no disconnect, no more heartbeats.
    clock.advance(TTL - 1)
    assert (await other.states([user]))[0].online
    clock.advance(2)
    [state] = await other.states([user])
    assert not state.online and state.last_seen == since
    assert 0 < await client.pttl(keys.sessions(user)) <= TTL * 1000  # Redis drops it in time


async def test_a_crashed_gateways_users_are_swept_offline_once(
    client: Redis, keys: Keys, clock: FakeClock
) -> None:
    crashed = RedisPresence(client, keys, clock, session_ttl_seconds=TTL)
    survivors = [RedisPresence(client, keys, clock, session_ttl_seconds=TTL) for _ in range(2)]
    gone, kept, since = uuid4(), uuid4(), clock.now()
    assert await crashed.connected(gone, "s1", since)
    await crashed.connected(kept, "s2", since)
    await survivors[0].connected(kept, "s3", since)
    assert [await s.sweep_expired() for s in survivors] == [[], []]  # nothing expired yet
    clock.advance(TTL + 1)
    await survivors[0].heartbeat()  # keeps `kept` online through its other session
    swept = [await s.sweep_expired() for s in survivors]
    assert sorted(swept, key=len) == [[], [PresenceState(gone, False, since)]]
    [state] = await survivors[1].states([kept])
    assert state.online
    # Back on another gateway: online again, announced again.
    assert await survivors[1].connected(gone, "s4", clock.now())


async def test_heartbeats_keep_sessions_online_and_prune_dead_ones(
    client: Redis, keys: Keys, clock: FakeClock
) -> None:
    alive = RedisPresence(client, keys, clock, session_ttl_seconds=TTL)
    crashed = RedisPresence(client, keys, clock, session_ttl_seconds=TTL)
    user = uuid4()
    await crashed.connected(user, "dead", clock.now())
    await alive.connected(user, "live", clock.now())
    for _ in range(4):  # the crashed gateway never beats again
        clock.advance(TTL / 2)
        await alive.heartbeat()
    [state] = await alive.states([user])
    assert state.online
    assert state.last_seen == clock.now()
    members = await client.zrange(keys.sessions(user), 0, -1)
    assert members == [b"live"]


async def test_a_heartbeat_never_revives_a_closed_session(
    client: Redis, keys: Keys, clock: FakeClock
) -> None:
    presence = RedisPresence(client, keys, clock, session_ttl_seconds=TTL)
    user = uuid4()
    await presence.connected(user, "s", clock.now())
    beat = asyncio.create_task(presence.heartbeat())
    await presence.disconnected(user, "s", clock.now() + timedelta(seconds=1))
    await beat
    await presence.heartbeat()
    assert not (await presence.states([user]))[0].online


TTL = 2.0  # heartbeats every TTL/3: a busy CI machine may delay one by a second


async def test_realtime_bundle_beats_on_its_own_until_closed(
    url: str, keys: Keys, client: Redis
) -> None:
    clock = SystemClock()
    realtime = await RedisRealtime.connect(
        url, clock=clock, prefix=keys.prefix, session_ttl_seconds=TTL
    )
    observer = RedisPresence(client, keys, clock, session_ttl_seconds=TTL)
    user = uuid4()
    try:
        await realtime.ping()
        await realtime.presence.connected(user, "s", clock.now())
        await asyncio.sleep(2 * TTL)  # only heartbeats keep it online
        assert (await observer.states([user]))[0].online
        sub = await realtime.hub.subscribe(user)
        await realtime.hub.publish([user], b"hi")
        assert await asyncio.wait_for(sub.get(), 2) == b"hi"
        await realtime.cache.set("k", b"v")
        assert await realtime.cache.get("k") == b"v"
    finally:
        await realtime.close()  # as a crash would, as far as presence goes: no disconnect
    await asyncio.sleep(TTL + 0.5)
    assert not (await observer.states([user]))[0].online
