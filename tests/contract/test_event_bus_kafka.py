"""The event bus contract on a real Kafka broker (scripts/infra/kafka.sh), plus what only Kafka
has: partitions shared out in a group, hand-over when a member leaves, CloudEvents headers, and
records another producer wrote."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator, Sequence

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from chat4all.adapters.kafka import KafkaConsumer, KafkaEventBus
from chat4all.devcluster import free_port
from chat4all.domain.errors import Unavailable
from chat4all.domain.events import UNDECODABLE, Event
from chat4all.ports.bus import EventBus, Record
from chat4all.workers.base import ConsumerWorker
from tests.contract.event_bus_contract import (
    T0,
    EventBusContract,
    OpenBus,
    event,
    fetch_n,
    nothing_more,
    unique,
)
from tests.fakes import FakeClock
from tests.servers import server_url

pytestmark = pytest.mark.kafka
PARTITIONS = 4
# A member that leaves hands over within a fraction of a second (6 s is the broker's default
# minimum session; no test waits for a session to expire).
FAST_GROUPS = {"heartbeat.interval.ms": 250, "session.timeout.ms": 6000}


@pytest.fixture
def bootstrap() -> str:
    return server_url("kafka")


@contextlib.asynccontextmanager
async def kafka_buses(bootstrap: str, protocol: str = "classic") -> AsyncIterator[OpenBus]:
    """Opens buses on the broker; at the end closes them and deletes the topics they made."""
    opened: list[KafkaEventBus] = []

    async def open_bus() -> KafkaEventBus:
        bus = await KafkaEventBus.connect(
            bootstrap,
            client_id=unique("test"),
            partitions=PARTITIONS,
            group_protocol=protocol,
            # KIP-848's timing is the broker's (scripts/infra/kafka.sh sets it short)
            consumer_config=FAST_GROUPS if protocol == "classic" else {},
            timeout=10,
        )
        opened.append(bus)
        return bus

    yield open_bus
    topics: set[str] = set()
    for bus in opened:
        await bus.close()
        topics |= bus.known_topics
    if topics:  # the broker is shared and long-lived: leave no topics behind
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for future in admin.delete_topics(sorted(topics), operation_timeout=10).values():
            await asyncio.wrap_future(future)


class TestKafkaEventBus(EventBusContract):
    @pytest.fixture
    async def open_bus(self, bootstrap: str) -> AsyncIterator[OpenBus]:
        async with kafka_buses(bootstrap) as open_bus:
            yield open_bus


@pytest.fixture
async def open_kafka(bootstrap: str) -> AsyncIterator[OpenBus]:
    async with kafka_buses(bootstrap) as open_bus:
        yield open_bus


@pytest.fixture
async def bus(open_kafka: OpenBus) -> KafkaEventBus:
    opened = await open_kafka()
    assert isinstance(opened, KafkaEventBus)
    return opened


async def settle(consumers: Sequence[KafkaConsumer], partitions: int, timeout: float = 30) -> None:
    """Poll every member until the group has shared out all `partitions`, each member owning
    some and no partition owned twice."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        polled = await asyncio.gather(*(c.fetch(100, timeout=0.1) for c in consumers))
        assert polled == [[] for _ in consumers], "nothing is published yet"
        owned = [await c.assignment() for c in consumers]
        if all(owned) and sum(map(len, owned)) == partitions == len(frozenset().union(*owned)):
            return
    raise AssertionError(f"the group did not settle: {owned}")


async def fetch_all(consumers: Sequence[KafkaConsumer], n: int) -> list[list[Record]]:
    """Fetch with every member at once until they have `n` records between them."""
    got: list[list[Record]] = [[] for _ in consumers]
    deadline = time.monotonic() + 20
    while sum(map(len, got)) < n and time.monotonic() < deadline:
        batches = await asyncio.gather(*(c.fetch(100, timeout=0.2) for c in consumers))
        for mine, batch in zip(got, batches, strict=True):
            mine += batch
    return got


def per_partition(records: Sequence[Record]) -> dict[int, list[Record]]:
    """The records of each partition, in the order they came."""
    found: dict[int, list[Record]] = {}
    for r in records:
        found.setdefault(r.partition, []).append(r)
    return found


def in_order(records: Sequence[Record]) -> bool:
    """Every partition's records came in offset order, none twice."""
    return all(
        [r.offset for r in mine] == sorted({r.offset for r in mine})
        for mine in per_partition(records).values()
    )


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
async def test_a_group_shares_partitions_and_a_leaver_hands_over_uncommitted_work(
    bootstrap: str, protocol: str
) -> None:
    async with kafka_buses(bootstrap, protocol) as open_bus:
        bus = await open_bus()
        assert isinstance(bus, KafkaEventBus)
        await share_and_hand_over(bus)


