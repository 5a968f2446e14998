"""Referrals: a customer's code to give a friend, and the friends credited to it.

Revision ID: 0009_referral
Revises: 0007_customers
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_referral"
down_revision = "0008_consent"
branch_labels = None
depends_on = None


def _origin() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("delivery_id", sa.String(200), nullable=False),
        sa.Column("story", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("variant", sa.String(50)),
        sa.Column("region", sa.String(100)),
    ]


def upgrade() -> None:
    op.create_table(
        "referral_codes",
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("referrer", sa.String(300), nullable=False),
        sa.Column("sale_key", sa.String(200), nullable=False),
        sa.Column("offer_code", sa.String(32), nullable=False),
        sa.Column("reader", sa.String(64)),
        sa.Column("offer_story", sa.String(200), nullable=False),
        sa.Column("store", sa.String(100)),
        *_origin(),
        sa.Column("friends", sa.Integer(), nullable=False),
        sa.Column("rewards_given", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_referral_codes"),
        sa.UniqueConstraint("referrer", name="uq_referral_codes_referrer"),
    )
    op.create_index("ix_referral_codes_sale", "referral_codes", ["sale_key"])
    op.create_table(
        "referral_credits",
        sa.Column("friend_sale", sa.String(200), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("friend_code", sa.String(32), nullable=False),
        sa.Column("store", sa.String(100)),
        *_origin(),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("friend_sale", name="pk_referral_credits"),
    )
    op.create_index("ix_referral_credits_code", "referral_credits", ["code"])
    op.create_index(
        "ix_referral_credits_group", "referral_credits", ["story", "channel", "variant", "region"]
    )


def downgrade() -> None:
    op.drop_table("referral_credits")
    op.drop_table("referral_codes")
