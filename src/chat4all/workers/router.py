"""Router: one delivery job per recipient and channel of every sent message."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from chat4all.domain.events import Event, Topic, status_changed
from chat4all.domain.messages import INTERNAL_CHANNEL, StatusChange
from chat4all.domain.status import DeliveryStatus
from chat4all.observability import tracing
from chat4all.ports.bus import Record
from chat4all.services.frames import document_view
from chat4all.workers.base import ConsumerWorker

# Channels with a connector. External channels arrive with the connectors; until then a message
# aimed at one fails there explicitly instead of vanishing.
SUPPORTED_CHANNELS = frozenset({INTERNAL_CHANNEL})


class Router(ConsumerWorker):
    group = "router"
    topics = (Topic.MESSAGE_SENT,)

    async def handle(self, records: Sequence[Record]) -> None:
        out: list[Event] = []
        for record in records:
            # The jobs made here carry this span: delivery continues the send's trace.
            with tracing.consuming("router", record.event):
                out.extend(self.route(record.event.data))
        if out:
            await self._bus.publish(out)

    def route(self, doc: dict[str, Any]) -> list[Event]:
        """Jobs for one `message.sent` document; works on the document as it came off the bus."""
        view = document_view(doc)
        key = doc["conversation_id"]
        created_at = datetime.fromisoformat(doc["created_at"])
        jobs: list[Event] = []
        for recipient in doc["to_user_ids"]:
            for channel in doc["target_channels"]:
                if channel in SUPPORTED_CHANNELS:
                    jobs.append(_job(key, recipient, channel, view, created_at, echo=False))
                else:
                    change = StatusChange(
                        UUID(doc["message_id"]),
                        UUID(key),
                        UUID(recipient),
                        channel,
                        DeliveryStatus.FAILED,
                        created_at,
                        {"reason": f"no connector for channel '{channel}' is installed"},
                    )
                    jobs.append(status_changed(change))
        # The sender's other devices see their own message too.
        jobs.append(_job(key, doc["from_user_id"], INTERNAL_CHANNEL, view, created_at, echo=True))
        return jobs


def _job(
    key: str,
    recipient: str,
    channel: str,
    view: dict[str, Any],
    created_at: datetime,
    echo: bool,
) -> Event:
    return Event(
        type=Topic.MESSAGE_DELIVERY,
        key=key,
        data={"recipient_id": recipient, "channel": channel, "echo": echo, "message": view},
        time=created_at,
        id=f"delivery:{view['message_id']}:{recipient}:{channel}",
    )
