"""Message store: the seed's `messages` and `conversation_history` documents, plus the outbox
through which every event leaves a send's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from chat4all.domain.events import Event
from chat4all.domain.messages import ConversationSummary, Message, NewMessage, StatusChange


@dataclass(frozen=True)
class Appended:
    message: Message
    created: bool  # False: the message_id was already stored with the same body


@dataclass(frozen=True)
class OutboxEntry:
    entry_id: int
    event: Event


class MessageStore(Protocol):
    """Every method is atomic. An unreachable store raises `Unavailable`."""

    async def append(self, new: NewMessage, now: datetime, ttl: timedelta | None) -> Appended:
        """In one transaction: dedupe on `message_id` (same fingerprint: the stored message,
        `created=False`; another fingerprint: `IdempotencyConflict`), take the conversation's
        next gap-free sequence number, store the message, update the conversation summary,
        and put a `message.sent` event in the outbox."""
        ...

    async def get(self, message_id: UUID) -> Message | None: ...

    async def history(
        self,
        conversation_id: UUID,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int = 50,
        newest_first: bool = False,
    ) -> list[Message]:
        """Messages with after_seq < sequence_number < before_seq, in sequence order (or reverse
        with `newest_first`), at most `limit`."""
        ...

    async def apply_status(
        self, changes: Sequence[StatusChange]
    ) -> list[tuple[Message, StatusChange]]:
        """Apply each change monotonically; return (message after, change) for those that moved
        a status forward. Applying the same change twice changes nothing the second time."""
        ...

    async def apply_read(
        self,
        conversation_id: UUID,
        reader_id: UUID,
        after_seq: int,
        up_to_seq: int,
        at: datetime,
        channel: str,
    ) -> list[tuple[Message, StatusChange]]:
        """Mark `read` for `reader_id` every message with after_seq < seq <= up_to_seq that the
        reader received; return the changes that moved a status forward."""
        ...

    async def summaries(self, conversation_ids: Sequence[UUID]) -> dict[UUID, ConversationSummary]:
        """Where each conversation's log stands; conversations without messages are absent."""
        ...

    async def count_after(self, conversation_id: UUID, after_seq: int, not_from: UUID) -> int:
        """How many messages after `after_seq` were sent by someone other than `not_from`."""
        ...

    async def delete_expired(self, now: datetime) -> int:
        """Delete the messages whose `ttl_expire_at` has passed; how many went. Their sequence
        numbers are never given again."""
        ...

    # outbox
    async def enqueue(self, events: Sequence[Event]) -> None:
        """Put events in the outbox, durably."""
        ...

    async def outbox_batch(self, limit: int) -> list[OutboxEntry]:
        """The oldest outbox entries, in the order they were enqueued."""
        ...

    async def outbox_done(self, entry_ids: Sequence[int]) -> None: ...

    async def wait_for_outbox(self, timeout: float) -> None:
        """Return when entries may have been enqueued since the last call, or after `timeout`."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
