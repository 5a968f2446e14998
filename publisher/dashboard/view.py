"""The dashboard's sections as the page shows them: charts, tables and sentences, formatted
with Babel in the owner's locale (money per currency, dates, times, percentages).

One function, :func:`sections`, feeds the web page, the self-contained HTML file and the
digest, so the three always show the same figures.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_currency, format_decimal, format_percent

from publisher.dashboard import charts, stats
from publisher.dashboard.queries import CALENDAR_LIMIT, CALENDAR_STATES, Dashboard, buckets
from publisher.tracking.report import Row
from publisher.web import i18n as web_i18n

LOCALES = {"zh": "zh_CN", "en": "en_GB", "de": "de_DE"}  # a language's locale by default
TABLE_ROWS = 30  # rows of a ranked table on the page (the report has them all)
STORE_ROWS = 10  # channel and story pairs shown per store
Gettext = Callable[..., str]


def locale_for(lang: str, owner_locale: str | None) -> str:
    """The locale figures are written in: the owner's when it speaks the page's language
    (de_CH on a German page), else that language's default (a German page never shows
    English month names because the owner's locale is en_US)."""
    if owner_locale and web_i18n.language_of(owner_locale) == lang:
        return owner_locale
    return LOCALES.get(lang, "en_GB")


@dataclass
class Format:
    """Numbers, money, dates and times in one locale; times in one time zone."""

    locale: str
    timezone: str = "UTC"
    _numbers: dict[tuple[type, int | float], str] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # times and days, each written once per page (the calendar's 300 rows share a few dozen)
    _texts: dict[tuple[str, object], str] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @cached_property
    def _babel(self) -> Locale:
        """The locale parsed once: Babel parses a locale's name on every call given one, some
        ten thousand times a page."""
        return Locale.parse(self.locale)

    def local(self, at: datetime) -> datetime:
        return at.astimezone(ZoneInfo(self.timezone))

    def time(self, at: datetime) -> str:
        key = ("time", at)
        found = self._texts.get(key)
        if found is None:
            found = self._texts[key] = format_time(self.local(at), "short", locale=self._babel)
        return found

    def moment(self, at: datetime) -> str:
        return format_datetime(self.local(at), "medium", locale=self._babel)

    def n(self, value: int | float) -> str:
        """A number, each one formatted once per page (the tables repeat many)."""
        key = (type(value), value)
        found = self._numbers.get(key)
        if found is None:
            found = self._numbers[key] = format_decimal(value, locale=self._babel)
        return found

    def pct(self, value: float | None) -> str:
        return "–" if value is None else format_percent(value, "#,##0.0%", locale=self._babel)

    def money(self, revenue: Mapping[str, int]) -> str:
        if not revenue:
            return "–"
        return " + ".join(
            format_currency(Decimal(v) / 100, c, locale=self._babel)
            for c, v in sorted(revenue.items())
        )

    def day(self, value: date, form: str = "medium") -> str:
        key = (form, value)
        found = self._texts.get(key)
        if found is None:
            found = self._texts[key] = format_date(value, form, locale=self._babel)
        return found

    def short_day(self, value: date) -> str:
        key = ("short_day", value)  # no form of format_date is called so
        found = self._texts.get(key)
        if found is None:
            pattern = "MMMd" if self.locale.startswith("zh") else "d MMM"
            found = self._texts[key] = format_date(value, pattern, locale=self._babel)
        return found


@dataclass
class Section:
    id: str
    title: str
    chart: charts.Chart | None
    headers: list[str]
    rows: list[list[Any]]  # a cell is text, or (text, a note shown under it)
    notes: list[str] = field(default_factory=list)
    numeric: list[bool] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def stages(row: Row, _: Gettext) -> list[tuple[str, int | None, str]]:
    """The funnel's steps: (label, count, note); revenue is shown apart."""
    return [
        (_("Posts sent"), row.deliveries, ""),
        (_("Link previews and bots"), row.bot_fetches, _("not counted as readers")),
        (_("Clicks"), row.clicks, ""),
        (_("Unique readers"), row.unique_readers, ""),
        (_("Codes claimed"), row.codes_claimed, ""),
        (_("Online sales and leads"), row.online_sales + row.leads, ""),
        (_("In-shop sales via a tracked link"), row.redemptions_linked, ""),
        (
            _("In-shop sales with a code only"),
            row.redemptions_code_only,
            _("posters, codes in posts, codes passed on"),
        ),
    ]


