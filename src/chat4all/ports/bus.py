"""Event bus: topics of keyed events, consumer groups with committed offsets.

Delivery is at-least-once. Events of one key go to one partition and are consumed in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from chat4all.domain.events import Event


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    event: Event


class Consumer(Protocol):
    async def fetch(self, max_records: int, timeout: float) -> list[Record]:
        """The next records after this consumer's position (its group's committed offsets when
        it starts), waiting up to `timeout` seconds for one. Order holds within a partition."""
        ...

    async def commit(self, records: Sequence[Record]) -> None:
        """Durably mark `records` (and everything before them in their partitions) as done."""
        ...

    async def lag(self) -> dict[str, int]:
        """Per topic, the events after the group's committed offsets, in the partitions this
        member reads (on Kafka, those assigned to it; none before its first fetch)."""
        ...

    async def close(self) -> None: ...


class EventBus(Protocol):
    async def publish(self, events: Sequence[Event]) -> None:
        """Append each event to topic `event.type`, partitioned by `event.key`. Durable when it
        returns; the order of events with one key is kept."""
        ...

    def consumer(self, group: str, topics: Sequence[str]) -> Consumer:
        """A member of consumer group `group` reading `topics`."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
