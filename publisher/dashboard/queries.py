"""What the dashboard shows, read from the ledger and the tracking tables for one period.

Every section of the page is a plain value built here, so the page, the HTML export, the digest
and the tests read the same figures. The funnel, channels, stories, variants and stores share
one :class:`RollupModel` (one pass over the additive figures); the series and the calendar
have their own grouped queries. Clicks, readers and conversions come from the rollup that
ingest and the triggers on ``conversions`` keep (migration ``0010_rollup``, docs/TRACKING.md,
"The rollup"), never from the raw clicks.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Connection,
    Date,
    DateTime,
    Engine,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.sql.elements import ColumnElement

from publisher import ledger
from publisher.dashboard import stats
from publisher.tracking import report
from publisher.tracking.report import FINE, Filters, Key, ReadModel, Row
from publisher.tracking.schema import (
    conversion_hours,
    conversion_readers,
    conversions,
    post_days,
    reader_days,
)

GRAINS = ("day", "week")
DEFAULT_DAYS = 28
CALENDAR_LIMIT = 300  # deliveries shown in the calendar for one period
VARIANT_STORIES = 12  # stories whose variants are compared: those with the most readers

# How the calendar names a delivery's state (ledger state -> what the owner sees).
UPCOMING, SENT, FAILED, UNKNOWN, HELD, CANCELLED = (
    "upcoming",
    "sent",
    "failed",
    "unknown",
    "held",
    "cancelled",
)
CALENDAR_STATES = (UPCOMING, SENT, FAILED, UNKNOWN, HELD, CANCELLED)


def default_period(timezone: str, today: date | None = None) -> tuple[date, date]:
    """The last four weeks, today included, in the site's time zone."""
    now = today or datetime.now(ZoneInfo(timezone)).date()
    return now - timedelta(days=DEFAULT_DAYS - 1), now


@dataclass(frozen=True)
class SeriesPoint:
    start: date  # the bucket's first local day (a Monday for weeks)
    channel: str
    clicks: int  # reader clicks
    conversions: int
    revenue: Mapping[str, int]
    readers: int | None = None  # unique readers: each post's readers of the day, added up


@dataclass(frozen=True)
class ChannelLine:
    row: Row
    verdict: stats.ChannelVerdict


@dataclass(frozen=True)
class StoryLine:
    row: Row
    category: str  # "stories" | "testimonials" (from the ledger; "stories" when unknown)


@dataclass(frozen=True)
class StoryVariants:
    story: str
    rows: list[Row]
    test: stats.VariantTest


@dataclass(frozen=True)
class CalendarEntry:
    id: str
    day: date  # local day of its time
    at: datetime  # sent, or next attempt, or due (UTC)
    story: str
    channel: str
    variant: str | None
    state: str  # one of CALENDAR_STATES
    ledger_state: str
    reason: str | None
    url: str | None
    can_retry: bool
    can_cancel: bool
    can_resolve: bool


