"""Delivery: pushes each job to the recipient's connected sessions (internal channel).

A push is not a delivery: the message counts as `delivered` when the recipient's client acks it.
Recipients who are offline get it when they connect (catch-up and resume read the store).
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from chat4all.domain.events import Topic
from chat4all.observability import tracing
from chat4all.ports.bus import EventBus, Record
from chat4all.ports.clock import Clock
from chat4all.ports.realtime import RealtimeHub
from chat4all.services.frames import message_new
from chat4all.workers.base import ConsumerWorker


class DeliveryWorker(ConsumerWorker):
    group = "delivery"
    topics = (Topic.MESSAGE_DELIVERY,)

    def __init__(self, bus: EventBus, clock: Clock, hub: RealtimeHub) -> None:
        super().__init__(bus, clock)
        self._hub = hub

    async def handle(self, records: Sequence[Record]) -> None:
        for record in records:
            job = record.event.data
            with tracing.consuming("delivery", record.event, channel=job["channel"]):
                await self._hub.publish([UUID(job["recipient_id"])], message_new(job["message"]))