def verdict_text(v: stats.ChannelVerdict, _: Gettext, f: Format) -> str:
    fig = v.figures
    posts, readers = f.n(fig.posts), f.n(fig.readers)
    if v.verdict is stats.Verdict.TOO_EARLY:
        return _(
            "Too early to say: {posts} posts, {readers} readers "
            "(a verdict needs {min_posts} posts and {min_readers} readers)."
        ).format(
            posts=posts, readers=readers, min_posts=stats.MIN_POSTS, min_readers=stats.MIN_READERS
        )
    if v.verdict is stats.Verdict.NO_READERS:
        return _("Brings almost no readers after {posts} posts: consider dropping it.").format(
            posts=posts
        )
    if v.verdict is stats.Verdict.NO_CUSTOMERS:
        return _(
            "Brings readers but no customers after {posts} posts: consider dropping it."
        ).format(posts=posts)
    if v.verdict is stats.Verdict.WEAKER:
        return _(
            "Converts fewer readers than your other channels ({rate} against {others}): "
            "consider dropping it or posting differently."
        ).format(rate=f.pct(v.interval.rate), others=f.pct(v.others.rate))
    if v.verdict is stats.Verdict.STRONGER:
        return _(
            "Converts more readers than your other channels ({rate} against {others}): "
            "post more here."
        ).format(rate=f.pct(v.interval.rate), others=f.pct(v.others.rate))
    return _("Converts about as well as your other channels: keep it.")


def state_label(state: str, _: Gettext) -> str:
    labels = {
        "upcoming": _("upcoming"),
        "sent": _("sent"),
        "failed": _("failed"),
        "unknown": _("unknown, being checked"),
        "held": _("held for you"),
        "cancelled": _("cancelled"),
    }
    return labels[state]


def rate(row: Row) -> float | None:
    """Converted readers per unique reader, unrounded (the report's ``conversion_rate`` is
    rounded to four places; rounding that again for the page could show 24.8 % for 24.747 %)."""
    if not row.unique_readers:
        return None
    return min(row.converted_readers, row.unique_readers) / row.unique_readers


def _interval(i: stats.Interval, f: Format) -> str:
    return f"{f.pct(i.low)} – {f.pct(i.high)}"


def sections(data: Dashboard, _: Gettext, f: Format) -> list[Section]:
    return [
        funnel_section(data, _, f),
        series_section(data, _, f),
        channels_section(data, _, f),
        stories_section(data, _, f),
        variants_section(data, _, f),
        stores_section(data, _, f),
        calendar_section(data, _, f),
        brought_section(data, _, f),
    ]


def brought_section(data: Dashboard, _: Gettext, f: Format) -> Section:
    """Friends who redeemed a customer's referral code, on the row of the story and channel
    that brought the first customer of the chain (docs/CUSTOMERS.md says so)."""
    ranked = sorted(data.brought.items(), key=lambda item: (-item[1], item[0]))
    return Section(
        "referrals",
        _("Customers brought by customers"),
        None,
        [_("Story"), _("Channel"), _("Friends who came")],
        [[story, channel, f.n(n)] for (story, channel), n in ranked],
        numeric=[False, False, True],
    )


def funnel_section(data: Dashboard, _: Gettext, f: Format) -> Section:
    steps = stages(data.funnel, _)
    short = [  # the chart's labels: short, so a phone keeps room for the bars (the table
        _("Posts"),  # beside it names each step in full)
        _("Previews, bots"),
        _("Clicks"),
        _("Readers"),
        _("Codes"),
        _("Online"),
        _("Shop via link"),
        _("Shop, code only"),
    ]
    chart = charts.bars(
        "funnel",
        _("From posts to sales"),
        short,
        [(_("count"), [s[1] or 0 for s in steps])],
        horizontal=True,
    )
    rows: list[list[Any]] = [[(label, note), f.n(count or 0)] for label, count, note in steps]
    rate_note = _("readers who bought or signed up through their click, per unique reader")
    rows.append([(_("Conversion rate"), rate_note), f.pct(rate(data.funnel))])
    rows.append([(_("Revenue"), _("online and in the shop")), f.money(data.funnel.revenue)])
    rows.append([(_("In-shop revenue"), ""), f.money(data.funnel.shop_revenue)])
    return Section(
        "funnel", _("Funnel"), chart, [_("Step"), _("Count")], rows, numeric=[False, True]
    )


def _readers_of(point: Any) -> int | None:
    """Unique readers of a day and channel, when the query gives them (``readers``)."""
    found = getattr(point, "readers", None)
    return None if found is None else int(found)