@dataclass
class Dashboard:
    filters: Filters
    grain: str
    funnel: Row
    series: list[SeriesPoint]
    channels: list[ChannelLine]
    stories: list[StoryLine]
    categories: dict[str, Row]
    variants: list[StoryVariants]
    stores: list[Row]  # keyed (store, channel, story), in-shop sales only
    calendar: list[CalendarEntry]
    options: dict[str, list[str]] = field(default_factory=dict)
    # friends brought through referral codes, by the (story, channel) that started the chain
    brought: dict[tuple[str, str], int] = field(default_factory=dict)
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class RollupModel(ReadModel):
    """The report's read model over the rollup: conversions per post and UTC hour
    (``conversion_hours``), readers per post and day (``post_days``) and converted readers from
    ``conversion_readers``, each giving the figures the raw tables give. A site whose time
    zone is not a whole number of hours off UTC during the period reads conversions from the
    raw table: its days do not begin on a UTC hour."""

    def __init__(self, conn: Connection, filters: Filters) -> None:
        super().__init__(conn, filters)
        self.hourly = _slot_minutes(filters) == 60
        self._post_readers: dict[Key, int] | None = None
        self._all_readers: int | None = None

    def _conversion_groups(self) -> Any:
        if not self.hourly:
            return super()._conversion_groups()
        t = conversion_hours.c
        fine = [t[d] for d in FINE]
        extra = (t.store, t.kind, t.linked, t.currency)
        query = select(*fine, *extra, func.sum(t.conversions), func.sum(t.value_minor))
        query = query.where(*report._where(conversion_hours, self.filters, store=True))
        # SQLite's planner takes the primary key's hour range and sorts some 20,000 rows per
        # page; with the hour as an expression it reads the covering index (0015_dash) in
        # this grouping's order instead, the range checked in the index
        hour = t.hour.concat("") if self.conn.dialect.name == "sqlite" else t.hour
        query = query.where(*_hours(hour, self.filters)).group_by(*fine, *extra)
        return [
            (*fine_values, store or None, kind, bool(linked), currency, count, value)
            for *fine_values, store, kind, linked, currency, count, value in self.conn.execute(
                query
            ).all()
        ]

    def readers(self, by: Sequence[str]) -> dict[Key, int]:
        if not by and not self.filters.values():
            # every reader of the period once: a reader hash belongs to one day, so this is
            # the days' counts of daily_readers added up (kept in reader_days, 0017_dash)
            if self._all_readers is None:
                t = reader_days.c
                total = select(func.sum(t.readers)).where(*report._days(t.day, self.filters))
                self._all_readers = int(self.conn.execute(total).scalar_one() or 0)
            return {(): self._all_readers}
        if self.filters.store is not None or not by:
            return super().readers(by)
        if self._post_readers is None:
            t = post_days.c
            fine = [t[d] for d in FINE]
            query = select(*fine, func.sum(t.readers))
            query = query.where(*report._where(post_days, self.filters))
            query = query.where(*report._days(t.day, self.filters)).group_by(*fine)
            self._post_readers = {
                _post_key(key): int(n) for *key, n in self.conn.execute(query).all() if n
            }
        return report._roll_up(self._post_readers, by)

    def in_shop(self) -> list[Row]:
        """The rows of the ("store", "channel", "story") grouping that have a store (in-shop
        sales; no readers), ordered as the report orders them: rolled up from the cube's rows
        that have a store, a few hundred, where the whole grouping adds up and sorts one row
        per channel and story as well (5,000 at scale 1) that no store section shows."""
        grouped: dict[Key, Row] = {}
        for key, fine in self._dense().items():  # a key with a store has conversions
            story, channel, _, _, store = key
            if store is None:
                continue
            target = (store, channel, story)
            found = grouped.get(target)
            if found is None:
                found = grouped[target] = Row(target)
            found.add(fine)
        return sorted(grouped.values(), key=report.sort_key)

    def _converted(self) -> tuple[dict[Key, int], int]:
        if self._converted_cache is None:
            t = conversion_readers.c
            f = self.filters
            where = [
                *report._where(conversion_readers, f),
                *report._between(t.at, f),
                *report._days(t.day, f),
            ]
            fine = [t[d] for d in FINE]
            per_post = select(*fine, func.count(func.distinct(t.reader))).where(*where)
            counts = {
                _post_key(key): int(n)
                for *key, n in self.conn.execute(per_post.group_by(*fine)).all()
            }
            # readers grouped, then counted: PostgreSQL hashes them (or SQLite walks the
            # reader index) where COUNT(DISTINCT ...) sorts all of them, twice the time
            readers = select(t.reader).where(*where).group_by(t.reader).subquery()
            everyone = select(func.count()).select_from(readers)
            self._converted_cache = (counts, int(self.conn.execute(everyone).scalar_one()))
        return self._converted_cache


def _post_key(values: Sequence[Any]) -> Key:
    """A post's key from the rollup's text columns ("" is a missing value), as
    ``report._none`` makes it, written out for the some 2,500 keys a page reads."""
    story, channel, variant, region = values
    return (
        None if story is None or story == "" else str(story),
        None if channel is None or channel == "" else str(channel),
        None if variant is None or variant == "" else str(variant),
        None if region is None or region == "" else str(region),
    )


