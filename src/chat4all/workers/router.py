"""Router: one delivery job per recipient and channel of every sent message.

Which channels: the message's `target_channels` when given; `["all"]` for internal and every
channel the recipient linked; by default internal plus the recipient's linked channels, except
that a recipient with a fallback order gets only its first channel (the delivery worker moves
on to the next after a permanent failure).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from chat4all.domain.events import Event, Topic, status_changed
from chat4all.domain.messages import ALL_CHANNELS, INTERNAL_CHANNEL, StatusChange
from chat4all.domain.status import DeliveryStatus
from chat4all.observability import tracing
from chat4all.ports.bus import EventBus, Record
from chat4all.ports.channels import ChannelDirectory, LinkedChannel
from chat4all.ports.clock import Clock
from chat4all.services.frames import document_view
from chat4all.workers.base import ConsumerWorker


class Router(ConsumerWorker):
    group = "router"
    topics = (Topic.MESSAGE_SENT,)

    def __init__(
        self,
        bus: EventBus,
        clock: Clock,
        directory: ChannelDirectory | None = None,
        connectors: Collection[str] = (),
    ) -> None:
        super().__init__(bus, clock)
        self._directory = directory
        self._connectors = frozenset(connectors)

    async def handle(self, records: Sequence[Record]) -> None:
        docs = [record.event.data for record in records]
        links: dict[UUID, list[LinkedChannel]] = {}
        if self._directory is not None:
            recipients = {UUID(r) for doc in docs for r in doc["to_user_ids"]}
            links = await self._directory.links_of(list(recipients))
        out: list[Event] = []
        for record in records:
            # The jobs made here carry this span: delivery continues the send's trace.
            with tracing.consuming("router", record.event):
                out.extend(self.route(record.event.data, links))
        if out:
            await self._bus.publish(out)

    def route(
        self, doc: dict[str, Any], links: dict[UUID, list[LinkedChannel]] | None = None
    ) -> list[Event]:
        """Jobs for one `message.sent` document; works on the document as it came off the bus."""
        view = document_view(doc)
        key = doc["conversation_id"]
        created_at = datetime.fromisoformat(doc["created_at"])
        jobs: list[Event] = []
        for recipient in doc["to_user_ids"]:
            own = (links or {}).get(UUID(recipient), [])
            for channel, link, fallback in self._plan(doc["target_channels"], own):
                if channel == INTERNAL_CHANNEL:
                    jobs.append(_job(key, recipient, channel, view, created_at, echo=False))
                elif channel not in self._connectors or link is None:
                    reason = (
                        f"no connector for channel '{channel}' is installed"
                        if channel not in self._connectors
                        else f"the recipient has no {channel} identity linked"
                    )
                    change = StatusChange(
                        UUID(doc["message_id"]),
                        UUID(key),
                        UUID(recipient),
                        channel,
                        DeliveryStatus.FAILED,
                        created_at,
                        {"reason": reason},
                    )
                    jobs.append(status_changed(change))
                else:
                    target = {
                        "contact_id": link.channel_user_id,
                        "account_id": link.account_id,
                        "fallback": fallback,
                    }
                    jobs.append(
                        _job(key, recipient, channel, view, created_at, echo=False, target=target)
                    )
        # The sender's other devices see their own message too.
        jobs.append(_job(key, doc["from_user_id"], INTERNAL_CHANNEL, view, created_at, echo=True))
        return jobs

    def _plan(
        self, requested: Sequence[str], links: list[LinkedChannel]
    ) -> list[tuple[str, LinkedChannel | None, list[dict[str, Any]]]]:
        """(channel, the recipient's identity there, the fallback chain after it)."""
        by_channel = {link.channel_type: link for link in links}
        if requested and ALL_CHANNELS not in requested:
            return [(c, by_channel.get(c), []) for c in requested]
        plan: list[tuple[str, LinkedChannel | None, list[dict[str, Any]]]] = [
            (INTERNAL_CHANNEL, None, [])
        ]
        chain = sorted((k for k in links if k.priority is not None), key=lambda k: k.priority or 0)
        if chain and not requested:
            rest = [_target(k) for k in chain[1:]]
            return [*plan, (chain[0].channel_type, chain[0], rest)]
        return plan + [(k.channel_type, k, []) for k in links if k.channel_type != INTERNAL_CHANNEL]


def _target(link: LinkedChannel) -> dict[str, Any]:
    return {
        "channel": link.channel_type,
        "contact_id": link.channel_user_id,
        "account_id": link.account_id,
    }


def _job(
    key: str,
    recipient: str,
    channel: str,
    view: dict[str, Any],
    created_at: datetime,
    echo: bool,
    target: dict[str, Any] | None = None,
) -> Event:
    data: dict[str, Any] = {
        "recipient_id": recipient,
        "channel": channel,
        "echo": echo,
        "message": view,
    }
    if target:
        data |= target
    return Event(
        type=Topic.MESSAGE_DELIVERY,
        key=key,
        data=data,
        time=created_at,
        id=f"delivery:{view['message_id']}:{recipient}:{channel}",
    )
