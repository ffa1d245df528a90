"""Inbound: webhook contents (`channel.inbound`) become messages and receipts.

Platforms do not promise order (Meta says so; retries reorder Telegram's updates too), so the
worker keeps collecting until no webhook has come for `reorder_window` seconds (or a batch is
full), then applies each contact's messages in the platform's own order (Telegram's update_id,
Meta's timestamp). A straggler later than that is applied when it comes.
"""

from __future__ import annotations

from collections.abc import Sequence

from chat4all.domain.events import Topic
from chat4all.ports.bus import Consumer, EventBus, Record
from chat4all.ports.clock import Clock
from chat4all.services.channels import ChannelService
from chat4all.workers.base import BATCH_SIZE, ConsumerWorker


class InboundWorker(ConsumerWorker):
    group = "inbound"
    topics = (Topic.CHANNEL_INBOUND,)

    def __init__(
        self, bus: EventBus, clock: Clock, channels: ChannelService, reorder_window: float
    ) -> None:
        super().__init__(bus, clock)
        self._channels = channels
        self._window = reorder_window

    async def _next_batch(self, consumer: Consumer) -> list[Record]:
        records = await consumer.fetch(BATCH_SIZE, timeout=1.0)
        # Keep collecting until the webhooks pause for a window (or a batch is full).
        while records and self._window > 0 and len(records) < BATCH_SIZE:
            more = await consumer.fetch(BATCH_SIZE - len(records), timeout=self._window)
            if not more:
                break
            records += more
        return records

    async def handle(self, records: Sequence[Record]) -> None:
        messages = [r for r in records if r.event.data["kind"] == "message"]
        statuses = [r for r in records if r.event.data["kind"] != "message"]
        # Stable: equal platform orders keep their arrival order.
        messages.sort(key=lambda r: (r.event.key, int(r.event.data.get("order_key") or 0)))
        await self._channels.apply_inbound([r.event for r in messages + statuses])
