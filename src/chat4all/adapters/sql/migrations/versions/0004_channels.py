"""Channels: several accounts per channel, account-scoped contact identities, a fallback
order, the platform ids of what went out, and dead letters.

The channel-type check on user_channels goes: channels are plugins, so the list is open.

Revision ID: 0004_channels
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_channels"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.JSON:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("channel_configs") as batch:
        batch.add_column(sa.Column("account_id", sa.String(100), nullable=True))
    # An account from before has the channel's name as its id.
    op.execute("UPDATE channel_configs SET account_id = channel_type")
    with op.batch_alter_table("channel_configs") as batch:
        batch.alter_column("account_id", existing_type=sa.String(100), nullable=False)
        batch.drop_constraint("uq_channel_configs_channel_type", type_="unique")
        batch.create_unique_constraint("uq_channel_configs_account", ["channel_type", "account_id"])

    with op.batch_alter_table("user_channels") as batch:
        batch.add_column(sa.Column("account_id", sa.String(100), nullable=True))
        batch.add_column(sa.Column("priority", sa.Integer(), nullable=True))
        batch.drop_constraint(op.f("ck_user_channels_channel_type"), type_="check")
        batch.create_unique_constraint(
            "uq_user_channels_identity", ["channel_type", "account_id", "channel_user_id"]
        )

    op.create_table(
        "channel_messages",
        sa.Column("channel_type", sa.String(50), nullable=False),
        sa.Column("account_id", sa.String(100), nullable=False),
        sa.Column("platform_message_id", sa.String(255), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("recipient_id", sa.Uuid(), nullable=False),
        sa.Column("contact_id", sa.String(255), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "channel_type", "account_id", "platform_message_id", name="pk_channel_messages"
        ),
        sa.UniqueConstraint(
            "message_id", "recipient_id", "channel_type", name="uq_channel_messages_delivery"
        ),
    )
    op.create_index(
        "idx_channel_messages_contact",
        "channel_messages",
        ["channel_type", "account_id", "contact_id", "sent_at"],
    )

    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("channel_type", sa.String(50), nullable=False),
        sa.Column("account_id", sa.String(100), nullable=True),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("recipient_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("job", _json(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
    )
    op.create_index("idx_dead_letters_created", "dead_letters", ["created_at"])


def downgrade() -> None:
    op.drop_table("dead_letters")
    op.drop_table("channel_messages")
    with op.batch_alter_table("user_channels") as batch:
        batch.drop_constraint("uq_user_channels_identity", type_="unique")
        batch.create_check_constraint(
            op.f("ck_user_channels_channel_type"),
            "channel_type IN ('whatsapp', 'instagram', 'telegram', 'messenger', 'internal')",
        )
        batch.drop_column("priority")
        batch.drop_column("account_id")
    with op.batch_alter_table("channel_configs") as batch:
        batch.drop_constraint("uq_channel_configs_account", type_="unique")
        batch.create_unique_constraint("uq_channel_configs_channel_type", ["channel_type"])
        batch.drop_column("account_id")
