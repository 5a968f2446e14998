"""Guessing protection kept in the database: each failed code or invitation attempt is a row
per key (an account, a code, a link) for ten minutes, so every tracker worker counts the same
failures and ``--workers N`` no longer gives N times the attempts. Keys are keyed hashes: no
address or code is stored.

Revision ID: 0016_guard
Revises: 0015_dash
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_guard"
down_revision = "0015_dash"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "guess_failures",
        sa.Column("key", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_guess_failures_key", "guess_failures", ["key", "at"])
    op.create_index("ix_guess_failures_at", "guess_failures", ["at"])


def downgrade() -> None:
    op.drop_table("guess_failures")
