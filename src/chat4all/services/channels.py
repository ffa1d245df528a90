"""External channels: accounts, people's identities on channels, webhooks in, dead letters.

A webhook is verified and parsed here, then put in the outbox as `channel.inbound` events (the
durable write the platform's 200 waits for); the inbound worker turns them into messages and
receipts (`apply_inbound`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from chat4all.domain.conversations import ConversationType
from chat4all.domain.errors import InvalidInput, NotFound
from chat4all.domain.events import Event, Topic, status_changed
from chat4all.domain.messages import (
    INTERNAL_CHANNEL,
    NewMessage,
    Payload,
    PayloadType,
    StatusChange,
)
from chat4all.domain.status import DeliveryStatus
from chat4all.ports.channels import ChannelDirectory, DeadLetter, LinkedChannel, NewContact
from chat4all.ports.clock import Clock
from chat4all.ports.connectors import (
    ChannelAccount,
    Connector,
    InboundMessage,
    StatusUpdate,
    WebhookMalformed,
)
from chat4all.ports.messages import MessageStore

log = logging.getLogger(__name__)

# Inbound message ids are derived from (channel, account, platform id): a webhook delivered
# twice makes the same message id, and the message store's dedupe keeps one message.
INBOUND_NAMESPACE = uuid5(NAMESPACE_URL, "https://chat4all/channels/inbound")


@dataclass(frozen=True)
class WebhookAnswer:
    status: int
    detail: str


def inbound_message_id(channel_type: str, account_id: str, platform_message_id: str) -> UUID:
    return uuid5(INBOUND_NAMESPACE, f"{channel_type}\x00{account_id}\x00{platform_message_id}")


class ChannelService:
    def __init__(
        self,
        directory: ChannelDirectory,
        connectors: Mapping[str, Connector],
        store: MessageStore,
        clock: Clock,
        max_text_length: int,
    ) -> None:
        self._directory = directory
        self._connectors = connectors
        self._store = store
        self._clock = clock
        self._max_text_length = max_text_length

    @property
    def channel_types(self) -> list[str]:
        return sorted(self._connectors)

    def connector(self, channel_type: str) -> Connector:
        connector = self._connectors.get(channel_type)
        if connector is None:
            installed = ", ".join(sorted(self._connectors)) or "none"
            raise NotFound(f"no connector for channel {channel_type!r} (installed: {installed})")
        return connector

    # accounts

    async def add_account(
        self, channel_type: str, account_id: str, config: Mapping[str, Any]
    ) -> ChannelAccount:
        self.connector(channel_type)
        if (
            not account_id
            or len(account_id) > 100
            or not account_id.replace("-", "").replace("_", "").isalnum()
        ):
            raise InvalidInput("account_id must be 1-100 letters, digits, '-' or '_'")
        for user_id in config.get("inbox_user_ids") or ():
            _uuid(user_id, "inbox_user_ids")
        account = ChannelAccount(account_id, channel_type, dict(config))
        await self._directory.add_account(account)
        return account

    async def account(self, channel_type: str, account_id: str) -> ChannelAccount:
        account = await self._directory.get_account(channel_type, account_id)
        if account is None or not account.enabled:
            raise NotFound(f"no {channel_type} account {account_id!r}")
        return account

    async def accounts(self) -> list[ChannelAccount]:
        return await self._directory.list_accounts()

    # identities

    async def link(
        self, user_id: UUID, channel_type: str, channel_user_id: str, priority: int | None
    ) -> LinkedChannel:
        self.connector(channel_type)
        if not channel_user_id.strip() or len(channel_user_id) > 255:
            raise InvalidInput("channel_user_id must be 1-255 characters")
        return await self._directory.link(
            LinkedChannel(user_id, channel_type, channel_user_id.strip(), None, priority),
            self._clock.now(),
        )

    async def links(self, user_id: UUID) -> list[LinkedChannel]:
        return (await self._directory.links_of([user_id])).get(user_id, [])

    # webhooks

    async def handshake(self, channel_type: str, account_id: str, query: Mapping[str, str]) -> str:
        connector = self.connector(channel_type)
        return connector.verify_handshake(await self.account(channel_type, account_id), query)

    async def receive_webhook(
        self, channel_type: str, account_id: str, body: bytes, headers: Mapping[str, str]
    ) -> WebhookAnswer:
        """Verify (WebhookRejected escapes to the caller), parse, store durably. A malformed
        body is logged and answered as the platform expects; nothing of it is stored."""
        connector = self.connector(channel_type)
        account = await self.account(channel_type, account_id)
        connector.verify_webhook(account, body, headers)
        try:
            batch = connector.parse_webhook(account, body)
        except WebhookMalformed as e:
            log.warning("%s/%s: malformed webhook dropped: %s", channel_type, account_id, e)
            return WebhookAnswer(connector.capabilities.malformed_webhook_status, str(e))
        events = [
            _inbound_event(
                channel_type,
                account_id,
                "message",
                m.sender_id,
                _message_dict(m),
                self._clock.now(),
            )
            for m in batch.messages
        ] + [
            _inbound_event(
                channel_type, account_id, "status", s.contact_id, _status_dict(s), self._clock.now()
            )
            for s in batch.statuses
        ]
        if events:
            await self._store.enqueue(events)
        return WebhookAnswer(200, f"{len(batch.messages)} messages, {len(batch.statuses)} receipts")

    # what the inbound worker does with them

    async def apply_inbound(self, events: Sequence[Event]) -> None:
        """Messages and receipts from webhooks, in the order given (the worker sorts them)."""
        accounts: dict[tuple[str, str], ChannelAccount | None] = {}
        for event in events:
            data = event.data
            key = (data["channel_type"], data["account_id"])
            if key not in accounts:
                accounts[key] = await self._directory.get_account(*key)
            account = accounts[key]
            if account is None:
                log.warning("inbound for unknown account %s/%s dropped", *key)
            elif data["kind"] == "message":
                await self._receive_message(account, data)
            else:
                await self._receive_status(account, data)

    async def _receive_message(self, account: ChannelAccount, data: dict[str, Any]) -> None:
        inbox = tuple(_uuid(u, "inbox_user_ids") for u in account.setting("inbox_user_ids") or ())
        if not inbox:
            log.warning(
                "%s/%s has no inbox_user_ids: message %s dropped",
                account.channel_type,
                account.account_id,
                data["platform_message_id"],
            )
            return
        contact = await self._directory.contact(
            NewContact(
                account.channel_type,
                account.account_id,
                data["sender_id"],
                data.get("sender_name"),
                inbox,
                ConversationType.PRIVATE if len(inbox) == 1 else ConversationType.GROUP,
                self._clock.now(),
            )
        )
        if contact.created:
            members = [contact.user_id, *inbox]
            await self._store.enqueue(
                [_conversation_created(contact.conversation_id, members, self._clock.now())]
            )
        attachments = data.get("attachments") or []
        text = (
            data.get("text")
            or " ".join(f"[{a.get('type', 'file')}]" for a in attachments)
            or "[empty]"
        )
        new = NewMessage(
            message_id=inbound_message_id(
                account.channel_type, account.account_id, data["platform_message_id"]
            ),
            conversation_id=contact.conversation_id,
            from_user_id=contact.user_id,
            to_user_ids=inbox,
            payload=Payload(
                PayloadType.TEXT,
                text[: self._max_text_length],
                metadata={"attachments": attachments} if attachments else {},
            ),
            target_channels=(INTERNAL_CHANNEL,),
            metadata={
                "channel": account.channel_type,
                "account_id": account.account_id,
                "platform_message_id": data["platform_message_id"],
                "channel_timestamp": data.get("timestamp"),
            },
        )
        await self._store.append(new, self._clock.now(), None)

    async def _receive_status(self, account: ChannelAccount, data: dict[str, Any]) -> None:
        at = datetime.fromisoformat(data["at"])
        if data["watermark"]:
            # "Everything sent before the watermark": expanded to each of those messages.
            sent = await self._directory.sent_up_to(
                account.channel_type, account.account_id, data["contact_id"], at
            )
        else:
            sent = await self._directory.sent_by_platform_ids(
                account.channel_type, account.account_id, data["platform_message_ids"]
            )
        status = DeliveryStatus(data["status"])
        details = {"error": data["error"]} if data.get("error") else {}
        changes = [
            status_changed(
                StatusChange(
                    s.message_id,
                    s.conversation_id,
                    s.recipient_id,
                    account.channel_type,
                    status,
                    at,
                    {**details, "platform_message_id": s.platform_message_id},
                )
            )
            for s in sent
        ]
        if changes:
            await self._store.enqueue(changes)

    # dead letters

    async def dead_letters(self, limit: int, include_replayed: bool) -> list[DeadLetter]:
        return await self._directory.dead_letters(max(1, min(limit, 100)), include_replayed)

    async def replay(self, letter_id: UUID) -> DeadLetter:
        """Deliver a dead letter's job again (a fresh set of tries)."""
        letter = await self._directory.mark_replayed(letter_id, self._clock.now())
        if letter is None:
            raise NotFound(f"dead letter {letter_id} does not exist")
        job = dict(letter.job)
        await self._store.enqueue(
            [
                Event(
                    type=Topic.MESSAGE_DELIVERY,
                    key=str(job["message"]["conversation_id"]),
                    data=job | {"replay_of": str(letter_id)},
                    time=self._clock.now(),
                )
            ]
        )
        return letter


