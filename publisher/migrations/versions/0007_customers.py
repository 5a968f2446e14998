"""Customers: testimonials that arrived through a till invitation, with their consent record.

Revision ID: 0007_customers
Revises: 0004_scale
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_customers"
down_revision = "0004_scale"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "testimonials",
        sa.Column("invite", sa.String(40), nullable=False),
        sa.Column("store", sa.String(100), nullable=False),
        sa.Column("visited_on", sa.Date(), nullable=False),
        sa.Column("lang", sa.String(8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("photos", sa.Text(), nullable=False),
        sa.Column("consent_scope", sa.String(30), nullable=False),
        sa.Column("consent_until", sa.Date()),
        sa.Column("consent_version", sa.String(20), nullable=False),
        sa.Column("consent_text", sa.Text(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pulled_at", sa.DateTime(timezone=True)),
        sa.Column("pulled_branch", sa.String(200)),
        sa.PrimaryKeyConstraint("invite", name="pk_testimonials"),
    )


def downgrade() -> None:
    op.drop_table("testimonials")
