"""The channel directory: accounts and their credentials, people's identities on channels,
what went out on them (for receipts), and dead letters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from chat4all.domain.conversations import ConversationType
from chat4all.ports.connectors import ChannelAccount


@dataclass(frozen=True)
class LinkedChannel:
    """A user's identity on a channel (`user_channels`)."""

    user_id: UUID
    channel_type: str
    channel_user_id: str
    account_id: str | None = None  # set for contacts: the account they wrote to
    priority: int | None = None  # the user's fallback order; None: not part of it
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class Contact:
    """An external person who wrote to an account, and their conversation with its inbox."""

    user_id: UUID
    conversation_id: UUID
    created: bool


@dataclass(frozen=True)
class NewContact:
    channel_type: str
    account_id: str
    channel_user_id: str
    display_name: str | None
    inbox_user_ids: tuple[UUID, ...]  # the account's inbox: who the conversation is with
    conversation_type: ConversationType
    now: datetime


@dataclass(frozen=True)
class SentOnChannel:
    """One message that went out to one recipient on a channel, under the platform's id."""

    channel_type: str
    account_id: str
    platform_message_id: str
    message_id: UUID
    conversation_id: UUID
    recipient_id: UUID
    contact_id: str
    sent_at: datetime


@dataclass(frozen=True)
class DeadLetter:
    id: UUID
    channel_type: str
    account_id: str | None
    message_id: UUID
    recipient_id: UUID
    reason: str
    job: dict[str, Any]
    created_at: datetime
    replayed_at: datetime | None = None


class ChannelDirectory(Protocol):
    """Every method is atomic; violated uniqueness raises AlreadyExists."""

    async def add_account(self, account: ChannelAccount) -> None: ...

    async def get_account(self, channel_type: str, account_id: str) -> ChannelAccount | None: ...

    async def list_accounts(self, channel_type: str | None = None) -> list[ChannelAccount]: ...

    async def link(self, link: LinkedChannel, now: datetime) -> LinkedChannel:
        """Create or replace the user's identity on `link.channel_type`."""
        ...

    async def links_of(self, user_ids: Sequence[UUID]) -> dict[UUID, list[LinkedChannel]]:
        """Each user's identities (users without any are absent)."""
        ...

    async def contact(self, new: NewContact) -> Contact:
        """The contact with that identity on that account; created with a conversation with the
        account's inbox, in one transaction, when it is new."""
        ...

    async def record_sent(self, sent: SentOnChannel) -> None:
        """Idempotent: the same delivery recorded again changes nothing."""
        ...

    async def sent_for(
        self, message_id: UUID, recipient_id: UUID, channel_type: str
    ) -> SentOnChannel | None: ...

    async def sent_by_platform_ids(
        self, channel_type: str, account_id: str, platform_message_ids: Sequence[str]
    ) -> list[SentOnChannel]: ...

    async def sent_up_to(
        self, channel_type: str, account_id: str, contact_id: str, until: datetime
    ) -> list[SentOnChannel]:
        """Everything sent to the contact at or before `until` (a watermark's reach)."""
        ...

    async def add_dead_letter(self, letter: DeadLetter) -> None: ...

    async def dead_letters(self, limit: int, include_replayed: bool = False) -> list[DeadLetter]:
        """Newest first."""
        ...

    async def mark_replayed(self, letter_id: UUID, now: datetime) -> DeadLetter | None:
        """The letter, marked replayed; None when it does not exist."""
        ...
