"""The ledger: deliveries, their event log, and per-channel state (pauses, rate limits).

Revision ID: 0001_ledger
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_ledger"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("story", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("variant", sa.String(8)),
        sa.Column("region", sa.String(100)),
        sa.Column("category", sa.String(100), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("content_hash", sa.String(128), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("next_attempt_at", TS),
        sa.Column("lease_until", TS),
        sa.Column("claimed_by", sa.String(120)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("remote_id", sa.Text),
        sa.Column("url", sa.Text),
        sa.Column("receipt", sa.Text),
        sa.Column("last_error", sa.Text),
        sa.Column("cancelled_by", sa.String(8)),
        sa.Column("sent_at", TS),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
    )
    op.create_index(
        "ix_deliveries_state_next_attempt_at", "deliveries", ["state", "next_attempt_at"]
    )
    op.create_index("ix_deliveries_story", "deliveries", ["story"])
    op.create_index("ix_deliveries_state_lease_until", "deliveries", ["state", "lease_until"])
    op.create_table(
        "delivery_events",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.String(32), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("worker", sa.String(120)),
        sa.Column("detail", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_events"),
    )
    op.create_index("ix_delivery_events_delivery_id", "delivery_events", ["delivery_id"])
    op.create_table(
        "channel_state",
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("paused_reason", sa.Text),
        sa.Column("paused_at", TS),
        sa.Column("blocked_until", TS),
        sa.Column("tat", sa.Float),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("channel", name="pk_channel_state"),
    )


def downgrade() -> None:
    op.drop_table("channel_state")
    op.drop_index("ix_delivery_events_delivery_id", table_name="delivery_events")
    op.drop_table("delivery_events")
    op.drop_index("ix_deliveries_state_lease_until", table_name="deliveries")
    op.drop_index("ix_deliveries_story", table_name="deliveries")
    op.drop_index("ix_deliveries_state_next_attempt_at", table_name="deliveries")
    op.drop_table("deliveries")