def _uuid(value: Any, name: str) -> UUID:
    try:
        return UUID(str(value))
    except ValueError as e:
        raise InvalidInput(f"`{name}` holds {value!r}, which is not a user id") from e


def _inbound_event(
    channel_type: str, account_id: str, kind: str, contact: str, data: dict[str, Any], now: datetime
) -> Event:
    return Event(
        type=Topic.CHANNEL_INBOUND,
        # One contact's messages and receipts stay in one partition, in order.
        key=f"{channel_type}:{account_id}:{contact}",
        data={"channel_type": channel_type, "account_id": account_id, "kind": kind, **data},
        time=now,
    )


def _message_dict(m: InboundMessage) -> dict[str, Any]:
    return {
        "platform_message_id": m.platform_message_id,
        "sender_id": m.sender_id,
        "sender_name": m.sender_name,
        "text": m.text,
        "timestamp": m.timestamp.isoformat() if m.timestamp else None,
        "order_key": m.order_key,
        "attachments": list(m.attachments),
    }


def _status_dict(s: StatusUpdate) -> dict[str, Any]:
    return {
        "contact_id": s.contact_id,
        "status": s.status.value,
        "at": s.at.isoformat(),
        "platform_message_ids": list(s.platform_message_ids),
        "watermark": s.watermark,
        "error": s.error,
    }


def _conversation_created(conversation_id: UUID, members: list[UUID], now: datetime) -> Event:
    """As ConversationService announces one: the contact created it by writing in."""
    return Event(
        type=Topic.CONVERSATION_CREATED,
        key=str(conversation_id),
        data={
            "conversation_id": str(conversation_id),
            "type": "private" if len(members) == 2 else "group",
            "created_by": str(members[0]),
            "members": [str(u) for u in members],
            "created_at": now.isoformat(),
        },
        time=now,
    )
