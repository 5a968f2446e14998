"""How the dashboard writes its sections: "over time" shows unique readers per day and channel
when the query gives them, clicks (labelled so) when it does not; the owner's locale decides
money, dates and times; rates are not rounded twice."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

from publisher.dashboard import queries, view
from publisher.tracking.report import Filters
from tests.dashboard import seed
from tests.dashboard.conftest import Seeded

SINCE, UNTIL = seed.FIRST_DAY, seed.FIRST_DAY + timedelta(days=seed.DAYS - 1)


def _(text: str, **_kw: object) -> str:
    return text


def unique_readers_per_day(h: seed.History) -> dict[tuple[date, str], int]:
    """Unique readers of each (UTC) day and channel, from the seed's clicks: each post's
    distinct readers of the day, added up over the channel's posts (as the report counts)."""
    seen: dict[tuple[date, str, str], set[str]] = {}
    for c in h.clicks:
        if not c.bot and SINCE <= c.at.date() <= UNTIL:
            key = (c.at.date(), h.delivery(c.delivery).channel, c.delivery)
            seen.setdefault(key, set()).add(c.reader)
    out: dict[tuple[date, str], int] = {}
    for (day, channel, _post), readers in seen.items():
        out[(day, channel)] = out.get((day, channel), 0) + len(readers)
    return out


@dataclasses.dataclass(frozen=True)
class WithReaders(queries.SeriesPoint):
    """A series point as the rollup's query gives it: with the day's unique readers."""

    readers: int = 0


def test_over_time_shows_unique_readers_per_day_when_the_query_gives_them(
    seeded: Seeded,
) -> None:
    data = queries.load(seeded.site.engine, Filters(since=SINCE, until=UNTIL, timezone=seed.ZONE))
    want = unique_readers_per_day(seeded.history)
    fmt = view.Format("en_GB", seed.ZONE)
    if any(p.readers is not None for p in data.series):  # the rollup's query: as it is
        shown = view.series_section(data, _, fmt)
    else:  # the points it will give, its readers counted here from the seed
        data.series = [
            WithReaders(**dataclasses.asdict(p), readers=want.get((p.start, p.channel), 0))
            for p in data.series
        ]
        shown = view.series_section(data, _, fmt)
    assert shown.chart is not None and shown.chart.title == "Unique readers per day"
    column = shown.headers.index("mastodon: readers")
    first = next(r for r in shown.rows if r[0] == fmt.short_day(SINCE))
    assert first[column] == str(want[(SINCE, "mastodon")])
    assert sum(int(r[column]) for r in shown.rows) == sum(
        n for (_day, channel), n in want.items() if channel == "mastodon"
    )

    weekly = dataclasses.replace(data, grain="week")
    weekly.series = [  # a week adds its days up
        WithReaders(start=monday, channel="mastodon", clicks=0, conversions=0, revenue={},
                    readers=sum(n for (d, c), n in want.items()
                                if c == "mastodon" and d - timedelta(d.weekday()) == monday))
        for monday in (SINCE, SINCE + timedelta(days=7))
    ]  # fmt: skip
    by_week = view.series_section(weekly, _, fmt)
    assert by_week.chart is not None and by_week.chart.title.startswith("Readers per week")
    assert any("counts again" in n for n in by_week.notes)


def test_over_time_without_readers_says_clicks(seeded: Seeded) -> None:
    data = queries.load(seeded.site.engine, Filters(since=SINCE, until=UNTIL, timezone=seed.ZONE))
    data.series = [
        queries.SeriesPoint(p.start, p.channel, p.clicks, p.conversions, p.revenue)
        for p in data.series
    ]
    shown = view.series_section(data, _, view.Format("en_GB", seed.ZONE))
    assert shown.chart is not None and shown.chart.title == "Reader clicks per day"
    assert "mastodon: clicks" in shown.headers


def test_the_owner_s_locale_writes_money_dates_and_times() -> None:
    assert view.locale_for("de", "de_CH") == "de_CH"
    assert view.locale_for("en", "de_CH") == "en_GB"  # an English page: English month names
    assert view.locale_for("zh", None) == "zh_CN"
    us = view.Format("en_US", "Europe/Berlin")
    assert us.money({"EUR": 123450}) == "€1,234.50"
    assert us.day(date(2026, 3, 2)) == "Mar 2, 2026"
    moment = seed.local(SINCE, 9, 30)  # 09:30 in Shanghai is 02:30 in Berlin
    assert us.time(moment).replace("\u202f", " ") == "2:30 AM"
    swiss = view.Format("de_CH", seed.ZONE)
    assert swiss.money({"CNY": 913800}) == "CN¥\xa09'138.00" and swiss.time(moment) == "09:30"
