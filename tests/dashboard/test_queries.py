"""The dashboard's figures against what the seeded history implies, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import insert

from publisher.dashboard import queries, stats
from publisher.tracking import report
from publisher.tracking.report import Filters
from publisher.tracking.schema import conversions
from tests.dashboard import expect, seed
from tests.dashboard.conftest import Seeded

SINCE, UNTIL = seed.FIRST_DAY, seed.FIRST_DAY + timedelta(days=seed.DAYS - 1)


def period(**kw: object) -> Filters:
    return Filters(since=SINCE, until=UNTIL, timezone=seed.ZONE, **kw)  # type: ignore[arg-type]


def test_funnel_and_sections_show_what_the_seed_implies(any_seeded: Seeded) -> None:
    h = any_seeded.history
    data = queries.load(any_seeded.site.engine, period())
    want = expect.figures(h, since=SINCE, until=UNTIL)
    f = data.funnel
    assert (f.deliveries, f.bot_fetches, f.clicks) == (want.posts, want.bots, want.clicks)
    assert f.codes_claimed == want.codes > want.linked  # some readers claim and never come
    assert (f.unique_readers, f.converted_readers) == (len(want.readers), len(want.converted))
    assert (f.online_sales, f.redemptions_linked, f.redemptions_code_only) == (
        want.sales,
        want.linked,
        want.code_only,
    )
    assert f.revenue == want.revenue and f.shop_revenue == want.shop_revenue

    channels = expect.by(h, "channel", since=SINCE, until=UNTIL)
    for line in data.channels:
        name = str(line.row.key[0])
        assert line.row.unique_readers == channels[name].readers_of_posts, name
        assert line.row.converted_readers == channels[name].converted_of_posts, name
        assert line.row.redemptions_code_only == channels[name].code_only, name
    mastodon = channels["mastodon"]
    assert mastodon.readers_of_posts == len(mastodon.readers) + 1  # the reader of two posts
    verdicts = {str(line.row.key[0]): line.verdict.verdict for line in data.channels}
    assert verdicts["telegram"] is stats.Verdict.NO_CUSTOMERS
    assert verdicts["email"] is stats.Verdict.TOO_EARLY  # 12 posts, but fewer than 100 readers

    assert [str(s.row.key[0]) for s in data.stories] == expect.story_ranking(
        h, since=SINCE, until=UNTIL
    )
    assert {s.category for s in data.stories if s.row.key[0] == "chen-review"} == {"testimonials"}

    kitchen = next(v for v in data.variants if v.story == "kitchen")
    for chance in kitchen.test.variants:

        def kitchen_variant(d: seed.Delivery, v: str | None = chance.variant) -> bool:
            return d.story == "kitchen" and d.variant == v

        mine = expect.figures(h, since=SINCE, until=UNTIL, keep=kitchen_variant)
        assert (chance.readers, chance.converted) == (
            mine.readers_of_posts,
            mine.converted_of_posts,
        )
    assert abs(sum(c.p_best for c in kitchen.test.variants) - 1) < 1e-9

    for store in ("xiamen-1", "berlin-1"):
        mine = expect.figures(h, since=SINCE, until=UNTIL, store=store)
        rows = [r for r in data.stores if r.key[0] == store]
        assert sum(r.redemptions_linked for r in rows) == mine.linked
        assert sum(r.redemptions_code_only for r in rows) == mine.code_only


def test_no_rate_exceeds_one_even_when_one_reader_buys_many_times(any_seeded: Seeded) -> None:
    """Every online sale of the seed again, from the same clicks: more conversions than
    readers in some groups, and still no rate above 100 %."""
    engine = any_seeded.site.engine
    with engine.begin() as conn:
        rows = conn.execute(conversions.select().where(conversions.c.click_id.is_not(None))).all()
        again = [
            {**r._mapping, "dedupe_key": f"again:{r.id}:{n}", "id": None}
            for r in rows
            for n in range(5)
        ]
        for fresh in again:
            fresh.pop("id")
        conn.execute(insert(conversions), again)
    more_than_readers = 0
    for by in [("story",), ("channel",), ("story", "channel", "variant"), ()]:
        result = report.build(engine, by, filters=period())
        for row in [*result.rows, result.totals]:
            assert row.conversion_rate is None or 0 <= row.conversion_rate <= 1, row
            more_than_readers += row.unique_readers and row.conversions > row.unique_readers
    assert more_than_readers  # the case the old definition got wrong is really there


def test_filters_narrow_every_section(any_seeded: Seeded) -> None:
    h = any_seeded.history
    engine = any_seeded.site.engine
    telegram = queries.load(engine, period(channel="telegram"))
    want = expect.figures(h, since=SINCE, until=UNTIL, keep=lambda d: d.channel == "telegram")
    assert telegram.funnel.unique_readers == len(want.readers)
    assert [p.clicks for p in telegram.series if p.start == SINCE] == [
        sum(
            1
            for c in h.clicks
            if not c.bot and c.delivery in want.post_readers and expect.local_day(c.at) == SINCE
        )
    ]
    assert telegram.funnel.redemptions == 0 and [c.row.key for c in telegram.channels] == [
        ("telegram",)
    ]
    assert {e.channel for e in telegram.calendar} == {"telegram"}

    xiamen = queries.load(engine, period(store="xiamen-1"))
    mine = expect.figures(h, since=SINCE, until=UNTIL, store="xiamen-1")
    assert xiamen.funnel.redemptions == mine.in_shop
    assert xiamen.funnel.unique_readers == 0 and xiamen.funnel.deliveries == 0
    assert {r.key[0] for r in xiamen.stores} == {"xiamen-1"}

    first_week = queries.load(engine, period(), grain="week")
    weeks = {p.start for p in first_week.series}
    assert weeks <= {SINCE, SINCE + timedelta(days=7)} and all(w.weekday() == 0 for w in weeks)

    one_day = Filters(since=SINCE, until=SINCE, timezone=seed.ZONE)
    day = queries.load(engine, one_day)
    assert day.funnel.unique_readers == len(expect.figures(h, since=SINCE, until=SINCE).readers)


def test_a_sale_just_after_midnight_belongs_to_the_site_s_day(any_seeded: Seeded) -> None:
    """00:30 on the 21st in Xiamen is 16:30 UTC on the 20th: the sale is on the 21st."""
    engine = any_seeded.site.engine
    day = date(2026, 3, 21)
    late = datetime(2026, 3, 20, 16, 30, tzinfo=UTC)
    d = any_seeded.history.deliveries[0]
    row = {
        "dedupe_key": "late",
        "kind": "sale",
        "click_id": None,
        "offer_code": None,
        "delivery_id": d.id,
        "story": d.story,
        "channel": d.channel,
        "variant": d.variant,
        "region": "xiamen",
        "value_minor": 100,
        "currency": "CNY",
        "order_id": "late",
        "store": None,
        "source": "api",
        "at": late,
    }
    with engine.begin() as conn:
        conn.execute(insert(conversions), [row])
    on_the_day = report.build(engine, (), filters=Filters(day, day, timezone=seed.ZONE))
    utc_day = day - timedelta(days=1)
    before = report.build(engine, (), filters=Filters(utc_day, utc_day, timezone=seed.ZONE))
    assert (on_the_day.totals.online_sales, before.totals.online_sales) == (1, 0)
    series = queries.series_for(engine, Filters(utc_day, day, timezone=seed.ZONE))
    assert [(p.start, p.conversions) for p in series] == [(day, 1)]
