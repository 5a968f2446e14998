"""``reader_days`` (migration 0017_dash): the readers of each UTC day, kept by triggers on
``daily_readers``, equal a count of ``daily_readers`` and of the raw clicks after a history
with clicks ingested twice; readers added to a day already counted, one removed and one moved
to another day are counted where they are now; the upgrade fills the table from the readers
already stored; and the dashboard's total of unique readers read from it is the raw count's."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import Connection, Engine, func, select

from publisher import db
from publisher.dashboard import queries
from publisher.tracking.ingest import reader_key
from publisher.tracking.report import Filters, ReadModel
from publisher.tracking.schema import clicks, daily_readers, reader_days
from tests.dashboard import seed
from tests.dashboard.conftest import Seeded
from tests.dashboard.test_rollup import mixed_history


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def counted(conn: Connection) -> dict[str, int]:
    return {str(day): int(n) for day, n in conn.execute(select(reader_days)) if n}


def from_daily_readers(conn: Connection) -> dict[str, int]:
    t = daily_readers.c
    return {str(d): int(n) for d, n in conn.execute(select(t.day, func.count()).group_by(t.day))}


def from_clicks(conn: Connection) -> dict[str, int]:
    """Each reader hash once, on the first UTC day it clicked (what ingest keeps)."""
    first: dict[int, str] = {}
    for c in conn.execute(select(clicks.c.at, clicks.c.reader).where(clicks.c.kind == "reader")):
        key = reader_key(c.reader)
        if key is not None:
            day = _utc(c.at).strftime("%Y-%m-%d")
            first[key] = min(first.get(key, day), day)
    return dict(Counter(first.values()))


def check(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        got = counted(conn)
        assert got == from_daily_readers(conn) == from_clicks(conn)
    assert got
    return got


def test_reader_days_follow_daily_readers_and_the_dashboard_total_is_the_raw_one(
    any_seeded: Seeded,
) -> None:
    engine = any_seeded.site.engine
    check(engine)
    mixed_history(any_seeded)  # every click ingested again, one new reader
    days = check(engine)

    first = min(days)
    with engine.begin() as conn:  # the triggers for readers added to a day, removed, moved
        conn.execute(daily_readers.insert(), [{"reader_key": k, "day": first} for k in (-1, -2)])
        one, other = conn.execute(
            select(daily_readers.c.reader_key).where(daily_readers.c.day == first).limit(2)
        ).scalars()
        conn.execute(daily_readers.delete().where(daily_readers.c.reader_key == one))
        conn.execute(
            daily_readers.update()
            .where(daily_readers.c.reader_key == other)
            .values(day="2000-01-01")
        )
        now = counted(conn)
        assert now == from_daily_readers(conn)
    assert now[first] == days[first] and now["2000-01-01"] == 1

    periods = [
        Filters(timezone=seed.ZONE),
        Filters(seed.FIRST_DAY, seed.FIRST_DAY, timezone=seed.ZONE),
        Filters(seed.FIRST_DAY, seed.FIRST_DAY + timedelta(days=3)),
    ]
    with engine.connect() as conn:
        for f in periods:
            raw = ReadModel(conn, f).report(()).totals.unique_readers
            assert queries.RollupModel(conn, f).report(()).totals.unique_readers == raw, f


def test_the_upgrade_fills_reader_days_from_the_readers_stored(any_seeded: Seeded) -> None:
    engine = any_seeded.site.engine
    before = check(engine)
    command.downgrade(db.alembic_config(engine), "0016_guard")
    db.upgrade(engine)
    assert check(engine) == before
