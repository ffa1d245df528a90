"""Contracts of the real-time ports: hub, presence, cache. Subclass once per adapter and
provide the fixtures: `hub`, `presence`, `cache`, and `pass_time` for expiry: an async
callable that makes that many seconds go by for the cache (a fake clock moves forward; a real
server's clock is waited for, so the TTLs here are short)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from chat4all.ports.realtime import KeyValueCache, PresenceStore, RealtimeHub

T0 = datetime(2026, 1, 1, tzinfo=UTC)

PassTime = Callable[[float], Awaitable[None]]


class RealtimeHubContract:
    async def test_frames_reach_every_subscription_of_the_user_in_order(self, hub: RealtimeHub):
        alice, bob = uuid4(), uuid4()
        phone, laptop, other = (
            await hub.subscribe(alice),
            await hub.subscribe(alice),
            await hub.subscribe(bob),
        )
        for i in range(5):
            await hub.publish([alice], f"frame {i}".encode())
        for sub in (phone, laptop):
            got = [await asyncio.wait_for(sub.get(), 2) for _ in range(5)]
            assert got == [f"frame {i}".encode() for i in range(5)]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(other.get(), 0.2)
        for sub in (phone, laptop, other):
            await sub.close()

    async def test_publish_to_many_users_at_once(self, hub: RealtimeHub):
        users = [uuid4() for _ in range(3)]
        subs = [await hub.subscribe(u) for u in users]
        await hub.publish(users, b"hello all")
        for sub in subs:
            assert await asyncio.wait_for(sub.get(), 2) == b"hello all"
            await sub.close()

    async def test_frames_are_delivered_byte_for_byte(self, hub: RealtimeHub):
        user = uuid4()
        sub = await hub.subscribe(user)
        frames = [b"", bytes(range(256)), '{"text": "ação 🎉"}'.encode()]
        for raw in frames:
            await hub.publish([user], raw)
        assert [await asyncio.wait_for(sub.get(), 2) for _ in frames] == frames
        await sub.close()

    async def test_closed_subscription_gets_nothing_and_publishing_to_nobody_is_fine(
        self, hub: RealtimeHub
    ):
        user = uuid4()
        sub = await hub.subscribe(user)
        await sub.close()
        await hub.publish([user], b"into the void")
        await hub.publish([uuid4()], b"nobody listens")


class PresenceContract:
    async def test_online_while_any_session_is_connected(self, presence: PresenceStore):
        user = uuid4()
        await presence.connected(user, "s1", T0)
        await presence.connected(user, "s2", T0 + timedelta(seconds=1))
        await presence.disconnected(user, "s1", T0 + timedelta(seconds=2))
        [state] = await presence.states([user])
        assert state.online
        await presence.disconnected(user, "s2", T0 + timedelta(seconds=3))
        [state] = await presence.states([user])
        assert not state.online
        assert state.last_seen == T0 + timedelta(seconds=3)

    async def test_states_answer_in_the_order_asked(self, presence: PresenceStore):
        on, off, never = uuid4(), uuid4(), uuid4()
        await presence.connected(on, "a", T0)
        await presence.connected(off, "b", T0)
        await presence.disconnected(off, "b", T0 + timedelta(seconds=5))
        states = await presence.states([never, on, off])
        assert [(s.user_id, s.online) for s in states] == [(never, False), (on, True), (off, False)]
        assert states[2].last_seen == T0 + timedelta(seconds=5)
        assert await presence.states([]) == []

    async def test_only_the_first_connect_and_the_last_disconnect_change_presence(
        self, presence: PresenceStore
    ):
        user = uuid4()
        assert await presence.connected(user, "phone", T0) is True
        assert await presence.connected(user, "laptop", T0) is False
        assert await presence.disconnected(user, "phone", T0 + timedelta(seconds=1)) is False
        assert await presence.disconnected(user, "phone", T0 + timedelta(seconds=1)) is False
        assert await presence.disconnected(user, "laptop", T0 + timedelta(seconds=2)) is True
        assert await presence.disconnected(user, "laptop", T0 + timedelta(seconds=2)) is False
        assert await presence.connected(user, "phone", T0 + timedelta(seconds=3)) is True

    async def test_closed_sessions_are_not_swept_again(self, presence: PresenceStore):
        user = uuid4()
        await presence.connected(user, "s", T0)
        await presence.disconnected(user, "s", T0 + timedelta(seconds=1))
        assert user not in [s.user_id for s in await presence.sweep_expired()]

    async def test_unknown_user_is_offline_never_seen(self, presence: PresenceStore):
        user = uuid4()
        [state] = await presence.states([user])
        assert state.user_id == user and not state.online and state.last_seen is None


class KeyValueCacheContract:
    async def test_set_get_delete(self, cache: KeyValueCache):
        await cache.set("k", b"v")
        assert await cache.get("k") == b"v"
        await cache.set("k", b"w")
        assert await cache.get("k") == b"w"
        await cache.delete("k")
        assert await cache.get("k") is None
        await cache.delete("never-set")

    async def test_entries_expire(self, cache: KeyValueCache, pass_time: PassTime):
        await cache.set("short", b"1", ttl_seconds=1)
        await cache.set("forever", b"2")
        assert await cache.get("short") == b"1"
        await pass_time(1.2)
        assert await cache.get("short") is None
        assert await cache.get("forever") == b"2"

    async def test_setting_again_without_ttl_keeps_the_entry(
        self, cache: KeyValueCache, pass_time: PassTime
    ):
        await cache.set("k", b"1", ttl_seconds=1)
        await cache.set("k", b"2")
        await pass_time(1.2)
        assert await cache.get("k") == b"2"

    async def test_a_ttl_of_zero_or_less_leaves_nothing(self, cache: KeyValueCache):
        await cache.set("k", b"old")
        await cache.set("k", b"new", ttl_seconds=0)
        assert await cache.get("k") is None
        await cache.set("j", b"new", ttl_seconds=-1)
        assert await cache.get("j") is None

    async def test_values_are_bytes_kept_exactly(self, cache: KeyValueCache):
        value = bytes(range(256)) * 4
        await cache.set("binary", value)
        assert await cache.get("binary") == value
        await cache.set("empty", b"")
        assert await cache.get("empty") == b""
