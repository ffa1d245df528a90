"""librdkafka's errors in the port's terms, and its logs kept readable."""

from __future__ import annotations

import logging
import time
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


class RepeatFilter(logging.Filter):
    """Lets one message through once per `seconds`: librdkafka reports every failed reconnect
    (several a second per client while a broker is down), and once says enough."""

    def __init__(self, seconds: float = 30.0) -> None:
        super().__init__()
        self.seconds = seconds
        self._last: dict[tuple[int, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.levelno, record.getMessage())
        now = time.monotonic()
        if now - self._last.get(key, -self.seconds) < self.seconds:
            return False
        if len(self._last) > 1000:  # messages carry ids and timings: keep the memory bounded
            self._last.clear()
        self._last[key] = now
        return True


def quiet_logger(name: str) -> logging.Logger:
    """The logger `name`, repeating no message more than twice a minute."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RepeatFilter) for f in logger.filters):
        logger.addFilter(RepeatFilter())
    return logger
