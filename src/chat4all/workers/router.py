"""Router: one delivery job per recipient and channel of every sent message."""

from __future__ import annotations

from collections.abc import Sequence

from chat4all.domain.events import Event, Topic, status_changed
from chat4all.domain.messages import INTERNAL_CHANNEL, Message, StatusChange
from chat4all.domain.status import DeliveryStatus
from chat4all.ports.bus import Record
from chat4all.services.frames import message_view
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
            out.extend(self.route(Message.from_document(record.event.data)))
        if out:
            await self._bus.publish(out)

    def route(self, message: Message) -> list[Event]:
        view = message_view(message, full=False)
        key = str(message.conversation_id)
        jobs: list[Event] = []
        for recipient in message.to_user_ids:
            for channel in message.target_channels:
                if channel in SUPPORTED_CHANNELS:
                    jobs.append(_job(key, str(recipient), channel, view, message, echo=False))
                else:
                    change = StatusChange(
                        message.message_id,
                        message.conversation_id,
                        recipient,
                        channel,
                        DeliveryStatus.FAILED,
                        message.created_at,
                        {"reason": f"no connector for channel '{channel}' is installed"},
                    )
                    jobs.append(status_changed(change))
        # The sender's other devices see their own message too.
        jobs.append(
            _job(key, str(message.from_user_id), INTERNAL_CHANNEL, view, message, echo=True)
        )
        return jobs


def _job(
    key: str, recipient: str, channel: str, view: dict[str, object], message: Message, echo: bool
) -> Event:
    return Event(
        type=Topic.MESSAGE_DELIVERY,
        key=key,
        data={"recipient_id": recipient, "channel": channel, "echo": echo, "message": view},
        time=message.created_at,
        id=f"delivery:{message.message_id}:{recipient}:{channel}",
    )
