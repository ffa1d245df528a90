"""Webhook fan-out: turns bus events into queued deliveries, one per subscribed webhook.

It only writes rows (no HTTP), so it keeps pace with the bus whatever the endpoints do; the
dispatcher sends them. Who receives an event (docs/webhooks.md):
- `message.sent`, `conversation.created`, `file.uploaded`: every member of the conversation;
- `message.delivered`, `message.failed`, `message.read` of one message: its sender and the
  recipient the status is about;
- `message.read` as a watermark (everything up to a sequence number): the reader and the
  senders of the messages it covers;
always only users who are members of the conversation when the event is handled.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import orjson

from chat4all.domain.events import Event
from chat4all.domain.webhooks import Delivery, DeliveryState, WebhookEvent, delivery_id
from chat4all.ports.bus import EventBus, Record
from chat4all.ports.clock import Clock
from chat4all.ports.messages import MessageStore
from chat4all.ports.metadata import MetadataStore
from chat4all.ports.webhooks import WebhookStore
from chat4all.services.frames import document_view
from chat4all.workers.base import ConsumerWorker

log = logging.getLogger(__name__)

_HISTORY_PAGE = 500
_STATUSES = (WebhookEvent.MESSAGE_DELIVERED, WebhookEvent.MESSAGE_READ, WebhookEvent.MESSAGE_FAILED)


class WebhookFanout(ConsumerWorker):
    group = "webhooks"
    topics = tuple(e.value for e in WebhookEvent)

    def __init__(
        self,
        bus: EventBus,
        clock: Clock,
        webhooks: WebhookStore,
        metadata: MetadataStore,
        store: MessageStore,
    ) -> None:
        super().__init__(bus, clock)
        self._webhooks = webhooks
        self._metadata = metadata
        self._store = store

    async def handle(self, records: Sequence[Record]) -> None:
        deliveries: list[Delivery] = []
        for record in records:
            deliveries += await self.deliveries_for(record.event)
        await self._webhooks.enqueue_deliveries(deliveries)

    async def deliveries_for(self, event: Event) -> list[Delivery]:
        audience = await self._audience(event)
        if not audience:
            return []
        body = orjson.dumps(
            {
                "type": event.type,
                "timestamp": event.time.isoformat(),
                "event_id": event.id,
                "data": _public_data(event),
            }
        ).decode()
        now = self._clock.now()
        return [
            Delivery(
                delivery_id(webhook.webhook_id, event.id),
                webhook.webhook_id,
                event.id,
                event.type,
                body,
                DeliveryState.PENDING,
                created_at=now,
                next_attempt_at=now,
            )
            for webhook in await self._webhooks.subscribers(sorted(audience), event.type)
        ]

    async def _audience(self, event: Event) -> set[UUID]:
        conversation_id = _uuid(event.data.get("conversation_id", event.key))
        if conversation_id is None:
            log.warning("webhooks: %s event %s names no conversation", event.type, event.id)
            return set()
        members = {m.user_id for m in await self._metadata.list_members(conversation_id)}
        if event.type not in _STATUSES:
            return members
        if "up_to_sequence_number" in event.data:
            return members & await self._watermark_audience(conversation_id, event.data)
        interested = {_uuid(event.data.get("recipient_id"))}
        message_id = _uuid(event.data.get("message_id"))
        message = await self._store.get(message_id) if message_id else None
        if message is not None:
            interested.add(message.from_user_id)
        return members & {u for u in interested if u is not None}

    async def _watermark_audience(self, conversation_id: UUID, data: dict[str, Any]) -> set[UUID]:
        reader = _uuid(data.get("reader_id"))
        audience = {reader} if reader else set()
        after, up_to = int(data["after_sequence_number"]), int(data["up_to_sequence_number"])
        while after < up_to:
            page = await self._store.history(
                conversation_id, after_seq=after, before_seq=up_to + 1, limit=_HISTORY_PAGE
            )
            if not page:
                break
            audience.update(m.from_user_id for m in page)
            after = page[-1].sequence_number
        return audience


def _public_data(event: Event) -> dict[str, Any]:
    """What a webhook shows of the event: a sent message as the API shows it (not the
    store's delivery bookkeeping); other events' data as it is."""
    if event.type == WebhookEvent.MESSAGE_SENT:
        return document_view(event.data)
    return event.data


def _uuid(value: Any) -> UUID | None:
    try:
        return UUID(str(value))
    except ValueError:
        return None
