"""aiokafka against confluent-kafka on the real broker, to choose the Kafka adapter's client.

    scripts/infra/kafka.sh                      # the broker, on 127.0.0.1:9092
    uv run python -m bench.bus_kafka [--events 50000] [--batch 500] [--rounds 3]
                                     [--clients aiokafka,confluent,adapter]

Both clients do the adapter's work with the adapter's codec (CloudEvents headers, JSON value) and
its settings (idempotent producer, acks=all, manual commits), each through the thinnest asyncio
wrapper it allows; `adapter` is `KafkaEventBus` itself, to show what the port adds. For each, on a
fresh topic of `--partitions` partitions:

    publish   `--events` events on 1,000 keys in batches of `--batch`, one batch at a time, each
              awaited until every record is acknowledged: throughput and batch latency;
    single    `--singles` one-event publishes, one at a time: the latency an idle relay sees;
    consume   everything through a new consumer group: fetch up to `--batch`, decode every record
              into an `Event`, commit the batch: the time to the first record (joining the
              group), then the rate from the first record to the last commit.

CPU is this process's CPU time per event, all threads (librdkafka's are native threads) and the
event loop's thread alone ("loop"): in a Chat4All process the loop is the scarce core. Latencies
are p50/p95/p99 in ms. The broker runs on the same machine, so compare the two clients within a
run rather than the absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol
from uuid import uuid4

import confluent_kafka
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from aiokafka.structs import OffsetAndMetadata  # type: ignore[import-untyped]
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic as ConfluentNewTopic

from bench.stats import Summary, summarize
from chat4all.adapters.kafka import KafkaEventBus
from chat4all.adapters.kafka.codec import decode, encode
from chat4all.domain.events import Event

PRODUCER = {"enable_idempotence": True, "acks": "all"}


class Client(Protocol):
    name: str

    async def create_topic(self, topic: str, partitions: int) -> None: ...
    async def publish(self, topic: str, events: Sequence[Event]) -> None: ...
    async def consume_all(self, topic: str, group: str, total: int, batch: int) -> float:
        """Consume `total` records; when the first one came (`time.perf_counter()`)."""
        ...

    async def close(self) -> None: ...


class AIOKafka:
    name = "aiokafka"

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=0
        )

    async def start(self) -> AIOKafka:
        await self.producer.start()
        return self

    async def create_topic(self, topic: str, partitions: int) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, partitions, 1)])
        finally:
            await admin.close()

    async def publish(self, topic: str, events: Sequence[Event]) -> None:
        sent = []
        for event in events:
            key, value, headers = encode(event)
            sent.append(await self.producer.send(topic, value=value, key=key, headers=headers))
        await asyncio.gather(*sent)

    async def consume_all(self, topic: str, group: str, total: int, batch: int) -> float:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=self.bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            seen, first = 0, 0.0
            while seen < total:
                fetched = await consumer.getmany(timeout_ms=1000, max_records=batch)
                first = first or (time.perf_counter() if fetched else 0.0)
                marks = {}
                for tp, messages in fetched.items():
                    for m in messages:
                        decode(
                            m.topic, m.partition, m.offset, m.key, m.value, m.headers, m.timestamp
                        )
                    seen += len(messages)
                    marks[tp] = OffsetAndMetadata(messages[-1].offset + 1, "")
                if marks:
                    await consumer.commit(marks)
            return first
        finally:
            await consumer.stop()

    async def close(self) -> None:
        await self.producer.stop()


class _Acks:
    """Counts one batch's delivery reports (on librdkafka's poll thread) and resolves a future
    on the event loop once, when the last one came."""

    def __init__(self, loop: asyncio.AbstractEventLoop, count: int) -> None:
        self.loop = loop
        self.left = count
        self.error: Any = None
        self.done: asyncio.Future[None] = loop.create_future()

    def report(self, error: Any, _message: Any) -> None:
        if error is not None and self.error is None:
            self.error = error
        self.left -= 1
        if self.left == 0:
            self.loop.call_soon_threadsafe(self._finish)

    def _finish(self) -> None:
        if self.error is not None:
            self.done.set_exception(confluent_kafka.KafkaException(self.error))
        else:
            self.done.set_result(None)


class Confluent:
    name = "confluent-kafka"

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.producer = confluent_kafka.Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 0,
                "partitioner": "murmur2_random",  # the Java client's (and aiokafka's) partitioner
            }
        )
        self._stopping = threading.Event()
        self._poller = threading.Thread(target=self._poll, daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stopping.is_set():
            self.producer.poll(0.05)

    async def create_topic(self, topic: str, partitions: int) -> None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        futures = admin.create_topics([ConfluentNewTopic(topic, partitions, 1)])
        await asyncio.wrap_future(futures[topic])

    async def publish(self, topic: str, events: Sequence[Event]) -> None:
        acks = _Acks(asyncio.get_running_loop(), len(events))
        for event in events:
            key, value, headers = encode(event)
            while True:
                try:
                    self.producer.produce(
                        topic, value, key, headers=headers, on_delivery=acks.report
                    )
                    break
                except BufferError:  # librdkafka's queue is full: let the poll thread drain it
                    await asyncio.sleep(0.001)
        await acks.done

    async def consume_all(self, topic: str, group: str, total: int, batch: int) -> float:
        loop = asyncio.get_running_loop()
        thread = ThreadPoolExecutor(1)  # one thread owns the consumer
        consumer = confluent_kafka.Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        consumer.subscribe([topic])

        def fetch() -> list[confluent_kafka.Message]:
            first = consumer.poll(1.0)  # returns as soon as one record is there
            if first is None:
                return []
            return [first, *consumer.consume(batch - 1, timeout=0)]

        try:
            seen, first = 0, 0.0
            while seen < total:
                messages = [m for m in await loop.run_in_executor(thread, fetch) if not m.error()]
                first = first or (time.perf_counter() if messages else 0.0)
                marks: dict[tuple[str, int], int] = {}
                for m in messages:
                    topic_, partition, offset = m.topic() or "", m.partition() or 0, m.offset() or 0
                    ts = m.timestamp()[1]
                    decode(topic_, partition, offset, m.key(), m.value(), m.headers(), ts)
                    marks[(topic_, partition)] = offset + 1
                seen += len(messages)
                if marks:
                    offsets = [
                        confluent_kafka.TopicPartition(t, p, o) for (t, p), o in marks.items()
                    ]
                    await loop.run_in_executor(
                        thread, partial(consumer.commit, offsets=offsets, asynchronous=False)
                    )
            return first
        finally:
            await loop.run_in_executor(thread, consumer.close)
            thread.shutdown()

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.producer.flush, 10)
        self._stopping.set()
        self._poller.join()


class Adapter:
    """The chosen client as Chat4All uses it: `KafkaEventBus` (confluent-kafka underneath)."""

    name = "KafkaEventBus"

    def __init__(self, bus: KafkaEventBus) -> None:
        self.bus = bus

    async def create_topic(self, topic: str, partitions: int) -> None:
        await self.bus.ensure_topics([topic])

    async def publish(self, topic: str, events: Sequence[Event]) -> None:
        await self.bus.publish(events)

    async def consume_all(self, topic: str, group: str, total: int, batch: int) -> float:
        consumer = self.bus.consumer(group, [topic])
        try:
            seen, first = 0, 0.0
            while seen < total:
                records = await consumer.fetch(batch, timeout=1.0)
                first = first or (time.perf_counter() if records else 0.0)
                seen += len(records)
                await consumer.commit(records)
            return first
        finally:
            await consumer.close()

    async def close(self) -> None:
        await self.bus.close()


def events(topic: str, start: int, count: int) -> list[Event]:
    now = datetime.now(UTC)
    return [
        Event(type=topic, key=f"conversation-{n % 1000}", data={"n": n, "text": "hello"}, time=now)
        for n in range(start, start + count)
    ]


async def measure(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    topic = f"bench.{client.name}.{uuid4().hex[:8]}"
    await client.create_topic(topic, args.partitions)
    await client.publish(topic, events(topic, -1, 1))  # warm up: metadata, producer id
    result: dict[str, Any] = {}

    batches: list[float] = []
    cpu, loop, wall = time.process_time(), time.thread_time(), time.perf_counter()
    for start in range(0, args.events, args.batch):
        batch = events(topic, start, min(args.batch, args.events - start))
        began = time.perf_counter()
        await client.publish(topic, batch)
        batches.append(time.perf_counter() - began)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    loop = time.thread_time() - loop
    result["publish"] = (args.events / wall, cpu / args.events, loop / args.events)
    result["batches"] = summarize(batches)

    singles: list[float] = []
    for n in range(args.singles):
        one = events(topic, args.events + n, 1)
        began = time.perf_counter()
        await client.publish(topic, one)
        singles.append(time.perf_counter() - began)
    result["single"] = summarize(singles)

    total = args.events + args.singles + 1
    cpu, loop, began = time.process_time(), time.thread_time(), time.perf_counter()
    first = await client.consume_all(topic, f"bench.{uuid4().hex[:8]}", total, args.batch)
    ended, cpu, loop = time.perf_counter(), time.process_time() - cpu, time.thread_time() - loop
    result["consume"] = (total / (ended - first), cpu / total, loop / total, first - began)
    await delete_topic(args.bootstrap, topic)
    return result


async def delete_topic(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    await asyncio.wrap_future(admin.delete_topics([topic], operation_timeout=10)[topic])


def report(name: str, result: dict[str, Any]) -> None:
    rate, cpu, loop = result["publish"]
    batches: Summary = result["batches"]
    single: Summary = result["single"]
    consume_rate, consume_cpu, consume_loop, joined = result["consume"]
    print(
        f"{name:16} publish {rate:7,.0f} ev/s, CPU {cpu * 1e6:4.1f} us/ev "
        f"(loop {loop * 1e6:4.1f}), batch {batches.brief()} ms, single {single.brief()} ms | "
        f"consume: first after {joined * 1000:3.0f} ms, {consume_rate:7,.0f} ev/s, "
        f"CPU {consume_cpu * 1e6:4.1f} us/ev (loop {consume_loop * 1e6:4.1f})"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--singles", type=int, default=1_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=1, help="alternate the clients this often")
    parser.add_argument("--clients", default="aiokafka,confluent,adapter")
    args = parser.parse_args()
    wanted = args.clients.split(",")
    print(
        f"{args.events:,} events in batches of {args.batch}, {args.singles:,} single publishes, "
        f"{args.partitions} partitions, broker {args.bootstrap}"
    )
    for _ in range(args.rounds):
        if "aiokafka" in wanted:
            aio = await AIOKafka(args.bootstrap).start()
            try:
                report(aio.name, await measure(aio, args))
            finally:
                await aio.close()
        if "confluent" in wanted:
            confluent = Confluent(args.bootstrap)
            try:
                report(confluent.name, await measure(confluent, args))
            finally:
                await confluent.close()
        if "adapter" in wanted:
            bus = await KafkaEventBus.connect(args.bootstrap, partitions=args.partitions)
            adapter = Adapter(bus)
            try:
                report(adapter.name, await measure(adapter, args))
            finally:
                await adapter.close()


if __name__ == "__main__":
    asyncio.run(main())
