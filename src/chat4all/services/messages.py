"""Sending, history, receipts. A send is one store transaction (dedupe, sequence number, store,
outbox); everything after it happens on the bus."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Protocol
from uuid import UUID

from chat4all.domain.errors import InvalidInput, NotFound
from chat4all.domain.events import read_up_to, status_changed
from chat4all.domain.messages import (
    INTERNAL_CHANNEL,
    Message,
    NewMessage,
    Payload,
    StatusChange,
)
from chat4all.domain.ratelimit import Rule
from chat4all.domain.status import DeliveryStatus
from chat4all.ports.clock import Clock
from chat4all.ports.messages import Appended, MessageStore
from chat4all.ports.ratelimit import RateLimiter
from chat4all.services.conversations import ConversationService
from chat4all.services.limits import take_or_refuse

MAX_PAGE = 100


@dataclass(frozen=True)
class MessagePolicy:
    max_text_length: int
    ttl: timedelta | None  # None: kept forever
    send_rate: Rule | None = None  # per sender; None: unlimited


class FileReferences(Protocol):
    async def sendable(self, sender: UUID, conversation_id: UUID, file_id: UUID) -> dict[str, Any]:
        """The `file_reference` of a message sending the file; `InvalidInput` if it cannot."""
        ...


class MessageService:
    def __init__(
        self,
        store: MessageStore,
        conversations: ConversationService,
        clock: Clock,
        policy: MessagePolicy,
        limiter: RateLimiter | None = None,
        files: FileReferences | None = None,
        on_accepted: Callable[[Message], None] | None = None,
    ) -> None:
        """`on_accepted`: told of each message stored for the first time (metrics)."""
        self._store = store
        self._on_accepted = on_accepted
        self._conversations = conversations
        self._clock = clock
        self._policy = policy
        self._limiter = limiter
        self._files = files

    async def send(
        self,
        sender: UUID,
        conversation_id: UUID,
        message_id: UUID,
        payload: Payload,
        target_channels: tuple[str, ...] = (INTERNAL_CHANNEL,),
        reply_to_message_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Appended:
        await self._check_send_rate(sender)
        members = await self._conversations.member_ids(conversation_id, sender)
        payload.check(self._policy.max_text_length)
        if payload.type != "text":
            payload = await self._with_file(sender, conversation_id, payload)
        if reply_to_message_id is not None:
            original = await self._store.get(reply_to_message_id)
            if original is None or original.conversation_id != conversation_id:
                raise InvalidInput(
                    f"reply_to_message_id {reply_to_message_id} is not a message of this conversation"
                )
        new = NewMessage(
            message_id=message_id,
            conversation_id=conversation_id,
            from_user_id=sender,
            to_user_ids=tuple(m for m in members if m != sender),
            payload=payload,
            # Empty: the router picks (internal, plus the recipient's linked channels).
            target_channels=target_channels,
            reply_to_message_id=reply_to_message_id,
            metadata=metadata or {},
        )
        appended = await self._store.append(new, self._clock.now(), self._policy.ttl)
        if appended.created and self._on_accepted is not None:
            self._on_accepted(appended.message)
        return appended

    async def _with_file(self, sender: UUID, conversation_id: UUID, payload: Payload) -> Payload:
        """The payload with the file's reference (name, type, size, checksum) filled in."""
        if self._files is None:
            raise InvalidInput("this server does not take file messages")
        assert payload.file_reference is not None  # payload.check made sure
        try:
            file_id = UUID(str(payload.file_reference["file_id"]))
        except ValueError as e:
            raise InvalidInput("`payload.file_id` is not a UUID") from e
        reference = await self._files.sendable(sender, conversation_id, file_id)
        return replace(payload, file_reference=reference)

    async def _check_send_rate(self, sender: UUID) -> None:
        await take_or_refuse(
            self._limiter, f"send:{sender}", self._policy.send_rate, self._clock.now(), "messages"
        )

    async def history(
        self,
        reader: UUID,
        conversation_id: UUID,
        after_seq: int | None,
        before_seq: int | None,
        limit: int,
    ) -> list[Message]:
        """A page of history. With only `before_seq` (or nothing) the page is the newest one
        before it, still returned in sequence order."""
        await self._conversations.member_ids(conversation_id, reader)
        limit = max(1, min(limit, MAX_PAGE))
        if after_seq is not None:
            return await self._store.history(
                conversation_id, after_seq=after_seq, before_seq=before_seq, limit=limit
            )
        page = await self._store.history(
            conversation_id, before_seq=before_seq, limit=limit, newest_first=True
        )
        return page[::-1]

    async def get(self, reader: UUID, message_id: UUID) -> Message:
        message = await self._store.get(message_id)
        if message is None:
            raise NotFound(f"message {message_id} does not exist")
        try:
            await self._conversations.member_ids(message.conversation_id, reader)
        except NotFound as e:
            raise NotFound(f"message {message_id} does not exist") from e
        return message

    async def acknowledge(
        self,
        recipient: UUID,
        message_id: UUID,
        conversation_id: UUID,
        sequence_number: int,
        from_user_id: UUID,
    ) -> bool:
        """The recipient's client has the message: record `delivered` (through the bus).
        False for the sender's own message."""
        if recipient == from_user_id:
            return False
        change = StatusChange(
            message_id,
            conversation_id,
            recipient,
            INTERNAL_CHANNEL,
            DeliveryStatus.DELIVERED,
            self._clock.now(),
            {"sequence_number": sequence_number},
        )
        await self._store.enqueue([status_changed(change)])
        return True

    async def mark_read(
        self, reader: UUID, conversation_id: UUID, up_to_sequence_number: int
    ) -> int:
        """Move the reader's read watermark; every earlier message becomes `read` for them.
        Returns the watermark after the call."""
        await self._conversations.member_ids(conversation_id, reader)
        if up_to_sequence_number < 0:
            raise InvalidInput("up_to_sequence_number must not be negative")
        summary = (await self._store.summaries([conversation_id])).get(conversation_id)
        last = summary.last_sequence_number if summary else 0
        if up_to_sequence_number > last:
            raise InvalidInput(
                f"up_to_sequence_number {up_to_sequence_number} is past the conversation's "
                f"last message ({last})"
            )
        member = await self._conversations.member(conversation_id, reader)
        if up_to_sequence_number <= member.last_read_seq:
            return member.last_read_seq
        # The event first: if we stop between the two writes, the status worker still
        # applies the read and moves the watermark itself.
        await self._store.enqueue(
            [
                read_up_to(
                    conversation_id,
                    reader,
                    member.last_read_seq,
                    up_to_sequence_number,
                    self._clock.now(),
                )
            ]
        )
        await self._conversations.advance_read(conversation_id, reader, up_to_sequence_number)
        return up_to_sequence_number
