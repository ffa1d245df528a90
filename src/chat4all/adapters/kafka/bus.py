"""`EventBus` on Apache Kafka: an idempotent producer, topics made on demand, consumer groups.

Every topic is `event.type`; the record key is `event.key`, so librdkafka's partitioner (murmur2,
the Java client's) keeps one key's events in one partition, in order. `publish` returns once every
record is acknowledged by all in-sync replicas (`acks=all`); the idempotent producer keeps the
order of one partition's records through its own retries. A topic the bus has not seen yet is
created first (CreateTopics, with the bus's partition count and replication factor; one that
exists is used as it is), since the broker's own auto-creation is meant to be off.

librdkafka runs on its own threads; the event loop only hands it records and waits on futures.
Delivery reports come back on one poll thread of the bus, which resolves each `publish` once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from chat4all.adapters.kafka.codec import encode
from chat4all.adapters.kafka.consumer import KafkaConsumer
from chat4all.adapters.kafka.errors import code_of, quiet_logger, unavailable
from chat4all.domain.errors import InvalidInput, Unavailable
from chat4all.domain.events import Event

log = logging.getLogger(__name__)

GROUP_PROTOCOLS: Final = ("classic", "consumer")
# The classic protocol's member timing (KIP-848's is the broker's): a member that dies silently
# hands its partitions over after SESSION; one that leaves, within about HEARTBEAT.
CLASSIC_SESSION_MS: Final = 10_000
CLASSIC_HEARTBEAT_MS: Final = 1_000
_POLL_SECONDS: Final = 0.1
_FULL_QUEUE_PAUSE: Final = 0.005


class _Deliveries:
    """One `publish`'s delivery reports, counted on the poll thread; its future resolves on the
    event loop once every record produced so far is reported and no more will come."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._sent = 0
        self._reported = 0
        self._sealed = False
        self.error: KafkaError | None = None
        self.done: asyncio.Future[None] = loop.create_future()

    def sent(self) -> None:
        with self._lock:
            self._sent += 1

    def report(self, error: KafkaError | None, _message: Message) -> None:  # the poll thread
        with self._lock:
            self._reported += 1
            if error is not None and self.error is None:
                self.error = error
            finished = self._sealed and self._reported == self._sent
        if finished:
            self._loop.call_soon_threadsafe(self._finish)

    def seal(self) -> None:  # the event loop
        with self._lock:
            self._sealed = True
            finished = self._reported == self._sent
        if finished:
            self._finish()

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