def _hours(column: ColumnElement[Any], f: Filters) -> list[ColumnElement[bool]]:
    """The period as a range of the rollup's UTC hours (exact when its days begin on one)."""
    start, end = f.window()
    out = []
    if start:
        out.append(column >= start.strftime("%Y-%m-%d %H"))
    if end:
        out.append(column < end.strftime("%Y-%m-%d %H"))
    return out


def load(engine: Engine, filters: Filters, grain: str = "day") -> Dashboard:
    if grain not in GRAINS:
        grain = "day"
    with engine.connect() as conn:
        model = RollupModel(conn, filters)
        # finest groupings first: each coarser one is rolled up from one already served
        variants = model.report(("story", "variant"))
        shops = model.in_shop()
        by_story = model.report(("story",))
        channels = channel_lines(model.report(("channel",)))
        funnel = model.report(()).totals
        categories = story_categories(conn)
        stories = [StoryLine(r, categories.get(str(r.key[0]), "stories")) for r in by_story.rows]
        by_category: dict[str, Row] = {}
        for line in stories:
            by_category.setdefault(line.category, Row((line.category,))).add(line.row)
        for line in stories:  # readers add up per post, so per story too
            found = by_category[line.category]
            found.unique_readers += line.row.unique_readers
            found.converted_readers += line.row.converted_readers
        return Dashboard(
            filters=filters,
            grain=grain,
            funnel=funnel,
            series=series(conn, filters, grain),
            channels=channels,
            stories=stories,
            categories=by_category,
            variants=variant_tests(variants),
            stores=shops,
            calendar=calendar(conn, filters),
            options=options(conn, stories=categories),
            brought=model.brought_by_customers(),
        )


def story_categories(conn: Connection) -> dict[str, str]:
    d = ledger.deliveries.c
    query = select(d.story, func.max(d.category)).group_by(d.story)
    return {s: c for s, c in conn.execute(query).all()}


def channel_lines(result: report.Report) -> list[ChannelLine]:
    figures = [
        stats.ChannelFigures(
            str(r.key[0]),
            r.deliveries,
            r.unique_readers,
            r.converted_readers,
            r.redemptions_code_only,
        )
        for r in result.rows
    ]
    judged = stats.verdicts(figures)
    return [ChannelLine(r, v) for r, v in zip(result.rows, judged, strict=True)]


def variant_tests(result: report.Report) -> list[StoryVariants]:
    by_story: dict[str, list[Row]] = {}
    for r in result.rows:
        if r.key[1] is not None:
            by_story.setdefault(str(r.key[0]), []).append(r)
    out = []
    tested = [(story, rows) for story, rows in by_story.items() if len(rows) >= 2]
    tested.sort(key=lambda item: (-sum(r.unique_readers for r in item[1]), item[0]))
    for story, rows in sorted(tested[:VARIANT_STORIES]):
        rows.sort(key=lambda r: str(r.key[1]))
        test = stats.p_best({str(r.key[1]): (r.converted_readers, r.unique_readers) for r in rows})
        out.append(StoryVariants(story, rows, test))
    return out


# --------------------------------------------------------------------------- over time


def _bucket(day: date, grain: str) -> date:
    return day - timedelta(days=day.weekday()) if grain == "week" else day


def _utc_slot(conn: Connection, column: Any, minutes: int) -> Any:
    """The UTC hour (or quarter hour) of a timestamp, as text, on SQLite and PostgreSQL."""
    if conn.dialect.name == "sqlite":
        hour = func.substr(column, 1, 13)
        if minutes == 60:
            return hour
        quarter = cast(cast(func.substr(column, 15, 2), String).op("/")(15), String)
        return hour.op("||")(":").op("||")(quarter)
    text = func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24")
    if minutes == 60:
        return text
    quarter = cast(func.floor(func.extract("minute", column) / 15), String)
    return text.op("||")(":").op("||")(quarter)


