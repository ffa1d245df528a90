"""The consume-handle-commit loop every worker shares, with retries and a dead letter."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence

from chat4all.domain.errors import Unavailable
from chat4all.domain.events import Event
from chat4all.observability import metrics
from chat4all.ports.bus import Consumer, EventBus, Record
from chat4all.ports.clock import Clock

log = logging.getLogger(__name__)

BATCH_SIZE = 500
BATCH_ATTEMPTS = 3
LAG_INTERVAL_SECONDS = 5.0  # how often the consumer lag gauge is refreshed (a bus query)


class ConsumerWorker(ABC):
    """Fetch a batch, handle it, commit it. A batch that keeps failing is handled one record
    at a time; a record that still fails goes to the group's dead-letter topic."""

    group: str
    topics: Sequence[str]

    def __init__(self, bus: EventBus, clock: Clock) -> None:
        self._bus = bus
        self._clock = clock

    @abstractmethod
    async def handle(self, records: Sequence[Record]) -> None:
        """Apply the records' effects durably and idempotently."""

    async def run(self) -> None:
        consumer = self._bus.consumer(self.group, self.topics)
        next_lag = self._clock.monotonic()
        try:
            while True:
                records = await self._next_batch(consumer)
                if records:
                    await self._handle_with_retries(consumer, records)
                if self._clock.monotonic() >= next_lag:
                    next_lag = self._clock.monotonic() + LAG_INTERVAL_SECONDS
                    await self._report_lag(consumer)
        finally:
            await consumer.close()

    async def _next_batch(self, consumer: Consumer) -> list[Record]:
        return await consumer.fetch(BATCH_SIZE, timeout=1.0)

    async def _report_lag(self, consumer: Consumer) -> None:
        try:
            metrics.set_consumer_lag(self.group, await consumer.lag())
        except Unavailable as e:  # a metric: the bus being away is the fetch's to report
            log.debug("%s: no consumer lag: %s", self.group, e.detail, extra={"group": self.group})

    async def _handle_with_retries(self, consumer: Consumer, records: list[Record]) -> None:
        for attempt in range(1, BATCH_ATTEMPTS + 1):
            try:
                await self.handle(records)
            except Exception:
                log.exception("%s: batch failed (attempt %d)", self.group, attempt)
                await self._clock.sleep(0.1 * 2**attempt)
            else:
                await consumer.commit(records)
                return
        for record in records:
            try:
                await self.handle([record])
            except Exception as e:
                log.exception(
                    "%s: dead-lettering %s",
                    self.group,
                    record.event.id,
                    extra={"event_id": record.event.id, "topic": record.topic},
                )
                await self._bus.publish([_dead_letter(self.group, record, e)])
                metrics.DEADLETTERED.labels(self.group).inc()
            await consumer.commit([record])


def _dead_letter(group: str, record: Record, error: Exception) -> Event:
    return Event(
        type=f"deadletter.{group}",
        key=record.event.key,
        data={
            "event": record.event.to_dict(),
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "error": f"{type(error).__name__}: {error}",
        },
        time=record.event.time,
    )
