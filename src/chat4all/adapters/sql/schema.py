"""The metadata store's tables: the seed's PostgreSQL schema (section 2.1) in SQLAlchemy Core.

One schema for SQLite and PostgreSQL, so only portable types: `Uuid`, `JSON` (JSONB on
PostgreSQL), `UtcDateTime`. Every constraint and index is named, so that a driver error can be
traced back to the rule it broke and migrations can refer to it.
`migrations/versions/` must produce exactly these tables (a test compares them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    false,
    func,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored as UTC and always read back as UTC.

    SQLite keeps no offset: without this, an aware datetime would lose its zone on the way in
    and come back naive. Naive datetimes are refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; use an aware UTC one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_type() -> JSON:
    """JSON everywhere, JSONB on PostgreSQL (as the seed asks)."""
    return JSON().with_variant(JSONB(), "postgresql")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _created_at() -> Column[datetime]:
    return Column("created_at", UtcDateTime(), nullable=False, server_default=func.now())


def _updated_at() -> Column[datetime]:
    return Column("updated_at", UtcDateTime(), nullable=False, server_default=func.now())


def _metadata_column(name: str = "metadata") -> Column[Any]:
    return Column(name, json_type(), nullable=False, server_default=text("'{}'"))


metadata = MetaData(naming_convention=NAMING_CONVENTION)

users = Table(
    "users",
    metadata,
    Column("user_id", Uuid(), nullable=False),
    Column("username", String(255), nullable=False),
    Column("email", String(255), nullable=False),
    Column("password_hash", String(255), nullable=False),
    _created_at(),
    _updated_at(),
    Column("status", String(20), nullable=False, server_default="active"),
    _metadata_column(),
    PrimaryKeyConstraint("user_id", name="pk_users"),
    UniqueConstraint("username", name="uq_users_username"),
    UniqueConstraint("email", name="uq_users_email"),
    CheckConstraint(_in("status", ("active", "suspended", "deleted")), name="status"),
    Index("idx_users_email", "email"),
    Index("idx_users_username", "username"),
)
# Usernames are unique regardless of case, and looked up by `lower(username)`: this index does
# both, on SQLite and PostgreSQL alike (usernames are ASCII, where their lower() agree).
Index("uq_users_username_lower", func.lower(users.c.username), unique=True)

user_channels = Table(
    "user_channels",
    metadata,
    Column("id", Uuid(), nullable=False),
    Column("user_id", Uuid(), ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False),
    Column("channel_type", String(50), nullable=False),
    Column("channel_user_id", String(255), nullable=False),
    _metadata_column("channel_metadata"),
    Column("verified", Boolean(), nullable=False, server_default=false()),
    _created_at(),
    # The channel account a contact wrote to: Messenger and Instagram ids are page-scoped, so an
    # identity is unique only within its account. NULL for identities users link themselves.
    Column("account_id", String(100), nullable=True),
    # Fallback order: the lowest first; a permanent failure moves on to the next. NULL: not in it.
    Column("priority", Integer(), nullable=True),
    PrimaryKeyConstraint("id", name="pk_user_channels"),
    UniqueConstraint("user_id", "channel_type", name="uq_user_channels_user_id_channel_type"),
    UniqueConstraint(
        "channel_type", "account_id", "channel_user_id", name="uq_user_channels_identity"
    ),
    Index("idx_user_channels_user", "user_id"),
    Index("idx_user_channels_type", "channel_type"),
    Index("idx_user_channels_external", "channel_type", "channel_user_id"),
)

conversations = Table(
    "conversations",
    metadata,
    Column("conversation_id", Uuid(), nullable=False),
    Column("type", String(20), nullable=False),
    Column("created_by", Uuid(), ForeignKey("users.user_id"), nullable=False),
    _created_at(),
    _updated_at(),
    _metadata_column(),
    Column("is_active", Boolean(), nullable=False, server_default=true()),
    # One private conversation per pair of users: the services derive the key from the pair.
    Column("private_key", String(255), nullable=True),
    PrimaryKeyConstraint("conversation_id", name="pk_conversations"),
    UniqueConstraint("private_key", name="uq_conversations_private_key"),
    CheckConstraint(_in("type", ("private", "group")), name="type"),
    Index("idx_conversations_created_by", "created_by"),
    Index("idx_conversations_updated_at", "updated_at"),
)

conversation_members = Table(
    "conversation_members",
    metadata,
    Column("id", Uuid(), nullable=False),
    Column(
        "conversation_id",
        Uuid(),
        ForeignKey("conversations.conversation_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("user_id", Uuid(), ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False),
    Column("role", String(20), nullable=False, server_default="member"),
    Column("joined_at", UtcDateTime(), nullable=False, server_default=func.now()),
    Column("last_read_at", UtcDateTime(), nullable=True),
    Column("last_read_message_id", Uuid(), nullable=True),
    # Watermarks by sequence number: everything up to them is read / delivered for this member.
    Column("last_read_seq", BigInteger(), nullable=False, server_default=text("0")),
    Column("last_delivered_seq", BigInteger(), nullable=False, server_default=text("0")),
    PrimaryKeyConstraint("id", name="pk_conversation_members"),
    UniqueConstraint(
        "conversation_id", "user_id", name="uq_conversation_members_conversation_id_user_id"
    ),
    CheckConstraint(_in("role", ("owner", "admin", "member")), name="role"),
    Index("idx_conversation_members_conv", "conversation_id"),
    Index("idx_conversation_members_user", "user_id"),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("webhook_id", Uuid(), nullable=False),
    Column("user_id", Uuid(), ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("events", json_type(), nullable=False),  # a list of topics; SQLite has no arrays
    Column("secret", String(255), nullable=False),
    Column("is_active", Boolean(), nullable=False, server_default=true()),
    _created_at(),
    # A rotated-out secret keeps signing (beside the new one) until `previous_secret_until`.
    Column("previous_secret", String(255), nullable=True),
    Column("previous_secret_until", UtcDateTime(), nullable=True),
    PrimaryKeyConstraint("webhook_id", name="pk_webhooks"),
    Index("idx_webhooks_user", "user_id"),
    Index("idx_webhooks_active", "is_active"),
)

# The durable delivery queue: one row per (webhook, event). A row is due when `state` is
# pending and `next_attempt_at` has passed; a dispatcher claims it by setting a lease
# (`lease_id`, `leased_until`) and pushing `next_attempt_at` past the lease, so a dispatcher
# that dies mid-attempt leaves the row due again once the lease ends.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("delivery_id", Uuid(), nullable=False),
    Column(
        "webhook_id", Uuid(), ForeignKey("webhooks.webhook_id", ondelete="CASCADE"), nullable=False
    ),
    Column("event_id", String(255), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("body", Text(), nullable=False),  # the exact bytes every attempt sends and signs
    Column("state", String(16), nullable=False),
    Column("attempts", Integer(), nullable=False, server_default=text("0")),
    Column("tries", Integer(), nullable=False, server_default=text("0")),
    Column("next_attempt_at", UtcDateTime(), nullable=True),
    Column("lease_id", Uuid(), nullable=True),
    Column("leased_until", UtcDateTime(), nullable=True),
    Column("last_status_code", Integer(), nullable=True),
    Column("last_error", String(500), nullable=True),
    _created_at(),
    _updated_at(),
    PrimaryKeyConstraint("delivery_id", name="pk_webhook_deliveries"),
    CheckConstraint(_in("state", ("pending", "succeeded", "dead")), name="state"),
    Index("idx_webhook_deliveries_due", "state", "next_attempt_at"),
    Index("idx_webhook_deliveries_webhook", "webhook_id", "created_at"),
    Index("idx_webhook_deliveries_leased", "leased_until"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column(
        "delivery_id",
        Uuid(),
        ForeignKey("webhook_deliveries.delivery_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("number", Integer(), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("duration_ms", Integer(), nullable=False),
    Column("status_code", Integer(), nullable=True),
    Column("error", String(500), nullable=True),
    PrimaryKeyConstraint("delivery_id", "number", name="pk_webhook_attempts"),
)

access_tokens = Table(
    "access_tokens",
    metadata,
    Column("token_id", Uuid(), nullable=False),
    Column("user_id", Uuid(), ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", String(255), nullable=False),
    # Refresh-token rotation chains every token of one login into a family.
    Column("family_id", Uuid(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    _created_at(),
    Column("last_used_at", UtcDateTime(), nullable=True),
    Column("revoked_at", UtcDateTime(), nullable=True),
    PrimaryKeyConstraint("token_id", name="pk_access_tokens"),
    UniqueConstraint("token_hash", name="uq_access_tokens_token_hash"),
    Index("idx_access_tokens_user", "user_id"),
    Index("idx_access_tokens_expires", "expires_at"),
    Index("idx_access_tokens_family", "family_id"),
)

channel_configs = Table(
    "channel_configs",
    metadata,
    Column("id", Uuid(), nullable=False),
    Column("channel_type", String(50), nullable=False),
    Column("config", json_type(), nullable=False),
    Column("is_enabled", Boolean(), nullable=False, server_default=true()),
    _updated_at(),
    # Several accounts per channel (numbers, bots, pages); the name is the webhook URL's.
    Column("account_id", String(100), nullable=False),
    PrimaryKeyConstraint("id", name="pk_channel_configs"),
    UniqueConstraint("channel_type", "account_id", name="uq_channel_configs_account"),
    Index("idx_channel_configs_type", "channel_type"),
)

# What went out on a channel: maps the platform's message id back to our message and
# recipient (for its receipts), and makes a replayed delivery job a no-op.
channel_messages = Table(
    "channel_messages",
    metadata,
    Column("channel_type", String(50), nullable=False),
    Column("account_id", String(100), nullable=False),
    Column("platform_message_id", String(255), nullable=False),
    Column("message_id", Uuid(), nullable=False),
    Column("conversation_id", Uuid(), nullable=False),
    Column("recipient_id", Uuid(), nullable=False),
    Column("contact_id", String(255), nullable=False),
    Column("sent_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint(
        "channel_type", "account_id", "platform_message_id", name="pk_channel_messages"
    ),
    UniqueConstraint(
        "message_id", "recipient_id", "channel_type", name="uq_channel_messages_delivery"
    ),
    Index("idx_channel_messages_contact", "channel_type", "account_id", "contact_id", "sent_at"),
)

# Delivery jobs that ran out of tries, with the reason; replaying one publishes it again.
dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Uuid(), nullable=False),
    Column("channel_type", String(50), nullable=False),
    Column("account_id", String(100), nullable=True),
    Column("message_id", Uuid(), nullable=False),
    Column("recipient_id", Uuid(), nullable=False),
    Column("reason", Text(), nullable=False),
    Column("job", json_type(), nullable=False),
    _created_at(),
    Column("replayed_at", UtcDateTime(), nullable=True),
    PrimaryKeyConstraint("id", name="pk_dead_letters"),
    Index("idx_dead_letters_created", "created_at"),
)

__all__ = [
    "NAMING_CONVENTION",
    "UtcDateTime",
    "access_tokens",
    "channel_configs",
    "channel_messages",
    "conversation_members",
    "conversations",
    "dead_letters",
    "json_type",
    "metadata",
    "user_channels",
    "users",
    "webhook_attempts",
    "webhook_deliveries",
    "webhooks",
]
