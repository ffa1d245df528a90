"""One member of a Kafka consumer group, behind the `Consumer` port.

librdkafka's consumer is driven from one thread of its own: every call (poll, commit, close) and
every rebalance callback runs there, so the partition bookkeeping below is never shared with the
event loop. `fetch` polls in short slices, so a closed or cancelled consumer never waits long.

Commits follow the workers' rule, "commit after the effect is durable": `commit(records)` commits,
per partition, the offset after the last record passed, and nothing else. A commit never moves a
partition back, and a commit for a partition this member no longer owns (a rebalance moved it) is
dropped: that partition's new owner starts from the last committed offset and gets those records
again, which the workers' idempotent effects absorb (at-least-once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any, Final, TypeVar

from confluent_kafka import Consumer, KafkaException, TopicPartition

from chat4all.adapters.kafka.codec import decode
from chat4all.adapters.kafka.errors import LOST_OWNERSHIP, code_of, unavailable
from chat4all.domain.errors import Unavailable
from chat4all.ports.bus import Record

if TYPE_CHECKING:
    from chat4all.adapters.kafka.bus import KafkaEventBus

log = logging.getLogger(__name__)

LAG_TIMEOUT: Final = 2.0  # seconds for the broker to answer a lag query
POLL_SLICE: Final = 0.2  # the longest a close or a cancelled fetch waits for librdkafka
T = TypeVar("T")
Partition = tuple[str, int]


class KafkaConsumer:
    """A member of consumer group `group` reading `topics`; joins the group on its first `fetch`.
    Not for concurrent `fetch` calls."""

    def __init__(
        self, bus: KafkaEventBus, group: str, topics: tuple[str, ...], config: dict[str, Any]
    ) -> None:
        self.group = group
        self.topics = topics
        self._bus = bus
        self._config = config
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"kafka-{group}")
        self._consumer: Consumer | None = None
        self._closed = False
        # A poll the event loop stopped waiting for (a cancelled fetch): the next fetch takes
        # its records, so nothing fetched is skipped by this member.
        self._in_flight: asyncio.Future[list[Record]] | None = None
        self._unreturned: list[Record] = []
        # The consumer thread's own: partitions owned, and per partition the lowest offset a
        # commit may move past (the position it started from, then the last commit).
        self._owned: set[Partition] = set()
        self._floor: dict[Partition, int] = {}

    async def fetch(self, max_records: int, timeout: float) -> list[Record]:
        if self._bus.closed:
            raise Unavailable("the Kafka event bus is closed")
        if max_records <= 0 or self._closed:
            return []
        if self._consumer is None:
            await self._bus.ensure_topics(self.topics)
            await self._call(self._subscribe_job)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        while True:
            if self._unreturned:
                records = self._unreturned[:max_records]
                del self._unreturned[:max_records]
                return records
            if self._in_flight is None:
                wait = min(max(deadline - loop.time(), 0.0), POLL_SLICE)
                self._in_flight = self._submit(partial(self._poll_job, max_records, wait))
            in_flight = self._in_flight
            try:
                self._unreturned += await asyncio.shield(in_flight)
            except KafkaException as e:
                raise self._unavailable(e) from e
            finally:
                if in_flight.done():
                    self._in_flight = None
            if not self._unreturned and (self._closed or loop.time() >= deadline):
                return []

    async def commit(self, records: Sequence[Record]) -> None:
        marks: dict[Partition, int] = {}
        for record in records:
            where = (record.topic, record.partition)
            marks[where] = max(marks.get(where, 0), record.offset + 1)
        if not marks:
            return
        if self._closed:  # the offsets stay where they are: the records come again
            raise Unavailable(f"the Kafka consumer of group '{self.group}' is closed")
        await self._call(partial(self._commit_job, marks))

    async def lag(self) -> dict[str, int]:
        if self._closed or self._consumer is None:
            return {}
        return await self._call(self._lag_job)

    async def assignment(self) -> frozenset[Partition]:
        """The (topic, partition) pairs this member owns now; empty before it has joined."""
        if self._closed:
            return frozenset()
        return await self._call(lambda: frozenset(self._owned))

    async def close(self) -> None:
        """Leave the group (its partitions go to the other members) and stop."""
        if self._closed:
            return
        self._closed = True
        self._bus._forget(self)
        try:
            if self._consumer is not None:
                await asyncio.get_running_loop().run_in_executor(self._thread, self._close_job)
        except KafkaException as e:
            log.warning("Kafka consumer %s: leaving the group failed: %s", self.group, e)
        finally:
            self._thread.shutdown(wait=False)

    # --- the event loop's side -------------------------------------------------------------

    def _submit(self, job: Callable[[], T]) -> asyncio.Future[T]:
        future = asyncio.get_running_loop().run_in_executor(self._thread, job)
        future.add_done_callback(_retrieve)  # an abandoned poll's error is not "never retrieved"
        return future

    async def _call(self, job: Callable[[], T]) -> T:
        try:
            return await self._submit(job)
        except KafkaException as e:
            raise self._unavailable(e) from e
        except RuntimeError as e:  # the executor is shut down: the consumer was closed meanwhile
            raise Unavailable(f"the Kafka consumer of group '{self.group}' is closed") from e

    def _unavailable(self, error: KafkaException) -> Unavailable:
        return unavailable(f"consumer group '{self.group}'", self._bus.bootstrap_servers, error)

    # --- the consumer thread's jobs ----------------------------------------------------------

    def _subscribe_job(self) -> None:
        if self._consumer is not None or self._closed:
            return
        consumer = Consumer(self._config)
        consumer.subscribe(
            list(self.topics),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        self._consumer = consumer

    def _poll_job(self, max_records: int, wait: float) -> list[Record]:
        consumer = self._consumer
        if consumer is None:
            return []
        first = consumer.poll(wait)
        if first is None:
            return []
        messages = [first, *consumer.consume(max_records - 1, 0)] if max_records > 1 else [first]
        records = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise KafkaException(error)
                log.warning("Kafka consumer %s: %s", self.group, error.str())
                continue
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            if topic is None or partition is None or offset is None:
                continue
            where = (topic, partition)
            if where not in self._owned:
                continue  # revoked while it was queued: its new owner gets it
            self._floor.setdefault(where, offset)
            headers = message.headers()
            event = decode(
                topic,
                partition,
                offset,
                message.key(),
                message.value(),
                headers,
                message.timestamp()[1],
            )
            records.append(Record(topic, partition, offset, event))
        return records

    def _commit_job(self, marks: dict[Partition, int]) -> None:
        consumer = self._consumer
        wanted = [
            TopicPartition(topic, partition, offset)
            for (topic, partition), offset in marks.items()
            if (topic, partition) in self._owned
            and offset > self._floor.get((topic, partition), offset)
        ]
        if len(wanted) < len(marks):  # partitions moved away, or offsets already committed
            skipped = set(marks) - {(tp.topic, tp.partition) for tp in wanted}
            log.debug("Kafka consumer %s: no commit for %s", self.group, sorted(skipped))
        if consumer is None or not wanted:
            return
        try:
            results = consumer.commit(offsets=wanted, asynchronous=False)
        except KafkaException as e:
            if code_of(e) in LOST_OWNERSHIP:
                log.info("Kafka consumer %s: commit dropped, partitions moved: %s", self.group, e)
                return
            raise
        for result in results:
            if result.error is not None:
                if result.error.code() in LOST_OWNERSHIP:
                    continue
                raise KafkaException(result.error)
            self._floor[(result.topic, result.partition)] = result.offset

    def _lag_job(self) -> dict[str, int]:
        consumer = self._consumer
        if consumer is None or not self._owned:
            return {}
        owned = [TopicPartition(topic, partition) for topic, partition in sorted(self._owned)]
        committed = consumer.committed(owned, timeout=LAG_TIMEOUT)
        lag: dict[str, int] = {}
        for tp in committed:
            low, high = consumer.get_watermark_offsets(tp, timeout=LAG_TIMEOUT)
            start = tp.offset if tp.offset >= 0 else low  # nothing committed yet
            lag[tp.topic] = lag.get(tp.topic, 0) + max(high - start, 0)
        return lag

    def _close_job(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.close()

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._owned.add((tp.topic, tp.partition))
            self._floor.pop((tp.topic, tp.partition), None)  # set by its first record

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._owned.discard((tp.topic, tp.partition))
            self._floor.pop((tp.topic, tp.partition), None)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