class KafkaEventBus:
    """`EventBus` on a Kafka cluster. Open it with `connect`."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str,
        partitions: int,
        replication_factor: int,
        group_protocol: str,
        consumer_config: Mapping[str, object],
        timeout: float,
        namespace: str = "",
    ) -> None:
        if partitions < 1 or replication_factor < 1:
            raise InvalidInput("Kafka topics need at least one partition and one replica")
        if group_protocol not in GROUP_PROTOCOLS:
            raise InvalidInput(f"group_protocol is one of {', '.join(GROUP_PROTOCOLS)}")
        self.bootstrap_servers = bootstrap_servers
        self.client_id = client_id
        self.partitions = partitions
        self.replication_factor = replication_factor
        self.timeout = timeout
        # Several platforms (or test runs) on one cluster: "<namespace>.<topic>" on the wire,
        # and groups likewise. Events keep their own type; `Record.topic` is the wire name.
        self._prefix = f"{namespace}." if namespace else ""
        self._driver_log = quiet_logger(f"{__name__}.librdkafka")
        common: dict[str, Any] = {
            "bootstrap.servers": bootstrap_servers,
            "client.id": client_id,
            "logger": self._driver_log,
            "error_cb": self._on_error,
            "log.connection.close": False,  # idle connections closing are no news
        }
        self._producer_config: dict[str, Any] = {
            **common,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 0,  # the relay batches already; a lone event goes out at once
            "partitioner": "murmur2_random",  # the Java client's: every client agrees on keys
            "delivery.timeout.ms": int(timeout * 3000),  # then `publish` says Unavailable
        }
        self._consumer_config: dict[str, Any] = {
            **common,
            "group.protocol": group_protocol,
            "enable.auto.commit": False,  # the workers commit after their effect is durable
            "auto.offset.reset": "earliest",  # a new group reads a topic from its start
            "enable.partition.eof": False,
            # A fetch for a partition just assigned may wait behind one already parked on the
            # broker: bound that to 0.1 s (idle cost: ten small requests a second).
            "fetch.wait.max.ms": 100,
            **(
                {"partition.assignment.strategy": "cooperative-sticky"}
                if group_protocol == "classic"
                else {}
            ),
            **consumer_config,
        }
        self._admin = AdminClient({**common})
        self._producer = Producer(self._producer_config)
        self._known_topics: set[str] = set()
        self._topics_lock = asyncio.Lock()
        self._consumers: set[KafkaConsumer] = set()
        self._closed = False
        self._stopping = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="kafka-producer-poll", daemon=True)
        self._poller.start()

    @classmethod
    async def connect(
        cls,
        bootstrap_servers: str,
        *,
        client_id: str = "chat4all",
        partitions: int = 4,
        replication_factor: int = 1,
        group_protocol: str = "classic",
        consumer_config: Mapping[str, object] | None = None,
        timeout: float = 10.0,
        namespace: str = "",
    ) -> KafkaEventBus:
        """A bus on the cluster at `bootstrap_servers` (`host:port[,host:port...]`), checked to
        answer within `timeout` seconds, else `Unavailable` naming the servers. Topics it creates
        get `partitions` partitions of `replication_factor` replicas.

        `group_protocol` is "classic" (JoinGroup/SyncGroup, with the cooperative-sticky assignor
        so a rebalance only moves the partitions that change hands) or "consumer" (KIP-848: the
        broker assigns; heartbeats and session timeouts are then the broker's settings). Classic
        is the default because a new member starts reading sooner: ~60 ms here, against 0.1 to
        1.3 s for KIP-848, whose first assignment comes on a later heartbeat. `consumer_config`
        adds librdkafka settings to every consumer (tests shorten the heartbeat with it)."""
        bus = cls(
            bootstrap_servers,
            client_id=client_id,
            partitions=partitions,
            replication_factor=replication_factor,
            group_protocol=group_protocol,
            consumer_config=consumer_config or {},
            timeout=timeout,
            namespace=namespace,
        )
        try:
            await bus._describe_cluster()
        except KafkaException as e:
            await bus.close()
            raise unavailable(f"connecting (timeout {timeout:g} s)", bootstrap_servers, e) from e
        return bus

    @property
    def known_topics(self) -> frozenset[str]:
        """The topics this bus has made sure exist."""
        return frozenset(self._known_topics)

    async def ping(self) -> None:
        self._check_open()
        try:
            await self._describe_cluster()
        except KafkaException as e:
            raise unavailable("describing the cluster", self.bootstrap_servers, e) from e

    async def _describe_cluster(self) -> None:
        await asyncio.wrap_future(self._admin.describe_cluster(request_timeout=self.timeout))

    async def publish(self, events: Sequence[Event]) -> None:
        if not events:
            return
        self._check_open()
        prefix = self._prefix
        await self.ensure_topics({prefix + event.type for event in events})
        deliveries = _Deliveries(asyncio.get_running_loop())
        producer = self._producer
        try:
            for event in events:
                key, value, headers = encode(event)
                while True:
                    try:
                        producer.produce(
                            prefix + event.type,
                            value,
                            key,
                            headers=headers,
                            on_delivery=deliveries.report,
                        )
                        deliveries.sent()
                        break
                    except BufferError:  # librdkafka's queue is full until the broker acks
                        await asyncio.sleep(_FULL_QUEUE_PAUSE)
        except KafkaException as e:
            if code_of(e) == KafkaError.MSG_SIZE_TOO_LARGE:
                raise InvalidInput(f"an event is too large for Kafka: {e}") from e
            raise unavailable("publishing", self.bootstrap_servers, e) from e
        finally:
            deliveries.seal()
            await deliveries.done  # what was produced is reported either way
        if deliveries.error is not None:
            if deliveries.error.fatal():  # the idempotent producer cannot go on: start a new one
                self._producer = Producer(self._producer_config)
            error = KafkaException(deliveries.error)
            raise unavailable("publishing", self.bootstrap_servers, error) from error

    def consumer(self, group: str, topics: Sequence[str]) -> KafkaConsumer:
        if not topics:
            raise InvalidInput("a consumer needs at least one topic")
        group, wire = self._prefix + group, tuple(dict.fromkeys(self._prefix + t for t in topics))
        consumer = KafkaConsumer(self, group, wire, {**self._consumer_config, "group.id": group})
        self._consumers.add(consumer)
        return consumer

    async def close(self) -> None:
        """Close the bus's consumers (leaving their groups), deliver what is queued, stop."""
        if self._closed:
            return
        self._closed = True
        for consumer in list(self._consumers):
            await consumer.close()
        loop = asyncio.get_running_loop()
        left = await loop.run_in_executor(None, self._producer.flush, self.timeout)
        if left:
            log.warning(
                "Kafka at %s: %d records undelivered at close", self.bootstrap_servers, left
            )
        self._stopping.set()
        await loop.run_in_executor(None, self._poller.join)

    # --- topics --------------------------------------------------------------------------

    async def ensure_topics(self, topics: Iterable[str]) -> None:
        """Create the topics this bus has not seen yet, and wait until the cluster serves them."""
        if self._known_topics.issuperset(topics):
            return
        async with self._topics_lock:
            missing = sorted(set(topics) - self._known_topics)
            if not missing:
                return
            futures = self._admin.create_topics(
                [NewTopic(t, self.partitions, self.replication_factor) for t in missing],
                operation_timeout=self.timeout,
                request_timeout=self.timeout,
            )
            for topic, future in futures.items():
                try:
                    await asyncio.wrap_future(future)
                except KafkaException as e:
                    code = code_of(e)
                    if code == KafkaError.TOPIC_ALREADY_EXISTS:
                        continue
                    if code == KafkaError.TOPIC_EXCEPTION:
                        raise InvalidInput(f"'{topic}' is not a valid Kafka topic name") from e
                    raise unavailable(f"creating topic '{topic}'", self.bootstrap_servers, e) from e
            await asyncio.get_running_loop().run_in_executor(None, self._await_leaders, missing)
            self._known_topics.update(missing)

    def _await_leaders(self, topics: list[str]) -> None:
        """Block until every partition of `topics` has a leader (a new topic takes a moment to
        reach every broker's metadata); `Unavailable` after the bus's timeout. A thread's job."""
        deadline = time.monotonic() + self.timeout
        for topic in topics:
            while True:
                try:
                    found = self._admin.list_topics(topic=topic, timeout=self.timeout).topics
                except KafkaException as e:
                    raise unavailable(f"reading topic '{topic}'", self.bootstrap_servers, e) from e
                meta = found.get(topic)
                if (
                    meta is not None
                    and meta.error is None
                    and meta.partitions
                    and all(p.leader >= 0 for p in meta.partitions.values())
                ):
                    break
                if time.monotonic() > deadline:
                    raise Unavailable(
                        f"Kafka at {self.bootstrap_servers}: topic '{topic}' has no leader "
                        f"after {self.timeout:g} s"
                    )
                time.sleep(0.02)

    # --- librdkafka's threads --------------------------------------------------------------

    def _poll(self) -> None:
        """Serve delivery reports, logs and errors until the bus closes (the poll thread)."""
        while not self._stopping.is_set():
            try:
                self._producer.poll(_POLL_SECONDS)
                self._admin.poll(0)
            except Exception:  # a dead poll thread would leave every `publish` waiting
                log.exception("Kafka at %s: serving delivery reports", self.bootstrap_servers)
                time.sleep(_POLL_SECONDS)

    def _on_error(self, error: KafkaError) -> None:  # librdkafka's threads
        level = logging.ERROR if error.fatal() else logging.WARNING
        self._driver_log.log(level, "Kafka at %s: %s", self.bootstrap_servers, error.str())

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("the Kafka event bus is closed")

    def _forget(self, consumer: KafkaConsumer) -> None:
        self._consumers.discard(consumer)

    @property
    def closed(self) -> bool:
        return self._closed
