"""Client webhooks: secret rotation on `webhooks`, the delivery queue and its attempt log.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, *, nullable: bool = False, now: bool = False) -> sa.Column[object]:
    default = sa.func.now() if now else None
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, server_default=default)


def upgrade() -> None:
    op.add_column("webhooks", sa.Column("previous_secret", sa.String(255), nullable=True))
    op.add_column("webhooks", _timestamp("previous_secret_until", nullable=True))

    op.create_table(
        "webhook_deliveries",
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("webhook_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("tries", sa.Integer(), nullable=False, server_default=sa.text("0")),
        _timestamp("next_attempt_at", nullable=True),
        sa.Column("lease_id", sa.Uuid(), nullable=True),
        _timestamp("leased_until", nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        _timestamp("created_at", now=True),
        _timestamp("updated_at", now=True),
        sa.PrimaryKeyConstraint("delivery_id", name="pk_webhook_deliveries"),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.webhook_id"],
            name="fk_webhook_deliveries_webhook_id_webhooks",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'succeeded', 'dead')", name=op.f("ck_webhook_deliveries_state")
        ),
    )
    op.create_index(
        "idx_webhook_deliveries_due", "webhook_deliveries", ["state", "next_attempt_at"]
    )
    op.create_index(
        "idx_webhook_deliveries_webhook", "webhook_deliveries", ["webhook_id", "created_at"]
    )
    op.create_index("idx_webhook_deliveries_leased", "webhook_deliveries", ["leased_until"])

    op.create_table(
        "webhook_attempts",
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        _timestamp("at"),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("delivery_id", "number", name="pk_webhook_attempts"),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_deliveries.delivery_id"],
            name="fk_webhook_attempts_delivery_id_webhook_deliveries",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("webhooks") as batch:  # SQLite drops columns by copying the table
        batch.drop_column("previous_secret_until")
        batch.drop_column("previous_secret")