def _slot_minutes(f: Filters) -> int:
    """60 when the site's zone is a whole number of hours off UTC all through the period."""
    zone = ZoneInfo(f.timezone)
    start, end = f.window()
    probe = start or datetime.now(UTC) - timedelta(days=366)
    stop = end or datetime.now(UTC) + timedelta(days=1)
    while probe < stop:
        offset = probe.astimezone(zone).utcoffset() or timedelta()
        if offset.total_seconds() % 3600:
            return 15
        probe += timedelta(hours=12)
    return 60


@functools.lru_cache(maxsize=8192)
def _slot_day(slot: str, zone: ZoneInfo) -> date:
    hour, _, quarter = slot.partition(":")
    moment = datetime.strptime(hour[:13], "%Y-%m-%d %H").replace(tzinfo=UTC)
    if quarter:
        moment += timedelta(minutes=15 * int(float(quarter)))
    return moment.astimezone(zone).date()


def _offsets(conn: Connection, f: Filters) -> list[tuple[str, int]]:
    """The site zone's offset from UTC, in whole hours, over the rollup's hours of the period:
    ``(first hour, offset)`` from each change on, the first from the period's (or the
    rollup's) first hour. Computed here from zoneinfo, since SQLite has no time zones."""
    start, end = f.window()
    if start is None or end is None:
        h = conversion_hours.c
        first, last = conn.execute(select(func.min(h.hour), func.max(h.hour))).one()
        if first is None:
            return [("", 0)]
        start = start or _hour_moment(first)
        end = end or _hour_moment(last) + timedelta(hours=1)
    zone = ZoneInfo(f.timezone)

    def offset(at: datetime) -> int:
        return int((at.astimezone(zone).utcoffset() or timedelta()).total_seconds()) // 3600

    out = [(start.strftime("%Y-%m-%d %H"), offset(start))]
    day = start
    while day < end:  # a day at a time, hour by hour through a day the offset changes in
        step = min(day + timedelta(days=1), end)
        if offset(day) != out[-1][1] or offset(step - timedelta(hours=1)) != out[-1][1]:
            at = day
            while at < step:
                if offset(at) != out[-1][1]:
                    out.append((at.strftime("%Y-%m-%d %H"), offset(at)))
                at += timedelta(hours=1)
        day = step
    return out


def _hour_moment(hour: object) -> datetime:
    return datetime.strptime(str(hour), "%Y-%m-%d %H").replace(tzinfo=UTC)


def _local_day(
    conn: Connection, hour: ColumnElement[Any], offsets: Sequence[tuple[str, int]]
) -> ColumnElement[Any]:
    """The local day of a rollup hour ('YYYY-MM-DD HH', UTC) by the offsets of
    :func:`_offsets`: text 'YYYY-MM-DD' on SQLite, a date on PostgreSQL."""
    hours: ColumnElement[Any]
    if len(offsets) == 1:
        hours = literal(offsets[0][1])
    else:
        hours = case(
            *((hour < since, n) for (_, n), (since, _) in itertools.pairwise(offsets)),
            else_=offsets[-1][1],
        )
    if conn.dialect.name == "sqlite":
        return func.date(hour.concat(":00"), cast(hours, String).concat(" hours"))
    moment = cast(hour.concat(":00"), DateTime) + func.make_interval(0, 0, 0, 0, hours)
    return cast(moment, Date)


