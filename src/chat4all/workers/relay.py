"""Outbox relay: the only way an event leaves a store transaction and reaches the bus."""

from __future__ import annotations

from chat4all.observability import tracing
from chat4all.ports.bus import EventBus
from chat4all.ports.messages import MessageStore

BATCH_SIZE = 500


class OutboxRelay:
    def __init__(self, store: MessageStore, bus: EventBus) -> None:
        self._store = store
        self._bus = bus

    async def run(self) -> None:
        while True:
            if not await self.relay_once():
                await self._store.wait_for_outbox(timeout=1.0)

    async def relay_once(self) -> int:
        """Publish one batch, then delete it from the outbox. A stop in between publishes the
        batch again on restart; consumers are idempotent, so that changes nothing."""
        entries = await self._store.outbox_batch(BATCH_SIZE)
        if entries:
            with tracing.producing("outbox relay", [e.event for e in entries]) as events:
                await self._bus.publish(events)
            await self._store.outbox_done([e.entry_id for e in entries])
        return len(entries)
