"""The event bus on Apache Kafka (cluster profile), through confluent-kafka (librdkafka)."""

from chat4all.adapters.kafka.bus import KafkaEventBus
from chat4all.adapters.kafka.consumer import KafkaConsumer

__all__ = ["KafkaConsumer", "KafkaEventBus"]
