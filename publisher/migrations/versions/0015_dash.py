"""Covering indexes for the dashboard's reads (issue 12, "fast on a real history").

- ``ix_conversion_hours_post``: the rollup's conversions in the order the dashboard adds them up
  per post, store, kind, link/code and currency, with the hour and both sums in the index, so
  the grouping streams instead of sorting every hour row (read with ``INDEXED BY`` on SQLite,
  whose planner otherwise takes the primary key's hour range and sorts).
- ``ix_conversion_hours_slot``: the same rows per hour, channel and currency for the chart over
  time.
- ``ix_deliveries_report``: the sent deliveries per post and their time, so counting them reads
  the index and not the ledger's wide rows.
- ``ix_conversions_store``: the stores a filter can choose, without reading every conversion.

Revision ID: 0015_dash
Revises: 0013_state
"""

from alembic import op

revision = "0015_dash"
down_revision = "0013_state"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_conversion_hours_post": (
        "conversion_hours",
        [
            "story",
            "channel",
            "variant",
            "region",
            "store",
            "kind",
            "linked",
            "currency",
            "hour",
            "conversions",
            "value_minor",
        ],
    ),
    "ix_conversion_hours_slot": (
        "conversion_hours",
        ["hour", "channel", "currency", "kind", "conversions", "value_minor"],
    ),
    "ix_deliveries_report": (
        "deliveries",
        ["state", "story", "channel", "variant", "region", "sent_at"],
    ),
    "ix_conversions_store": ("conversions", ["store"]),
}


def upgrade() -> None:
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, (table, _) in INDEXES.items():
        op.drop_index(name, table_name=table)
