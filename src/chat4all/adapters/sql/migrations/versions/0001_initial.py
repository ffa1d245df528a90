"""The seed's metadata tables, with watermarks, private keys and refresh-token families.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.JSON:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _timestamp(name: str, *, nullable: bool = False, now: bool = False) -> sa.Column[object]:
    default = sa.func.now() if now else None
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, server_default=default)


# Check constraints are named with `op.f`: the target metadata's naming convention would
# otherwise prefix them a second time.


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("email", sa.String(255), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        _timestamp("created_at", now=True),
        _timestamp("updated_at", now=True),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("metadata", _json(), nullable=False, server_default=sa.text("'{}'")),
        sa.PrimaryKeyConstraint("user_id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
        sa.UniqueConstraint("email", name="uq_users_email"),
        sa.CheckConstraint(
            "status IN ('active', 'suspended', 'deleted')", name=op.f("ck_users_status")
        ),
    )
    op.create_index("idx_users_email", "users", ["email"])
    op.create_index("idx_users_username", "users", ["username"])

    op.create_table(
        "user_channels",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("channel_type", sa.String(50), nullable=False),
        sa.Column("channel_user_id", sa.String(255), nullable=False),
        sa.Column("channel_metadata", _json(), nullable=False, server_default=sa.text("'{}'")),
        sa.Column("verified", sa.Boolean(), nullable=False, server_default=sa.false()),
        _timestamp("created_at", now=True),
        sa.PrimaryKeyConstraint("id", name="pk_user_channels"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.user_id"],
            name="fk_user_channels_user_id_users",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "user_id", "channel_type", name="uq_user_channels_user_id_channel_type"
        ),
        sa.CheckConstraint(
            "channel_type IN ('whatsapp', 'instagram', 'telegram', 'messenger', 'internal')",
            name=op.f("ck_user_channels_channel_type"),
        ),
    )
    op.create_index("idx_user_channels_user", "user_channels", ["user_id"])
    op.create_index("idx_user_channels_type", "user_channels", ["channel_type"])
    op.create_index(
        "idx_user_channels_external", "user_channels", ["channel_type", "channel_user_id"]
    )

    op.create_table(
        "conversations",
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        _timestamp("created_at", now=True),
        _timestamp("updated_at", now=True),
        sa.Column("metadata", _json(), nullable=False, server_default=sa.text("'{}'")),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("private_key", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("conversation_id", name="pk_conversations"),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.user_id"], name="fk_conversations_created_by_users"
        ),
        sa.UniqueConstraint("private_key", name="uq_conversations_private_key"),
        sa.CheckConstraint("type IN ('private', 'group')", name=op.f("ck_conversations_type")),
    )
    op.create_index("idx_conversations_created_by", "conversations", ["created_by"])
    op.create_index("idx_conversations_updated_at", "conversations", ["updated_at"])

    op.create_table(
        "conversation_members",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(20), nullable=False, server_default="member"),
        _timestamp("joined_at", now=True),
        _timestamp("last_read_at", nullable=True),
        sa.Column("last_read_message_id", sa.Uuid(), nullable=True),
        sa.Column("last_read_seq", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column(
            "last_delivered_seq", sa.BigInteger(), nullable=False, server_default=sa.text("0")
        ),
        sa.PrimaryKeyConstraint("id", name="pk_conversation_members"),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.conversation_id"],
            name="fk_conversation_members_conversation_id_conversations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.user_id"],
            name="fk_conversation_members_user_id_users",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "conversation_id",
            "user_id",
            name="uq_conversation_members_conversation_id_user_id",
        ),
        sa.CheckConstraint(
            "role IN ('owner', 'admin', 'member')", name=op.f("ck_conversation_members_role")
        ),
    )
    op.create_index("idx_conversation_members_conv", "conversation_members", ["conversation_id"])
    op.create_index("idx_conversation_members_user", "conversation_members", ["user_id"])

    op.create_table(
        "webhooks",
        sa.Column("webhook_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("events", _json(), nullable=False),
        sa.Column("secret", sa.String(255), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
        _timestamp("created_at", now=True),
        sa.PrimaryKeyConstraint("webhook_id", name="pk_webhooks"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.user_id"], name="fk_webhooks_user_id_users", ondelete="CASCADE"
        ),
    )
    op.create_index("idx_webhooks_user", "webhooks", ["user_id"])
    op.create_index("idx_webhooks_active", "webhooks", ["is_active"])

    op.create_table(
        "access_tokens",
        sa.Column("token_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(255), nullable=False),
        sa.Column("family_id", sa.Uuid(), nullable=False),
        _timestamp("expires_at"),
        _timestamp("created_at", now=True),
        _timestamp("last_used_at", nullable=True),
        _timestamp("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("token_id", name="pk_access_tokens"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.user_id"],
            name="fk_access_tokens_user_id_users",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("token_hash", name="uq_access_tokens_token_hash"),
    )
    op.create_index("idx_access_tokens_user", "access_tokens", ["user_id"])
    op.create_index("idx_access_tokens_expires", "access_tokens", ["expires_at"])
    op.create_index("idx_access_tokens_family", "access_tokens", ["family_id"])

    op.create_table(
        "channel_configs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("channel_type", sa.String(50), nullable=False),
        sa.Column("config", _json(), nullable=False),
        sa.Column("is_enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        _timestamp("updated_at", now=True),
        sa.PrimaryKeyConstraint("id", name="pk_channel_configs"),
        sa.UniqueConstraint("channel_type", name="uq_channel_configs_channel_type"),
    )
    op.create_index("idx_channel_configs_type", "channel_configs", ["channel_type"])


def downgrade() -> None:
    for table in (
        "channel_configs",
        "access_tokens",
        "webhooks",
        "conversation_members",
        "conversations",
        "user_channels",
        "users",
    ):
        op.drop_table(table)