def series_section(data: Dashboard, _: Gettext, f: Format) -> Section:
    days = buckets(data.filters, data.grain) or sorted({p.start for p in data.series})
    channels = sorted({p.channel for p in data.series})
    index = {(p.start, p.channel): p for p in data.series}
    unique = any(_readers_of(p) is not None for p in data.series)
    weekly = data.grain == "week"

    def reach(p: Any) -> int:
        readers = _readers_of(p)
        return int(p.clicks) if readers is None else readers

    readers = [
        (c, [float(reach(index[(d, c)])) if (d, c) in index else 0.0 for d in days])
        for c in channels
    ]
    converted = [
        (c, [float(index[(d, c)].conversions) if (d, c) in index else 0.0 for d in days])
        for c in channels
    ]
    labels = [f.short_day(d) for d in days]
    if unique:
        title = (
            _("Readers per week (each day's unique readers added up)")
            if weekly
            else _("Unique readers per day")
        )
        column = _("{channel}: readers")
    else:
        title = _("Reader clicks per week") if weekly else _("Reader clicks per day")
        column = _("{channel}: clicks")
    chart = charts.lines("series", title, labels, readers) if channels else None
    second = (
        charts.lines(
            "series-conversions",
            _("Conversions per week") if weekly else _("Conversions per day"),
            labels,
            converted,
        )
        if channels
        else None
    )
    rows = []
    for d in days:
        cells = [f.short_day(d)]
        revenue: dict[str, int] = {}
        for c in channels:
            p = index.get((d, c))
            cells += [f.n(reach(p) if p else 0), f.n(p.conversions if p else 0)]
            for currency, value in (p.revenue if p else {}).items():
                revenue[currency] = revenue.get(currency, 0) + value
        rows.append([*cells, f.money(revenue)])
    headers = [_("Week of") if weekly else _("Day")]
    for c in channels:
        headers += [column.format(channel=c), _("{channel}: conversions").format(channel=c)]
    headers.append(_("Revenue"))
    notes = []
    if unique and weekly:
        notes.append(_("A reader who came back on another day of the week counts again."))
    return Section(
        "over-time",
        _("Over time"),
        chart,
        headers,
        rows,
        notes=notes,
        numeric=[False] + [True] * (len(headers) - 1),
        extra={"second": second},
    )


def channels_section(data: Dashboard, _: Gettext, f: Format) -> Section:
    lines = data.channels
    chart = (
        charts.bars(
            "channels",
            _("Readers who converted, per unique reader (95% interval)"),
            [str(c.row.key[0]) for c in lines],
            [(_("conversion rate"), [c.verdict.interval.rate or 0.0 for c in lines])],
            percent=True,
            intervals=[[(c.verdict.interval.low, c.verdict.interval.high) for c in lines]],
        )
        if lines
        else None
    )
    rows = [
        [
            str(c.row.key[0]),
            f.n(c.row.deliveries),
            f.n(c.row.unique_readers),
            f.n(c.row.converted_readers),
            f.pct(rate(c.row)),
            _interval(c.verdict.interval, f),
            f.n(c.row.redemptions_code_only),
            verdict_text(c.verdict, _, f),
        ]
        for c in lines
    ]
    return Section(
        "channels",
        _("Channels compared"),
        chart,
        [
            _("Channel"),
            _("Posts"),
            _("Readers"),
            _("Converted"),
            _("Rate"),
            _("95% interval"),
            _("Code-only sales"),
            _("Verdict"),
        ],
        rows,
        numeric=[False, True, True, True, True, True, True, False],
        extra={
            "verdicts": {str(c.row.key[0]): c.verdict.verdict.value for c in lines},
            "wide": True,
        },
    )


def stories_section(data: Dashboard, _: Gettext, f: Format) -> Section:
    ranked = data.stories[:15]
    chart = (
        charts.bars(
            "stories",
            _("In-shop sales by story"),
            [str(s.row.key[0]) for s in ranked],
            [(_("in-shop sales"), [s.row.redemptions for s in ranked])],
            horizontal=True,
        )
        if ranked
        else None
    )
    kind = {"stories": _("story"), "testimonials": _("testimonial")}
    rows = [
        [
            str(s.row.key[0]),
            kind.get(s.category, s.category),
            f.n(s.row.redemptions),
            f.money(s.row.shop_revenue),
            f.n(s.row.conversions),
            f.n(s.row.unique_readers),
        ]
        for s in data.stories[:TABLE_ROWS]
    ]
    compare = [
        [
            kind.get(name, name),
            f.n(r.deliveries),
            f.n(r.unique_readers),
            f.n(r.redemptions),
            f.money(r.shop_revenue),
            f.n(r.conversions),
        ]
        for name, r in sorted(data.categories.items())
    ]
    notes = []
    if len(data.stories) > TABLE_ROWS:
        more = len(data.stories) - TABLE_ROWS
        notes.append(
            _("{count} more stories: storyloop report --by story lists them all.").format(
                count=f.n(more)
            )
        )
    return Section(
        "stories",
        _("Stories ranked by what they brought into the shop"),
        chart,
        [
            _("Story"),
            _("Kind"),
            _("In-shop sales"),
            _("In-shop revenue"),
            _("Conversions"),
            _("Readers"),
        ],
        rows,
        notes=notes,
        numeric=[False, False, True, True, True, True],
        extra={
            "compare": compare,
            "compare_headers": [
                _("Kind"),
                _("Posts"),
                _("Readers"),
                _("In-shop sales"),
                _("In-shop revenue"),
                _("Conversions"),
            ],
        },
    )


