"""Rollup: the dashboard's figures per post and day (clicks, readers) and per post and hour
(conversions), kept as they are written, so a page reads thousands of rows, not millions.

- ``post_days``: per story, channel, variant, region and UTC day, the reader clicks, bot
  fetches and unique readers. Kept by ingest in the batch's transaction.
- ``conversion_hours``: per UTC hour, post, store, kind, link/code and currency, how many
  conversions and their value. An hour, not a day: the dashboard's days are the site's, which
  begin on a whole UTC hour in most time zones.
- ``conversion_readers``: one row per conversion made through a reader's click, with that
  reader's hash and the click's UTC day: counting converted readers needs no join of the
  conversions to the clicks.

The conversion tables are kept by triggers on ``conversions``, so every writer (API, till,
undo, CSV, Shopify, and any added later) keeps them right in its own transaction; ingest fills
``conversion_readers`` for a conversion recorded before its click was ingested. The upgrade
fills all three from the rows already stored.

Revision ID: 0010_rollup
Revises: 0007_customers
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_rollup"
down_revision = "0009_referral"
branch_labels = None
depends_on = None

HOUR_KEY = ("hour", "story", "channel", "variant", "region", "store", "kind", "linked", "currency")


def _hour(dialect: str, column: str) -> str:
    if dialect == "sqlite":
        return f"substr({column}, 1, 13)"
    return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24')"


def _day(dialect: str, column: str) -> str:
    if dialect == "sqlite":
        return f"substr({column}, 1, 10)"
    return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


def _key_values(dialect: str, row: str) -> list[str]:
    """The ``conversion_hours`` key of one conversion (``row`` is NEW, OLD or a table name)."""
    return [
        _hour(dialect, f"{row}.at"),
        f"{row}.story",
        f"{row}.channel",
        f"COALESCE({row}.variant, '')",
        f"COALESCE({row}.region, '')",
        f"COALESCE({row}.store, '')",
        f"{row}.kind",
        f"CASE WHEN {row}.click_id IS NULL THEN 0 ELSE 1 END",
        f"{row}.currency",
    ]


def _add(dialect: str, row: str) -> list[str]:
    key = _key_values(dialect, row)
    return [
        f"INSERT INTO conversion_hours ({', '.join(HOUR_KEY)}, conversions, value_minor) "
        f"VALUES ({', '.join(key)}, 1, {row}.value_minor) "
        f"ON CONFLICT ({', '.join(HOUR_KEY)}) DO UPDATE SET "
        "conversions = conversion_hours.conversions + 1, "
        "value_minor = conversion_hours.value_minor + excluded.value_minor",
        "INSERT INTO conversion_readers (conversion_id, story, channel, variant, region, reader, "
        f"day, at) SELECT {row}.id, {row}.story, {row}.channel, {row}.variant, {row}.region, "
        f"substr(k.reader, 1, 15), {_day(dialect, 'k.at')}, {row}.at FROM clicks k "
        f"WHERE k.id = {row}.click_id AND k.kind = 'reader' AND k.reader IS NOT NULL",
    ]


def _take_away(dialect: str, row: str) -> list[str]:
    match = " AND ".join(
        f"{name} = {value}" for name, value in zip(HOUR_KEY, _key_values(dialect, row), strict=True)
    )
    return [
        "UPDATE conversion_hours SET conversions = conversions - 1, "
        f"value_minor = value_minor - {row}.value_minor WHERE {match}",
        f"DELETE FROM conversion_hours WHERE {match} AND conversions <= 0",
        f"DELETE FROM conversion_readers WHERE conversion_id = {row}.id",
    ]


def _triggers(dialect: str) -> list[str]:
    if dialect == "sqlite":
        out = []
        for name, event, steps in (
            ("insert", "INSERT", _add(dialect, "NEW")),
            ("delete", "DELETE", _take_away(dialect, "OLD")),
            ("update", "UPDATE", _take_away(dialect, "OLD") + _add(dialect, "NEW")),
        ):
            body = "; ".join(steps)
            out.append(
                f"CREATE TRIGGER conversions_rollup_{name} AFTER {event} ON conversions "
                f"BEGIN {body}; END"
            )
        return out
    old = "; ".join(_take_away(dialect, "OLD"))
    new = "; ".join(_add(dialect, "NEW"))
    return [
        "CREATE FUNCTION conversions_rollup() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP IN ('DELETE', 'UPDATE') THEN {old}; END IF; "
        f"IF TG_OP IN ('INSERT', 'UPDATE') THEN {new}; END IF; "
        "RETURN NULL; END $$",
        "CREATE TRIGGER conversions_rollup AFTER INSERT OR UPDATE OR DELETE ON conversions "
        "FOR EACH ROW EXECUTE FUNCTION conversions_rollup()",
    ]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "post_days",
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("story", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("variant", sa.String(50), nullable=False),
        sa.Column("region", sa.String(100), nullable=False),
        sa.Column("reader_clicks", sa.BigInteger(), nullable=False),
        sa.Column("bot_fetches", sa.BigInteger(), nullable=False),
        sa.Column("readers", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "story", "channel", "variant", "region", name="pk_post_days"
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "conversion_hours",
        sa.Column("hour", sa.String(13), nullable=False),
        sa.Column("story", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("variant", sa.String(50), nullable=False),
        sa.Column("region", sa.String(100), nullable=False),
        sa.Column("store", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("linked", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("conversions", sa.BigInteger(), nullable=False),
        sa.Column("value_minor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(*HOUR_KEY, name="pk_conversion_hours"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "conversion_readers",
        sa.Column("conversion_id", sa.Integer(), nullable=False),
        sa.Column("story", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("variant", sa.String(50)),
        sa.Column("region", sa.String(100)),
        sa.Column("reader", sa.String(15), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("conversion_id", name="pk_conversion_readers"),
    )
    # covering, in the order converted readers are counted: per post, and in all
    op.create_index(
        "ix_conversion_readers_post",
        "conversion_readers",
        ["story", "channel", "variant", "region", "reader", "day", "at"],
    )
    op.create_index("ix_conversion_readers_reader", "conversion_readers", ["reader", "day", "at"])
    # ingest finds the conversions recorded before their click arrived
    op.create_index("ix_conversions_click", "conversions", ["click_id"])

    fine = "story, channel, COALESCE(variant, ''), COALESCE(region, '')"
    op.execute(
        "INSERT INTO post_days (day, story, channel, variant, region, reader_clicks, "
        f"bot_fetches, readers) SELECT day, {fine}, SUM(reader_clicks), SUM(bot_fetches), 0 "
        f"FROM click_totals GROUP BY day, {fine}"
    )
    op.execute(
        "INSERT INTO post_days (day, story, channel, variant, region, reader_clicks, "
        "bot_fetches, readers) SELECT day, story, channel, variant, region, 0, 0, COUNT(*) "
        "FROM click_readers WHERE true GROUP BY day, story, channel, variant, region "
        "ON CONFLICT (day, story, channel, variant, region) DO UPDATE SET "
        "readers = excluded.readers"
    )
    key = _key_values(dialect, "conversions")
    op.execute(
        f"INSERT INTO conversion_hours ({', '.join(HOUR_KEY)}, conversions, value_minor) "
        f"SELECT {', '.join(key)}, COUNT(*), SUM(value_minor) FROM conversions "
        f"GROUP BY {', '.join(key)}"
    )
    op.execute(
        "INSERT INTO conversion_readers (conversion_id, story, channel, variant, region, reader, "
        "day, at) SELECT c.id, c.story, c.channel, c.variant, c.region, substr(k.reader, 1, 15), "
        f"{_day(dialect, 'k.at')}, c.at FROM conversions c JOIN clicks k ON k.id = c.click_id "
        "WHERE k.kind = 'reader' AND k.reader IS NOT NULL"
    )
    for statement in _triggers(dialect):
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER conversions_rollup_{name}")
    else:
        op.execute("DROP TRIGGER conversions_rollup ON conversions")
        op.execute("DROP FUNCTION conversions_rollup()")
    op.drop_index("ix_conversions_click", "conversions")
    op.drop_table("conversion_readers")
    op.drop_table("conversion_hours")
    op.drop_table("post_days")
