"""The event bus on Apache Kafka (cluster profile), through confluent-kafka (librdkafka).

    bus = await KafkaEventBus.connect("kafka-1:9092,kafka-2:9092", client_id="chat4all-router",
                                      partitions=12, replication_factor=3)

The client was chosen by measurement (`uv run python -m bench.bus_kafka`, docs/performance.md):
on this project's 2-core machine, against the real broker, with the adapter's codec and settings,

    50,000 events in batches of 500    aiokafka          confluent-kafka
    publish, events/s                  48,000-52,000     60,000-63,000
    event loop CPU per published event 18-20 us          8 us (librdkafka works on its threads)
    one-event publish, p50 / p99       0.3 / 0.5 ms      0.3 / 0.5 ms
    consume + decode + commit, ev/s    124,000-130,000   116,000-122,000
    a new group member's first record  ~20 ms            ~165 ms

Consuming is a tie and a member joins once, but every publish of the relay and of the workers
runs on an event loop shared with the API, and confluent-kafka takes well under half of that
loop's time per event. It also ships type information (mypy strict checks our use of it) and
speaks the KIP-848 group protocol. What it costs: a poll thread per bus, a thread per consumer,
and callbacks that cross back to the loop (`bus.py`, `consumer.py`).

`codec.py` maps events to records (CloudEvents 1.0 binary mode: `ce_*` headers, JSON value).
"""

from chat4all.adapters.kafka.bus import KafkaEventBus
from chat4all.adapters.kafka.consumer import KafkaConsumer

__all__ = ["KafkaConsumer", "KafkaEventBus"]
