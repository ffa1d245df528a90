"""The `EventBus` contract: every adapter's test class subclasses `EventBusContract` and provides
an `open_bus` fixture, a factory that opens one more bus instance on the same storage (the way a
restarted process would) and closes everything it opened when the test ends.

Every test uses its own topics and group names, so a shared broker needs no cleaning.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import ClassVar
from uuid import uuid4

import pytest

from chat4all.domain.events import Event
from chat4all.ports.bus import Consumer, EventBus, Record

OpenBus = Callable[[], Awaitable[EventBus]]
T0 = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)


def unique(prefix: str) -> str:
    return f"{prefix}.{uuid4().hex[:12]}"


def event(topic: str, key: str, n: int, **data: object) -> Event:
    return Event(type=topic, key=key, data={"n": n, **data}, time=T0)


async def fetch_n(consumer: Consumer, n: int, timeout: float = 10.0) -> list[Record]:
    """Fetch until `n` records came (or `timeout`), never asking for more than are missing."""
    records: list[Record] = []
    deadline = time.monotonic() + timeout
    while len(records) < n and time.monotonic() < deadline:
        records += await consumer.fetch(n - len(records), timeout=0.5)
    return records


async def nothing_more(consumer: Consumer) -> bool:
    return await consumer.fetch(100, timeout=0.3) == []


class EventBusContract:
    """What every `EventBus` adapter must do."""

    # How soon a waiting `fetch` must return after a publish; adapters may tighten it.
    prompt_wakeup_seconds: ClassVar[float] = 1.0

    @pytest.fixture
    async def open_bus(self) -> AsyncIterator[OpenBus]:
        raise NotImplementedError("an adapter's test class provides the `open_bus` fixture")
        yield  # pragma: no cover

    @pytest.fixture
    async def bus(self, open_bus: OpenBus) -> EventBus:
        return await open_bus()

    async def test_published_events_come_back_equal(self, bus: EventBus) -> None:
        topic = unique("test.roundtrip")
        sent = [
            Event(
                type=topic,
                key="conversation-1",
                data={"n": i, "text": "olá ✓", "nested": {"list": [1, 2.5, None, True]}},
                time=datetime(2025, 1, 15, 10, 0, i, 1234, tzinfo=UTC),
            )
            for i in range(3)
        ]
        await bus.publish(sent)
        consumer = bus.consumer(unique("group"), [topic])
        records = await fetch_n(consumer, 3)
        assert [r.event for r in records] == sent
        assert all(r.topic == topic for r in records)
        assert len({r.partition for r in records}) == 1  # one key, one partition
        assert [r.offset for r in records] == sorted(r.offset for r in records)
        assert records[0].event.time.tzinfo is not None
        await consumer.close()

    async def test_trace_context_travels_with_the_event(self, bus: EventBus) -> None:
        topic = unique("test.traceparent")
        traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        await bus.publish([replace(event(topic, "k", 0), traceparent=traceparent)])
        await bus.publish([replace(event(topic, "k", 1), traceparent=None)])
        consumer = bus.consumer(unique("group"), [topic])
        records = await fetch_n(consumer, 2)
        assert [r.event.traceparent for r in records] == [traceparent, None]
        await consumer.close()

    async def test_lag_counts_what_the_group_has_not_committed(self, bus: EventBus) -> None:
        topic, group = unique("test.lag"), unique("group")
        await bus.publish([event(topic, "one-key", i) for i in range(5)])
        consumer = bus.consumer(group, [topic])
        records = await fetch_n(consumer, 5)
        assert (await consumer.lag()).get(topic) == 5
        await consumer.commit(records[:3])
        assert await consumer.lag() == {topic: 2}
        await consumer.commit(records)
        assert await consumer.lag() == {topic: 0}
        await consumer.close()

    async def test_order_is_kept_per_key(self, bus: EventBus) -> None:
        topic = unique("test.order")
        keys = [f"key-{k}" for k in range(20)]
        per_key = 25
        for n in range(0, per_key, 5):  # interleaved batches, and single publishes
            await bus.publish([event(topic, k, i) for i in range(n, n + 4) for k in keys])
            for k in keys:
                await bus.publish([event(topic, k, n + 4)])
        consumer = bus.consumer(unique("group"), [topic])
        records = await fetch_n(consumer, len(keys) * per_key)
        assert len(records) == len(keys) * per_key
        for k in keys:
            assert [r.event.data["n"] for r in records if r.event.key == k] == list(range(per_key))
        by_partition: dict[int, list[int]] = {}
        for r in records:
            by_partition.setdefault(r.partition, []).append(r.offset)
        for offsets in by_partition.values():
            assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
        assert await nothing_more(consumer)

    async def test_fetch_respects_max_records_and_moves_on(self, bus: EventBus) -> None:
        topic = unique("test.batches")
        await bus.publish([event(topic, "k", i) for i in range(10)])
        consumer = bus.consumer(unique("group"), [topic])
        seen: list[int] = []
        while len(seen) < 10:
            batch = await consumer.fetch(3, timeout=2)
            assert 0 < len(batch) <= 3
            seen += [r.event.data["n"] for r in batch]
        assert seen == list(range(10))  # no redelivery within one consumer
        assert await nothing_more(consumer)

    async def test_a_consumer_reads_several_topics(self, bus: EventBus) -> None:
        one, two = unique("test.one"), unique("test.two")
        await bus.publish([event(one, "a", 1), event(two, "b", 2), event(two, "a", 3)])
        consumer = bus.consumer(unique("group"), [one, two])
        records = await fetch_n(consumer, 3)
        assert sorted((r.topic, r.event.data["n"]) for r in records) == [
            (one, 1),
            (two, 2),
            (two, 3),
        ]

    async def test_groups_are_independent(self, bus: EventBus) -> None:
        topic = unique("test.groups")
        await bus.publish([event(topic, f"k{i % 3}", i) for i in range(6)])
        first = bus.consumer(unique("group"), [topic])
        records = await fetch_n(first, 6)
        await first.commit(records)
        second = bus.consumer(unique("group"), [topic])  # another group: sees everything
        assert sorted(r.event.data["n"] for r in await fetch_n(second, 6)) == list(range(6))

    async def test_two_groups_consuming_at_once_each_see_everything(self, bus: EventBus) -> None:
        topic = unique("test.fanout")
        a = bus.consumer(unique("group"), [topic])
        b = bus.consumer(unique("group"), [topic])
        reading = [asyncio.create_task(fetch_n(c, 40)) for c in (a, b)]
        for i in range(0, 40, 8):
            await bus.publish([event(topic, f"k{j}", i + j) for j in range(8)])
            await asyncio.sleep(0.01)
        for task in reading:
            assert sorted(r.event.data["n"] for r in await task) == list(range(40))

    async def test_uncommitted_records_come_again_committed_do_not(self, bus: EventBus) -> None:
        topic, group = unique("test.redelivery"), unique("group")
        await bus.publish([event(topic, "one-key", i) for i in range(5)])
        first = bus.consumer(group, [topic])
        records = await fetch_n(first, 5)
        await first.commit(records[:2])
        await first.close()

        second = bus.consumer(group, [topic])
        again = await fetch_n(second, 3)
        assert [r.event.data["n"] for r in again] == [2, 3, 4]  # at-least-once
        assert await nothing_more(second)
        await second.commit(again)
        await second.close()

        third = bus.consumer(group, [topic])
        assert await nothing_more(third)

    async def test_commit_never_moves_back(self, bus: EventBus) -> None:
        topic, group = unique("test.monotonic"), unique("group")
        await bus.publish([event(topic, "one-key", i) for i in range(4)])
        first = bus.consumer(group, [topic])
        records = await fetch_n(first, 4)
        await first.commit(records[2:3])
        await first.commit(records[:1])  # a late commit of an earlier record
        await first.close()
        second = bus.consumer(group, [topic])
        assert [r.event.data["n"] for r in await fetch_n(second, 1)] == [3]

    async def test_everything_survives_a_restart(self, open_bus: OpenBus) -> None:
        topic, group = unique("test.restart"), unique("group")
        before = await open_bus()
        await before.publish([event(topic, f"k{i % 2}", i) for i in range(6)])
        consumer = before.consumer(group, [topic])
        records = await fetch_n(consumer, 6)
        done = [r for r in records if r.event.data["n"] < 2]
        await consumer.commit(done)
        await before.close()

        after = await open_bus()
        resumed = after.consumer(group, [topic])
        again = await fetch_n(resumed, 4)
        assert sorted(r.event.data["n"] for r in again) == [2, 3, 4, 5]
        assert await nothing_more(resumed)
        await after.publish([event(topic, "k0", 6)])  # offsets continue after the restart
        [new] = await fetch_n(resumed, 1)
        assert new.event.data["n"] == 6
        assert new.offset not in {r.offset for r in records if r.partition == new.partition}

    async def test_fetch_waits_up_to_the_timeout(self, bus: EventBus) -> None:
        consumer = bus.consumer(unique("group"), [unique("test.empty")])
        started = time.monotonic()
        assert await consumer.fetch(10, timeout=0.4) == []
        assert 0.3 <= time.monotonic() - started < 3.0

    async def test_fetch_wakes_when_something_is_published(self, bus: EventBus) -> None:
        topic = unique("test.wakeup")
        consumer = bus.consumer(unique("group"), [topic])
        assert await consumer.fetch(10, timeout=0) == []  # joined and positioned
        waiting = asyncio.create_task(consumer.fetch(10, timeout=10))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await bus.publish([event(topic, "k", 1)])
        records = await asyncio.wait_for(waiting, 10)
        assert [r.event.data["n"] for r in records] == [1]
        assert time.monotonic() - started < self.prompt_wakeup_seconds

    async def test_publishing_nothing_is_fine(self, bus: EventBus) -> None:
        await bus.publish([])
        await bus.ping()
