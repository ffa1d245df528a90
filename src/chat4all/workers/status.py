"""Status: applies receipts to messages monotonically and tells the senders."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from chat4all.domain.events import Topic, status_change_from_dict
from chat4all.domain.messages import INTERNAL_CHANNEL, Message, StatusChange
from chat4all.domain.status import DeliveryStatus
from chat4all.observability import metrics, tracing
from chat4all.ports.bus import EventBus, Record
from chat4all.ports.clock import Clock
from chat4all.ports.messages import MessageStore
from chat4all.ports.metadata import MetadataStore, WatermarkMove
from chat4all.ports.realtime import RealtimeHub
from chat4all.services.frames import message_status
from chat4all.workers.base import ConsumerWorker

log = logging.getLogger(__name__)


class StatusWorker(ConsumerWorker):
    group = "status"
    topics = (Topic.MESSAGE_DELIVERED, Topic.MESSAGE_READ, Topic.MESSAGE_FAILED)

    def __init__(
        self,
        bus: EventBus,
        clock: Clock,
        store: MessageStore,
        metadata: MetadataStore,
        hub: RealtimeHub,
    ) -> None:
        super().__init__(bus, clock)
        self._store = store
        self._metadata = metadata
        self._hub = hub

    async def handle(self, records: Sequence[Record]) -> None:
        with tracing.batch_span("status", [r.event for r in records]):
            await self._handle(records)

    async def _handle(self, records: Sequence[Record]) -> None:
        changes: list[StatusChange] = []
        applied: list[tuple[Message, StatusChange]] = []
        read_marks: dict[tuple[UUID, UUID], int] = {}
        for record in records:
            data = record.event.data
            if "up_to_sequence_number" in data:  # a read watermark
                cid, reader = UUID(data["conversation_id"]), UUID(data["reader_id"])
                applied += await self._store.apply_read(
                    cid,
                    reader,
                    int(data["after_sequence_number"]),
                    int(data["up_to_sequence_number"]),
                    datetime.fromisoformat(data["at"]),
                    INTERNAL_CHANNEL,
                )
                key = (cid, reader)
                read_marks[key] = max(read_marks.get(key, 0), int(data["up_to_sequence_number"]))
            else:
                changes.append(status_change_from_dict(data))
        if changes:
            applied += await self._store.apply_status(changes)
        await self._advance_watermarks(applied, read_marks)
        _count(applied)
        for message, change in applied:
            await self._hub.publish([message.from_user_id], message_status(change))

    async def _advance_watermarks(
        self, applied: list[tuple[Message, StatusChange]], read_marks: dict[tuple[UUID, UUID], int]
    ) -> None:
        """One metadata transaction per batch: each member's watermarks move to the furthest
        sequence number this batch delivered or read."""
        delivered: dict[tuple[UUID, UUID], int] = {}
        for message, change in applied:
            if change.channel == INTERNAL_CHANNEL and change.status is not DeliveryStatus.FAILED:
                key = (message.conversation_id, change.recipient_id)
                delivered[key] = max(delivered.get(key, 0), message.sequence_number)
        moves = [
            WatermarkMove(cid, user, read_seq=read_marks.get((cid, user)), delivered_seq=seq)
            for (cid, user), seq in delivered.items()
        ]
        moves += [
            WatermarkMove(cid, user, read_seq=seq)
            for (cid, user), seq in read_marks.items()
            if (cid, user) not in delivered
        ]
        await self._metadata.advance_many_watermarks(moves)


def _count(applied: list[tuple[Message, StatusChange]]) -> None:
    """Deliveries and failures, once each: `applied` holds only changes that moved a status."""
    for message, change in applied:
        if change.status is DeliveryStatus.DELIVERED:
            metrics.MESSAGES_DELIVERED.labels(change.channel).inc()
            latency = (change.at - message.created_at).total_seconds()
            metrics.DELIVERY_LATENCY.labels(change.channel).observe(max(latency, 0.0))
        elif change.status is DeliveryStatus.FAILED:
            metrics.MESSAGES_FAILED.labels(change.channel).inc()
            log.info(
                "delivery failed: %s",
                change.details.get("reason", "no reason given"),
                extra={
                    "message_id": change.message_id,
                    "conversation_id": change.conversation_id,
                    "recipient_id": change.recipient_id,
                    "channel": change.channel,
                },
            )
