"""Core: the ledger's columns as wide as the same columns everywhere else.

A variant is ``String(50)`` in every tracking and shop table but was ``String(8)`` in
``deliveries``, and a delivery id is ``String(200)`` wherever links, clicks and conversions name
one (the site's own QR deliveries are ``site-<story>``) but was ``String(32)`` in the ledger.
Both are widened, never narrowed, so no stored value changes. PostgreSQL widens a varchar in
place; SQLite (which does not enforce the width) rebuilds the two tables in batch mode, so its
declared schema says the same. Every time column already is ``DateTime(timezone=True)``
(``timestamptz`` on PostgreSQL); the models now read and write them all through one type,
:class:`publisher.db.UTCDateTime`.

Revision ID: 0011_core
Revises: 0007_customers
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_core"
down_revision = "0010_rollup"
branch_labels = None
depends_on = None

WIDER = (
    ("deliveries", "id", 32, 200),
    ("deliveries", "variant", 8, 50),
    ("delivery_events", "delivery_id", 32, 200),
)


def _alter(narrow_to_wide: bool) -> None:
    for table in ("deliveries", "delivery_events"):
        with op.batch_alter_table(table) as batch:
            for name, column, narrow, wide in WIDER:
                if name != table:
                    continue
                before, after = (narrow, wide) if narrow_to_wide else (wide, narrow)
                batch.alter_column(
                    column,
                    existing_type=sa.String(before),
                    type_=sa.String(after),
                    existing_nullable=column == "variant",
                )


def upgrade() -> None:
    _alter(narrow_to_wide=True)


def downgrade() -> None:
    _alter(narrow_to_wide=False)
