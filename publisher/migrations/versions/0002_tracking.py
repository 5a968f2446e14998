"""Tracking: tracked links, offer codes, clicks, conversions, opt-outs, metrics, salts, journal.

Revision ID: 0002_tracking
Revises: 0001_ledger
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_tracking"
down_revision = "0001_ledger"
branch_labels = None
depends_on = None


def _attribution() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("delivery_id", sa.String(200), nullable=False),
        sa.Column("story", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("variant", sa.String(50)),
        sa.Column("region", sa.String(100)),
    ]


# Tables written a million rows at a time are clustered on their primary key in SQLite
# (WITHOUT ROWID): one b-tree to update per row instead of two.


def upgrade() -> None:
    op.create_table(
        "tracked_links",
        sa.Column("code", sa.String(32), nullable=False),
        *_attribution(),
        sa.Column("original", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_tracked_links"),
        sa.UniqueConstraint(
            "delivery_id", "original", name="uq_tracked_links_delivery_id_original"
        ),
    )
    op.create_table(
        "offer_codes",
        sa.Column("code", sa.String(32), nullable=False),
        *_attribution(),
        sa.Column("offer", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_offer_codes"),
        sa.UniqueConstraint("delivery_id", name="uq_offer_codes_delivery_id"),
    )
    op.create_table(
        "clicks",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        *_attribution(),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("agent", sa.String(50)),
        sa.Column("reader", sa.String(32)),
        sa.Column("referrer_host", sa.String(255)),
        sa.PrimaryKeyConstraint("id", name="pk_clicks"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "click_totals",
        sa.Column("delivery_id", sa.String(200), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("story", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("variant", sa.String(50)),
        sa.Column("region", sa.String(100)),
        sa.Column("reader_clicks", sa.BigInteger(), nullable=False),
        sa.Column("bot_fetches", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("delivery_id", "day", name="pk_click_totals"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "click_readers",
        sa.Column("story", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("variant", sa.String(50), nullable=False),
        sa.Column("region", sa.String(100), nullable=False),
        sa.Column("reader_key", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.PrimaryKeyConstraint(
            "story", "channel", "variant", "region", "reader_key", name="pk_click_readers"
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "daily_readers",
        sa.Column("reader_key", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.PrimaryKeyConstraint("reader_key", name="pk_daily_readers"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "conversions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dedupe_key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("click_id", sa.String(64)),
        sa.Column("offer_code", sa.String(32)),
        *_attribution(),
        sa.Column("value_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("order_id", sa.String(200)),
        sa.Column("store", sa.String(100)),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_conversions"),
        sa.UniqueConstraint("dedupe_key", name="uq_conversions_dedupe_key"),
    )
    op.create_index(
        "ix_conversions_group", "conversions", ["story", "channel", "variant", "region", "kind"]
    )
    op.create_table(
        "optouts",
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("email", name="pk_optouts"),
    )
    op.create_table(
        "metrics",
        sa.Column("delivery_id", sa.String(200), nullable=False),
        sa.Column("likes", sa.Integer()),
        sa.Column("reposts", sa.Integer()),
        sa.Column("replies", sa.Integer()),
        sa.Column("views", sa.Integer()),
        sa.Column("clicks", sa.Integer()),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("delivery_id", name="pk_metrics"),
    )
    op.create_table(
        "reader_salts",
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("day", name="pk_reader_salts"),
    )
    op.create_table(
        "journal_offsets",
        sa.Column("path", sa.String(255), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("path", name="pk_journal_offsets"),
    )


def downgrade() -> None:
    for table in (
        "journal_offsets",
        "reader_salts",
        "metrics",
        "optouts",
        "conversions",
        "daily_readers",
        "click_readers",
        "click_totals",
        "clicks",
        "offer_codes",
        "tracked_links",
    ):
        op.drop_table(table)
