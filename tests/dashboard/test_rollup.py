"""The rollup (migration 0010_rollup) against a count from scratch over the raw tables, after a
mixed history: the seed's clicks, sales and redemptions, clicks ingested twice, a sale recorded
before its click was ingested, a redemption undone; and the dashboard's figures read from the
rollup against the report's own read model over the raw tables."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from alembic import command
from sqlalchemy import Connection, Engine, select

from publisher import db
from publisher.dashboard import queries
from publisher.shop.offers import OfferBook
from publisher.shop.redeem import Sale, Status, Undo, redeem, undo
from publisher.shop.stores import stores_of
from publisher.tracking.conversions import record_online
from publisher.tracking.ingest import ingest, reader_key
from publisher.tracking.journal import Click, Journal, journal_dir
from publisher.tracking.report import Filters, ReadModel
from publisher.tracking.schema import (
    clicks,
    conversion_hours,
    conversion_readers,
    conversions,
    post_days,
)
from tests.dashboard import seed
from tests.dashboard.conftest import Seeded

FINE = ("story", "channel", "variant", "region")


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _blank(value: Any) -> Any:
    return "" if value is None else value


def from_scratch(conn: Connection) -> dict[str, Any]:
    """The three rollup tables as they must be, computed in Python from clicks and conversions."""
    days: Counter[tuple[Any, ...]] = Counter()
    bots: Counter[tuple[Any, ...]] = Counter()
    first_day: dict[tuple[Any, ...], str] = {}
    for c in conn.execute(select(clicks)):
        day = _utc(c.at).strftime("%Y-%m-%d")
        post = (day, c.story, c.channel, _blank(c.variant), _blank(c.region))
        if c.kind == "reader":
            days[post] += 1
        else:
            bots[post] += 1
        key = reader_key(c.reader) if c.kind == "reader" else None
        if key is not None:
            who = (*post[1:], key)
            first_day[who] = min(first_day.get(who, day), day)
    readers = Counter((day, *who[:4]) for who, day in first_day.items())
    post_rows = {post: (days[post], bots[post], readers[post]) for post in set(days) | set(bots)}
    hours: dict[tuple[Any, ...], list[int]] = {}
    reader_rows = {}
    clicked = {c.id: c for c in conn.execute(select(clicks))}
    for v in conn.execute(select(conversions)):
        hour = (
            _utc(v.at).strftime("%Y-%m-%d %H"),
            v.story,
            v.channel,
            _blank(v.variant),
            _blank(v.region),
            _blank(v.store),
            v.kind,
            int(v.click_id is not None),
            v.currency,
        )
        found = hours.setdefault(hour, [0, 0])
        found[0] += 1
        found[1] += v.value_minor
        origin = clicked.get(v.click_id)
        if origin is not None and origin.kind == "reader" and origin.reader is not None:
            day = _utc(origin.at).strftime("%Y-%m-%d")
            where = (v.story, v.channel, v.variant, v.region)
            reader_rows[v.id] = (*where, origin.reader[:15], day, _utc(v.at))
    return {
        "post_days": post_rows,
        "conversion_hours": {k: tuple(n) for k, n in hours.items()},
        "conversion_readers": reader_rows,
    }


def stored(conn: Connection) -> dict[str, Any]:
    h = conversion_hours.c
    return {
        "post_days": {
            (row.day, *(row._mapping[d] for d in FINE)): (
                row.reader_clicks,
                row.bot_fetches,
                row.readers,
            )
            for row in conn.execute(select(post_days))
        },
        "conversion_hours": {
            tuple(row[:9]): (row.conversions, row.value_minor)
            for row in conn.execute(
                select(
                    h.hour, *(h[d] for d in FINE), h.store, h.kind, h.linked, h.currency
                ).add_columns(h.conversions, h.value_minor)
            )
        },
        "conversion_readers": {
            row.conversion_id: (*(row._mapping[d] for d in FINE), row.reader, row.day, _utc(row.at))
            for row in conn.execute(select(conversion_readers))
        },
    }


def check(engine: Engine) -> None:
    with engine.connect() as conn:
        want, got = from_scratch(conn), stored(conn)
    for table in ("post_days", "conversion_hours", "conversion_readers"):
        assert got[table] == want[table], table
    assert want["post_days"] and want["conversion_hours"] and want["conversion_readers"]


def mixed_history(s: Seeded) -> None:
    """On top of the seed: every click journalled again and ingested (nothing may be counted
    twice), a sale recorded before its click is ingested, a redemption made and undone."""
    engine, settings = s.site.engine, s.site.settings
    with engine.connect() as conn:
        old = conn.execute(select(clicks)).all()
        code = old[0].code
    journal = Journal(journal_dir(settings.var_dir))
    for c in old:
        when = _utc(c.at).timestamp()
        journal.append(Click(c.id, c.code, when, c.kind, c.agent, c.reader, c.referrer_host))
    late = journal.new_click_id(code)
    with engine.begin() as conn:
        record_online(
            conn,
            {
                "click_id": late,
                "kind": "sale",
                "value": "12.00",
                "currency": "CNY",
                "order_id": "x",
            },
            "CNY",
        )
    now = datetime.now(UTC).timestamp()
    journal.append(Click(late, code, now, "reader", None, "f" * 32, None))
    journal.close()
    found = ingest(engine, journal_dir(settings.var_dir))
    assert (found.read, found.inserted) == (len(old) + 1, 1)

    stores = stores_of(settings)
    book = OfferBook(settings.manifest_path, stores)
    at = datetime.now(UTC)
    shared = next(iter(s.offer_codes.values()))
    with engine.begin() as conn:
        kept = redeem(
            conn,
            Sale(shared, stores["xiamen-1"], 5000, "CNY", "r-1", "till", "t", at, "req-1"),
            book,
            stores,
        )
        taken_back = redeem(
            conn,
            Sale(shared, stores["xiamen-1"], 7000, "CNY", "r-2", "till", "t", at, "req-2"),
            book,
            stores,
        )
        assert (kept.status, taken_back.status) == (Status.RECORDED, Status.RECORDED)
        assert undo(conn, "req-2", lambda store: True, at + timedelta(minutes=1)) is Undo.DONE


def test_the_rollup_equals_a_count_from_scratch_after_a_mixed_history(any_seeded: Seeded) -> None:
    engine = any_seeded.site.engine
    check(engine)
    mixed_history(any_seeded)
    check(engine)
    with engine.connect() as conn:
        late = conn.execute(
            select(conversion_readers.c.reader)
            .join(conversions, conversions.c.id == conversion_readers.c.conversion_id)
            .where(conversions.c.order_id == "x")
        ).scalar_one()
        assert late == "f" * 15  # filled in by ingest, after the sale
    periods = [
        Filters(seed.FIRST_DAY, seed.FIRST_DAY + timedelta(days=seed.DAYS), timezone=seed.ZONE),
        Filters(seed.FIRST_DAY, seed.FIRST_DAY + timedelta(days=2), timezone=seed.ZONE),
        Filters(channel="mastodon", timezone=seed.ZONE),
        Filters(store="xiamen-1", timezone=seed.ZONE),
        Filters(timezone="Asia/Kolkata"),  # not a whole hour off UTC: conversions read raw
    ]
    with engine.connect() as conn:
        for f in periods:
            raw, rolled = ReadModel(conn, f), queries.RollupModel(conn, f)
            for by in [(), ("channel",), ("story", "variant"), ("store", "channel", "story")]:
                a, b = raw.report(by), rolled.report(by)
                assert [vars(r) for r in b.rows] == [vars(r) for r in a.rows], (f, by)
                assert vars(b.totals) == vars(a.totals), (f, by)


def test_the_migration_fills_the_rollup_from_the_rows_already_stored(
    any_seeded: Seeded,
) -> None:
    engine = any_seeded.site.engine
    mixed_history(any_seeded)
    config = db.alembic_config(engine)
    command.downgrade(config, "0007_customers")
    with engine.begin() as conn:  # without the triggers, nothing keeps the rollup
        conn.execute(conversions.delete().where(conversions.c.order_id == "x"))
    db.upgrade(engine)
    check(engine)