def series(conn: Connection, f: Filters, grain: str) -> list[SeriesPoint]:
    """Reader clicks, unique readers, conversions and revenue per day (or week) and channel,
    from the rollup. Conversions are placed by their time in the site's zone, clicks and
    readers by the UTC day ingest keeps them under. A channel's readers of a day are its posts'
    readers added up, as the report counts a row of several posts (docs/TRACKING.md)."""
    clicked: dict[tuple[date, str], int] = {}
    read: dict[tuple[date, str], int] = {}
    if f.store is None:
        t = post_days.c
        query = select(t.day, t.channel, func.sum(t.reader_clicks), func.sum(t.readers))
        query = query.where(*report._where(post_days, f), *report._days(t.day, f))
        query = query.group_by(t.day, t.channel)
        for day, channel, n, readers in conn.execute(query):
            key = (_bucket(date.fromisoformat(day), grain), str(channel))
            clicked[key] = clicked.get(key, 0) + int(n or 0)
            read[key] = read.get(key, 0) + int(readers or 0)
    minutes = _slot_minutes(f)
    made: Any
    when: Any
    counted_n: ColumnElement[Any]
    if minutes == 60:
        h = conversion_hours.c
        when, channel, kind, currency = h.hour, h.channel, h.kind, h.currency
        counted_n, value = func.sum(h.conversions), h.value_minor
        if conn.dialect.name != "sqlite":  # each row's local day, grouped in one pass
            when = _local_day(conn, h.hour, _offsets(conn, f)).label("slot")
        made = select(when).where(
            *report._where(conversion_hours, f, store=True), *_hours(h.hour, f)
        )
    else:
        c = conversions.c
        when = _utc_slot(conn, c.at, minutes).label("slot")
        channel, kind, currency, counted_n, value = (
            c.channel,
            c.kind,
            c.currency,
            func.count(),
            c.value_minor,
        )
        made = select(when).where(*report._where(conversions, f, store=True))
        made = made.where(*report._between(c.at, f))
    # one row per slot, channel and currency: leads count but bring no money, and a currency
    # only leads used leaves no (zero) revenue behind (``paying`` counts the rest)
    paying = kind != "lead"
    made = made.add_columns(
        channel,
        currency,
        counted_n.label("n"),
        func.sum(case((paying, 1), else_=0)).label("paid"),
        func.sum(case((paying, value), else_=0)).label("spent"),
    ).group_by(when, channel, currency)
    if minutes == 60 and conn.dialect.name == "sqlite":
        # SQLite reads the hours' local days once per hour (its date() parses text: once for
        # each of 20,000 rows costs more than grouping twice). Either way a few hundred rows
        # come to Python instead of some 5,000 hours.
        hourly = made.subquery()
        day = _local_day(conn, hourly.c.hour, _offsets(conn, f)).label("slot")
        made = select(
            day,
            hourly.c.channel,
            hourly.c.currency,
            func.sum(hourly.c.n),
            func.sum(hourly.c.paid),
            func.sum(hourly.c.spent),
        ).group_by(day, hourly.c.channel, hourly.c.currency)
    zone = ZoneInfo(f.timezone)
    counted: dict[tuple[date, str], int] = {}
    money: dict[tuple[date, str], dict[str, int]] = {}
    for slot, name, unit, n, paid, spent_minor in conn.execute(made):
        if minutes == 60:
            day = slot if isinstance(slot, date) else date.fromisoformat(str(slot))
        else:
            day = _slot_day(str(slot), zone)
        key = (_bucket(day, grain), str(name))
        counted[key] = counted.get(key, 0) + int(n)
        if paid:
            spent = money.setdefault(key, {})
            spent[unit] = spent.get(unit, 0) + int(spent_minor or 0)
    keys = sorted(set(clicked) | set(counted))
    return [
        SeriesPoint(
            day,
            channel,
            clicked.get((day, channel), 0),
            counted.get((day, channel), 0),
            money.get((day, channel), {}),
            read.get((day, channel), 0),
        )
        for day, channel in keys
    ]


def series_for(engine: Engine, f: Filters, grain: str = "day") -> list[SeriesPoint]:
    with engine.connect() as conn:
        return series(conn, f, grain)


def buckets(f: Filters, grain: str) -> list[date]:
    """Every bucket of the period, so a quiet day still shows as 0."""
    if not f.since or not f.until:
        return []
    out, day = [], _bucket(f.since, grain)
    step = timedelta(days=7 if grain == "week" else 1)
    while day <= f.until:
        out.append(day)
        day += step
    return out


# --------------------------------------------------------------------------- calendar


