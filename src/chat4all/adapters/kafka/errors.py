"""librdkafka's errors in the port's terms."""

from __future__ import annotations

from typing import Final

from confluent_kafka import KafkaError, KafkaException

from chat4all.domain.errors import Unavailable

# A commit the group refused because this member no longer owns the partition (a rebalance moved
# it, or the member was fenced): the records come again to the partition's new owner.
LOST_OWNERSHIP: Final = frozenset(
    {
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.STALE_MEMBER_EPOCH,
        KafkaError.FENCED_MEMBER_EPOCH,
        KafkaError._ASSIGNMENT_LOST,
        KafkaError._STATE,
    }
)


def code_of(error: KafkaException) -> int | None:
    """The `KafkaError` code inside a `KafkaException`, if it carries one."""
    inner = error.args[0] if error.args else None
    return inner.code() if isinstance(inner, KafkaError) else None


def unavailable(doing: str, bootstrap_servers: str, error: BaseException) -> Unavailable:
    """An `Unavailable` that says what failed, on which cluster, and librdkafka's reason."""
    inner = error.args[0] if isinstance(error, KafkaException) and error.args else error
    reason = inner.str() if isinstance(inner, KafkaError) else str(inner)
    return Unavailable(f"Kafka at {bootstrap_servers}: {doing} failed: {reason}")
