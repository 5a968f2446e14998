"""Consent: withdrawal links, ended consents, and the removal of every copy, step by step.

Revision ID: 0008_consent
Revises: 0007_customers
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_consent"
down_revision = "0007_customers"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "withdrawal_links",
        sa.Column("invite", sa.String(40), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("invite", name="pk_withdrawal_links"),
    )
    op.create_table(
        "consent_ends",
        sa.Column("story", sa.String(200), nullable=False),
        sa.Column("invite", sa.String(40)),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("how", sa.Text(), nullable=False),
        sa.Column("ended_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("story", name="pk_consent_ends"),
    )
    op.create_table(
        "consent_removals",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("story", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("variant", sa.String(50)),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("remote_id", sa.Text()),
        sa.Column("url", sa.Text()),
        sa.Column("receipt", sa.Text()),
        sa.Column("sent_at", WHEN),
        sa.Column("next_attempt_at", WHEN),
        sa.Column("lease_until", WHEN),
        sa.Column("claimed_by", sa.String(120)),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("detail", sa.Text()),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_consent_removals"),
    )
    op.create_index("ix_consent_removals_story", "consent_removals", ["story"])
    op.create_table(
        "consent_steps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("removal_id", sa.String(32), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("worker", sa.String(120)),
        sa.Column("detail", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_consent_steps"),
    )
    op.create_index("ix_consent_steps_removal_id", "consent_steps", ["removal_id"])


def downgrade() -> None:
    op.drop_index("ix_consent_steps_removal_id", table_name="consent_steps")
    op.drop_table("consent_steps")
    op.drop_index("ix_consent_removals_story", table_name="consent_removals")
    op.drop_table("consent_removals")
    op.drop_table("consent_ends")
    op.drop_table("withdrawal_links")
