"""Unique readers per UTC day (issue 12, "fast on a real history"): ``reader_days`` holds how many
readers ``daily_readers`` has for each day, kept by triggers on ``daily_readers`` in the
writer's own transaction (ingest inserts a reader hash once; a duplicate it skips fires
nothing), so the dashboard's total of unique readers for a period adds up some 28 rows instead
of counting every reader of the period (280,000 at scale 1). The upgrade fills it from the
readers already stored.

Revision ID: 0017_dash
Revises: 0016_guard
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_dash"
down_revision = "0016_guard"
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = (
    "CREATE TRIGGER daily_readers_count_insert AFTER INSERT ON daily_readers BEGIN "
    "INSERT INTO reader_days (day, readers) VALUES (NEW.day, 1) "
    "ON CONFLICT (day) DO UPDATE SET readers = readers + 1; END",
    "CREATE TRIGGER daily_readers_count_delete AFTER DELETE ON daily_readers BEGIN "
    "UPDATE reader_days SET readers = readers - 1 WHERE day = OLD.day; END",
    "CREATE TRIGGER daily_readers_count_update AFTER UPDATE OF day ON daily_readers BEGIN "
    "UPDATE reader_days SET readers = readers - 1 WHERE day = OLD.day; "
    "INSERT INTO reader_days (day, readers) VALUES (NEW.day, 1) "
    "ON CONFLICT (day) DO UPDATE SET readers = readers + 1; END",
)
# PostgreSQL: one statement-level trigger per event over the rows it changed (transition
# tables), so a batch of thousands of readers costs one grouped upsert, not one per reader
POSTGRESQL_TRIGGERS = (
    "CREATE FUNCTION daily_readers_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO reader_days (day, readers) SELECT day, count(*) FROM added GROUP BY day "
    "ON CONFLICT (day) DO UPDATE SET readers = reader_days.readers + excluded.readers; "
    "RETURN NULL; END $$",
    "CREATE FUNCTION daily_readers_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "UPDATE reader_days SET readers = reader_days.readers - gone.n FROM "
    "(SELECT day, count(*) AS n FROM removed GROUP BY day) AS gone "
    "WHERE reader_days.day = gone.day; RETURN NULL; END $$",
    "CREATE FUNCTION daily_readers_count_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "UPDATE reader_days SET readers = reader_days.readers - gone.n FROM "
    "(SELECT day, count(*) AS n FROM removed GROUP BY day) AS gone "
    "WHERE reader_days.day = gone.day; "
    "INSERT INTO reader_days (day, readers) SELECT day, count(*) FROM added GROUP BY day "
    "ON CONFLICT (day) DO UPDATE SET readers = reader_days.readers + excluded.readers; "
    "RETURN NULL; END $$",
    "CREATE TRIGGER daily_readers_count_insert AFTER INSERT ON daily_readers "
    "REFERENCING NEW TABLE AS added FOR EACH STATEMENT "
    "EXECUTE FUNCTION daily_readers_count_insert()",
    "CREATE TRIGGER daily_readers_count_delete AFTER DELETE ON daily_readers "
    "REFERENCING OLD TABLE AS removed FOR EACH STATEMENT "
    "EXECUTE FUNCTION daily_readers_count_delete()",
    "CREATE TRIGGER daily_readers_count_update AFTER UPDATE ON daily_readers "
    "REFERENCING OLD TABLE AS removed NEW TABLE AS added FOR EACH STATEMENT "
    "EXECUTE FUNCTION daily_readers_count_update()",
)
EVENTS = ("insert", "delete", "update")


def upgrade() -> None:
    op.create_table(
        "reader_days",
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("readers", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", name="pk_reader_days"),
        sqlite_with_rowid=False,
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_TRIGGERS if sqlite else POSTGRESQL_TRIGGERS:
        op.execute(statement)
    op.execute(
        "INSERT INTO reader_days (day, readers) SELECT day, count(*) FROM daily_readers "
        "GROUP BY day"
    )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for event in EVENTS:
        if sqlite:
            op.execute(f"DROP TRIGGER daily_readers_count_{event}")
        else:
            op.execute(f"DROP TRIGGER daily_readers_count_{event} ON daily_readers")
            op.execute(f"DROP FUNCTION daily_readers_count_{event}()")
    op.drop_table("reader_days")