async def share_and_hand_over(bus: KafkaEventBus) -> None:
    topic, group = unique("test.group"), unique("group")
    first, second = bus.consumer(group, [topic]), bus.consumer(group, [topic])
    await settle([first, second], PARTITIONS)
    await bus.publish([event(topic, f"k{i % 20}", i) for i in range(80)])
    mine, theirs = await fetch_all([first, second], 80)

    assert len(mine) + len(theirs) == 80
    assert {r.partition for r in mine}.isdisjoint({r.partition for r in theirs})
    assert in_order(mine) and in_order(theirs)
    # The second member commits the first half of each of its partitions, then leaves.
    done = [r for records in per_partition(theirs).values() for r in records[: len(records) // 2]]
    await first.commit(mine)
    await second.commit(done)
    await second.close()

    # The first member takes over the partitions and gets exactly what was not committed.
    expected = sorted((r.partition, r.offset) for r in theirs if r not in done)
    again = await fetch_n(first, len(expected), timeout=20)
    assert sorted((r.partition, r.offset) for r in again) == expected
    assert in_order(again)
    assert [r.event for r in again] == [
        next(t.event for t in theirs if (t.partition, t.offset) == (r.partition, r.offset))
        for r in again
    ]
    assert await nothing_more(first)


async def test_a_commit_for_a_partition_moved_away_is_dropped_and_its_records_come_again(
    bus: KafkaEventBus,
) -> None:
    topic, group = unique("test.moved"), unique("group")
    first = bus.consumer(group, [topic])
    await bus.publish([event(topic, f"k{i}", i) for i in range(40)])
    fetched = await fetch_n(first, 40)
    assert len(fetched) == 40

    second = bus.consumer(group, [topic])  # takes some partitions before `first` commits
    deadline = time.monotonic() + 30
    while not await second.assignment() and time.monotonic() < deadline:
        await asyncio.gather(first.fetch(100, timeout=0.1), second.fetch(100, timeout=0.1))
    kept = await first.assignment()
    moved = await second.assignment()
    assert moved and kept and kept.isdisjoint(moved)

    await first.commit(fetched)  # no error: what `first` no longer owns is not committed
    again = await fetch_n(second, sum(1 for r in fetched if (r.topic, r.partition) in moved))
    assert sorted((r.partition, r.offset) for r in again) == sorted(
        (r.partition, r.offset) for r in fetched if (r.topic, r.partition) in moved
    )


async def test_a_restarted_member_resumes_from_each_partitions_committed_offset(
    open_kafka: OpenBus,
) -> None:
    topic, group = unique("test.resume"), unique("group")
    before = await open_kafka()
    await before.publish([event(topic, f"k{i % 8}", i) for i in range(64)])
    consumer = before.consumer(group, [topic])
    records = await fetch_n(consumer, 64)
    # Per partition, commit a different prefix: the first 3k records of the k-th partition.
    done = [
        r
        for k, (_, mine) in enumerate(sorted(per_partition(records).items()))
        for r in mine[: k * 3]
    ]
    await consumer.commit(done)
    await before.close()

    after = await open_kafka()
    resumed = after.consumer(group, [topic])
    expected = sorted((r.partition, r.offset) for r in records if r not in done)
    again = await fetch_n(resumed, len(expected))
    assert sorted((r.partition, r.offset) for r in again) == expected
    assert await nothing_more(resumed)


async def test_records_carry_cloudevents_attributes_in_headers(
    bus: KafkaEventBus, bootstrap: str
) -> None:
    topic = unique("test.headers")
    sent = Event(type=topic, key="conversation-7", data={"text": "olá"}, time=T0, id="e-1")
    await bus.publish([sent])

    def read_raw() -> tuple[bytes | None, bytes | None, dict[str, bytes]]:
        raw = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("raw")})
        try:
            raw.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                message = raw.poll(0.2)
                if message is not None and message.error() is None:
                    raw_headers = message.headers()
                    assert isinstance(raw_headers, list)
                    headers = {k: v for k, v in raw_headers if isinstance(v, bytes)}
                    return message.key(), message.value(), headers
            raise AssertionError("the record did not come")
        finally:
            raw.close()

    key, value, headers = await asyncio.to_thread(read_raw)
    assert key == b"conversation-7"
    assert orjson.loads(value or b"") == {"text": "olá"}
    assert headers == {
        "ce_specversion": b"1.0",
        "ce_id": b"e-1",
        "ce_source": b"chat4all",
        "ce_type": topic.encode(),
        "ce_time": T0.isoformat().encode(),
        "ce_subject": b"conversation-7",
        "content-type": b"application/json",
    }