def variants_section(data: Dashboard, _: Gettext, f: Format) -> Section:
    tests = data.variants
    labels = [f"{t.story} {v.variant}" for t in tests for v in t.test.variants]
    chart = (
        charts.bars(
            "variants",
            _("Probability that the headline is the best"),
            labels,
            [(_("probability of being best"), [v.p_best for t in tests for v in t.test.variants])],
            horizontal=True,
            percent=True,
        )
        if tests
        else None
    )
    rows = []
    notes = []
    for t in tests:
        for v in t.test.variants:
            rows.append(
                [
                    t.story,
                    v.variant,
                    f.n(v.readers),
                    f.n(v.converted),
                    f.pct(v.interval.rate),
                    f.pct(v.p_best),
                ]
            )
        if t.test.thin:
            notes.append(
                _("{story}: too little data yet; these probabilities will still move.").format(
                    story=t.story
                )
            )
    return Section(
        "variants",
        _("Headline variants"),
        chart,
        [_("Story"), _("Variant"), _("Readers"), _("Converted"), _("Rate"), _("Chance it is best")],
        rows,
        notes=notes,
        numeric=[False, False, True, True, True, True],
    )


def stores_section(data: Dashboard, _: Gettext, f: Format) -> Section:
    stores = sorted({str(r.key[0]) for r in data.stores})
    channels = sorted({str(r.key[1]) for r in data.stores})
    totals = {(s, c): 0 for s in stores for c in channels}
    for r in data.stores:
        totals[(str(r.key[0]), str(r.key[1]))] += r.redemptions
    chart = (
        charts.bars(
            "stores",
            _("In-shop sales per store, by channel"),
            stores,
            [(c, [totals[(s, c)] for s in stores]) for c in channels],
            stacked=True,
        )
        if stores
        else None
    )
    per_store: dict[str, list[Row]] = {}
    for r in sorted(data.stores, key=lambda r: (-r.redemptions, str(r.key[1]), str(r.key[2]))):
        per_store.setdefault(str(r.key[0]), []).append(r)
    rows = []
    notes = []
    for store in stores:
        for r in per_store[store][:STORE_ROWS]:
            rows.append(
                [
                    store,
                    str(r.key[1]),
                    str(r.key[2]),
                    f.n(r.redemptions_linked),
                    f.n(r.redemptions_code_only),
                    f.money(r.shop_revenue),
                ]
            )
        if len(per_store[store]) > STORE_ROWS:
            notes.append(
                _(
                    "{store}: the {count} channel and story pairs that sold most are shown; "
                    "storyloop report --by store,channel,story lists them all."
                ).format(store=store, count=STORE_ROWS)
            )
    return Section(
        "stores",
        _("Stores"),
        chart,
        [
            _("Store"),
            _("Channel"),
            _("Story"),
            _("Via a tracked link"),
            _("Code only"),
            _("In-shop revenue"),
        ],
        rows,
        notes=notes,
        numeric=[False, False, False, True, True, True],
    )


def calendar_section(data: Dashboard, _: Gettext, f: Format) -> Section:
    counts = {s: 0 for s in CALENDAR_STATES}
    for e in data.calendar:
        counts[e.state] += 1
    days: dict[date, list[Any]] = {}
    for e in data.calendar:  # by the day the owner reads it on, in the owner's zone
        days.setdefault(f.local(e.at).date(), []).append(e)
    notes = []
    if len(data.calendar) >= CALENDAR_LIMIT:
        notes.append(
            _(
                "Only the first {count} deliveries are shown: choose a shorter period or a channel."
            ).format(count=CALENDAR_LIMIT)
        )
    return Section(
        "calendar",
        _("Publishing calendar"),
        None,
        [_("Time"), _("Channel"), _("Story"), _("State"), _("Reason"), _("Post"), _("Actions")],
        [],
        notes=notes,
        numeric=[],
        extra={"days": sorted(days.items()), "counts": counts, "states": CALENDAR_STATES},
    )


def headline(data: Dashboard, _: Gettext, f: Format) -> list[tuple[str, str]]:
    """The few figures at the top of the page and of the digest."""
    r = data.funnel
    return [
        (_("In-shop sales"), f.n(r.redemptions)),
        (_("In-shop revenue"), f.money(r.shop_revenue).replace(" + ", "\n")),
        (_("Unique readers"), f.n(r.unique_readers)),
        (_("Conversion rate"), f.pct(rate(r))),
    ]