def _calendar_state(
    state: str, next_attempt_at: datetime | None, paused: set[str], channel: str
) -> str:
    if state == ledger.SENT:
        return SENT
    if state in (ledger.FAILED, ledger.MISSED):
        return FAILED
    if state == ledger.CANCELLED:
        return CANCELLED
    if state == ledger.UNKNOWN:
        return UNKNOWN if next_attempt_at is not None else HELD
    if channel in paused and state in ledger.PENDING:
        return HELD
    return UPCOMING


def calendar(conn: Connection, f: Filters, *, now: datetime | None = None) -> list[CalendarEntry]:
    """Deliveries of the period by their time (sent, else next attempt, else due), plus every
    delivery that waits for a person whatever its date."""
    moment = now or datetime.now(UTC)
    d = ledger.deliveries.c
    when = func.coalesce(d.sent_at, d.next_attempt_at, d.due_at)
    start, end = f.window()
    in_period = and_(*([when >= start] if start else []), *([when < end] if end else []))
    waiting = or_(
        d.state.in_((ledger.FAILED, ledger.MISSED)),
        and_(d.state == ledger.UNKNOWN, d.next_attempt_at.is_(None)),
    )
    conditions = [d[name] == value for name, value in f.values().items() if name != "store"]
    query = (
        select(
            d.id,
            d.story,
            d.channel,
            d.variant,
            d.state,
            d.sent_at,
            d.next_attempt_at,
            d.due_at,
            d.last_error,
            d.url,
        )
        .where(or_(in_period, waiting), *conditions)
        .order_by(when, d.channel, d.id)
        .limit(CALENDAR_LIMIT)
    )
    if f.store is not None:
        return []
    paused = {row.channel for row in ledger.paused_channels(conn, now=moment)}
    zone = ZoneInfo(f.timezone)
    out = []
    for row in conn.execute(query).all():
        at = row.sent_at or row.next_attempt_at or row.due_at
        shown = _calendar_state(row.state, row.next_attempt_at, paused, row.channel)
        out.append(
            CalendarEntry(
                id=row.id,
                day=at.astimezone(zone).date(),
                at=at,
                story=row.story,
                channel=row.channel,
                variant=row.variant,
                state=shown,
                ledger_state=row.state,
                reason=row.last_error,
                url=row.url if row.state == ledger.SENT else None,
                can_retry=row.state
                in (
                    ledger.FAILED,
                    ledger.MISSED,
                    ledger.CANCELLED,
                    ledger.UNKNOWN,
                    ledger.RETRY_WAIT,
                ),
                can_cancel=row.state
                in (*ledger.PENDING, ledger.FAILED, ledger.UNKNOWN, ledger.MISSED),
                can_resolve=row.state == ledger.UNKNOWN,
            )
        )
    return out


def options(conn: Connection, *, stories: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """The values each filter can take (stories, channels, variants, regions from the ledger;
    stores from the redemptions). ``stories``: every story of the ledger, when the caller
    has read them already (:func:`story_categories`)."""
    d = ledger.deliveries.c
    if stories is None:
        stories = story_categories(conn)
    found: dict[str, set[str]] = {"channel": set(), "variant": set(), "region": set()}
    # one pass over the ledger for the three (a few dozen combinations), not one per name
    for row in conn.execute(select(d.channel, d.variant, d.region).distinct()):
        for name, value in zip(("channel", "variant", "region"), row, strict=True):
            if value is not None:
                found[name].add(str(value))
    out: dict[str, list[str]] = {"story": sorted(str(s) for s in stories)}
    out.update({name: sorted(values) for name, values in found.items()})
    stores = conn.execute(
        select(conversions.c.store).where(conversions.c.store.is_not(None)).distinct()
    )
    out["store"] = sorted(str(v) for v in stores.scalars())
    return out


def with_period(f: Filters, since: date | None, until: date | None) -> Filters:
    if since is None or until is None:
        first, last = default_period(f.timezone)
        since, until = since or first, until or last
    return replace(f, since=since, until=until)