RawRecord = tuple[bytes, bytes, list[tuple[str, str | bytes | None]]]


def produce_raw(bootstrap: str, topic: str, records: list[RawRecord]) -> None:
    """Records written by another producer, as they are."""
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    for key, value, headers in records:
        producer.produce(topic, value, key, headers=headers)
    assert producer.flush(10) == 0


async def test_a_record_that_is_not_an_event_does_not_stop_the_consumer(
    bus: KafkaEventBus, bootstrap: str
) -> None:
    topic, group = unique("test.poison"), unique("group")
    await bus.publish([event(topic, "k", 0)])  # creates the topic
    await asyncio.to_thread(
        produce_raw,
        bootstrap,
        topic,
        [(b"k", b"\xff not json", [("ce_type", b"x")]), (b"k", b'{"n": 1}', [])],
    )
    await bus.publish([event(topic, "k", 2)])
    consumer = bus.consumer(group, [topic])
    records = await fetch_n(consumer, 4)
    kinds = [r.event.type for r in records]
    assert kinds == [topic, UNDECODABLE, UNDECODABLE, topic]
    poison = records[1].event
    assert base64.b64decode(poison.data["value"]) == b"\xff not json"
    assert poison.data["headers"] == {"ce_type": base64.b64encode(b"x").decode()}
    assert poison.key == "k" and poison.id == f"undecodable:{topic}:{records[1].partition}:1"
    assert poison.data["error"]
    await consumer.commit(records)
    await consumer.close()
    assert await nothing_more(bus.consumer(group, [topic]))


class Counting(ConsumerWorker):
    def __init__(self, bus: EventBus, group: str, topic: str) -> None:
        super().__init__(bus, FakeClock())
        self.group, self.topics = group, (topic,)
        self.handled: list[int] = []

    async def handle(self, records: Sequence[Record]) -> None:
        self.handled += [int(r.event.data["n"]) for r in records]  # KeyError on a poison record


async def test_a_worker_dead_letters_a_poison_record_and_goes_on(
    bus: KafkaEventBus, bootstrap: str
) -> None:
    topic, group = unique("test.worker"), unique("group")
    await bus.publish([event(topic, "k", 0)])
    await asyncio.to_thread(produce_raw, bootstrap, topic, [(b"k", b"garbage", [])])
    await bus.publish([event(topic, "k", 2)])
    worker = Counting(bus, group, topic)
    running = asyncio.create_task(worker.run())
    dead = bus.consumer(unique("group"), [f"deadletter.{group}"])
    try:
        [letter] = await fetch_n(dead, 1, timeout=30)
        for _ in range(100):
            if 2 in worker.handled:
                break
            await asyncio.sleep(0.1)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert sorted(set(worker.handled)) == [0, 2]
    assert letter.event.data["event"]["type"] == UNDECODABLE
    assert base64.b64decode(letter.event.data["event"]["data"]["value"]) == b"garbage"
    assert letter.event.data["topic"] == topic


async def test_a_broker_that_does_not_answer_is_named_in_the_error() -> None:
    port = free_port()  # nothing listens on it
    started = time.monotonic()
    with pytest.raises(Unavailable, match=f"127.0.0.1:{port}"):
        await KafkaEventBus.connect(f"127.0.0.1:{port}", timeout=1)
    assert time.monotonic() - started < 5


async def test_a_closed_bus_is_unavailable(bus: KafkaEventBus) -> None:
    topic = unique("test.closed")
    consumer = bus.consumer(unique("group"), [topic])
    await bus.close()
    with pytest.raises(Unavailable):
        await bus.publish([event(topic, "k", 1)])
    with pytest.raises(Unavailable):
        await consumer.fetch(10, timeout=0.1)


async def test_namespaces_keep_platforms_on_one_broker_apart(bootstrap: str) -> None:
    topic, ours, theirs = unique("test.ns"), unique("ns"), unique("ns")
    mine = await KafkaEventBus.connect(bootstrap, partitions=1, namespace=ours)
    other = await KafkaEventBus.connect(bootstrap, partitions=1, namespace=theirs)
    try:
        await mine.publish([event(topic, "k", 1)])
        [record] = await fetch_n(mine.consumer("g", [topic]), 1)
        assert (record.topic, record.event.type) == (f"{ours}.{topic}", topic)
        assert await nothing_more(other.consumer("g", [topic]))
    finally:
        topics = mine.known_topics | other.known_topics
        await mine.close()
        await other.close()
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for future in admin.delete_topics(sorted(topics), operation_timeout=10).values():
            await asyncio.wrap_future(future)
