"""What is due, as its own small index: the pending deliveries by the time they fall due, so a
claim reads its batch from the front of the index and stops, instead of finding every due row
through ``(state, next_attempt_at)`` and sorting them all for each batch of 200. Partial, so a
row leaves it when it is claimed and the index is as large as the backlog, not the ledger.
Unknown outcomes get a partial index of their own, and the index on ``(state,
next_attempt_at)`` that served both goes: every state change of every delivery had to update it.

Revision ID: 0020_ledger
Revises: 0017_dash
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_ledger"
down_revision = "0017_dash"
branch_labels = None
depends_on = None

PENDING = "state IN ('planned', 'retry_wait')"  # as the ledger declares them (PENDING_SQL,
UNKNOWN = "state = 'unknown'"  # UNKNOWN_SQL)


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_due",
        "deliveries",
        ["next_attempt_at", "id"],
        postgresql_where=sa.text(PENDING),
        sqlite_where=sa.text(PENDING),
    )
    op.create_index(
        "ix_deliveries_unknown",
        "deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text(UNKNOWN),
        sqlite_where=sa.text(UNKNOWN),
    )
    op.drop_index("ix_deliveries_state_next_attempt_at", table_name="deliveries")


def downgrade() -> None:
    op.create_index(
        "ix_deliveries_state_next_attempt_at", "deliveries", ["state", "next_attempt_at"]
    )
    op.drop_index("ix_deliveries_unknown", table_name="deliveries")
    op.drop_index("ix_deliveries_due", table_name="deliveries")
