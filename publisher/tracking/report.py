"""The funnel report: per story × channel × variant × region × store, from deliveries to revenue.

All counting happens in the database. Clicks are read from the totals ingest keeps per delivery
and day (``click_totals``) and from one row per group and reader (``click_readers``), never by
scanning the raw clicks table; Python only merges small grouped results.

Figures that add up (clicks, conversions, revenue) are fetched once at the finest grain and
rolled up to any grouping in Python, so several groupings of one period (the dashboard's
sections) cost one pass over them; deliveries, one row per post at the finest grain, are
counted in the database for each grouping that is not rolled up from another. Figures that
do not add up (unique readers, and readers who converted) are counted per grouping with
``COUNT(DISTINCT ...)`` in the database.

Definitions (docs/TRACKING.md, "Definitions"): the conversion rate is the readers who converted
*through a click* divided by the unique readers of the same group and period, so it never
exceeds 100 %; an in-shop redemption made with a code alone (a poster, a code printed in a
post, a code passed on) is counted apart as ``redemptions_code_only`` and never enters a rate.

The JSON form (:func:`as_json`) is stable: fields are only ever added, and ``version`` changes
if one is renamed, removed or changes its meaning. docs/TRACKING.md describes it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Connection,
    Engine,
    String,
    Table,
    func,
    literal,
    select,
)
from sqlalchemy.sql.elements import ColumnElement

from publisher.errors import StoryloopError
from publisher.ledger import deliveries
from publisher.shop.schema import personal_codes
from publisher.tracking import referrals
from publisher.tracking.schema import (
    click_readers,
    click_totals,
    clicks,
    conversions,
    daily_readers,
    metrics,
)

REPORT_VERSION = 2  # 2: conversion_rate counts readers who converted through a click
DIMENSIONS = ("story", "channel", "variant", "region", "store")
FINE = ("story", "channel", "variant", "region")  # carried by every table the report reads
ENGAGEMENT = ("likes", "reposts", "replies", "views")
FLAG_NO_CONVERSIONS = "clicks_without_conversions"

Key = tuple[str | None, ...]


@dataclass(frozen=True)
class Filters:
    """A period in the site's time zone (``since`` and ``until`` inclusive) and a value per
    dimension to keep. A store narrows the in-shop figures only: deliveries, clicks and readers
    belong to no store."""

    since: date | None = None
    until: date | None = None
    story: str | None = None
    channel: str | None = None
    variant: str | None = None
    region: str | None = None
    store: str | None = None
    timezone: str = "UTC"

    def window(self) -> tuple[datetime | None, datetime | None]:
        """UTC bounds [start, end) of the period's local days."""
        zone = ZoneInfo(self.timezone)
        start = end = None
        if self.since:
            start = datetime.combine(self.since, time(), zone).astimezone(UTC)
        if self.until:
            end = datetime.combine(self.until + timedelta(days=1), time(), zone).astimezone(UTC)
        return start, end

    def days(self) -> tuple[str | None, str | None]:
        """The UTC days (inclusive) of the click tables that fall in the period; ingest keeps
        clicks per UTC day, the day a reader's hash belongs to."""
        start, end = self.window()
        first = start.date().isoformat() if start else None
        last = (end - timedelta(microseconds=1)).date().isoformat() if end else None
        return first, last

    def values(self) -> dict[str, str]:
        return {d: v for d in DIMENSIONS if (v := getattr(self, d)) is not None}


@dataclass
class Row:
    key: Key
    deliveries: int = 0
    clicks: int = 0
    unique_readers: int = 0
    bot_fetches: int = 0
    codes_claimed: int = 0
    leads: int = 0
    online_sales: int = 0
    redemptions_linked: int = 0  # in-shop, with a code bound to a click
    redemptions_code_only: int = 0  # in-shop, with a code and no click
    converted_readers: int = 0
    revenue: dict[str, int] = field(default_factory=dict)  # currency -> minor units
    shop_revenue: dict[str, int] = field(default_factory=dict)  # in-shop part of revenue
    engagement: dict[str, int | None] | None = None  # None: the network reports nothing

    @property
    def redemptions(self) -> int:
        return self.redemptions_linked + self.redemptions_code_only

    @property
    def conversions(self) -> int:
        return self.leads + self.online_sales + self.redemptions

    @property
    def conversion_rate(self) -> float | None:
        if not self.unique_readers:
            return None
        return round(min(self.converted_readers, self.unique_readers) / self.unique_readers, 4)

    @property
    def flags(self) -> list[str]:
        return [FLAG_NO_CONVERSIONS] if self.clicks and not self.conversions else []

    def add(self, other: Row) -> None:
        """Add ``other``'s additive figures (not readers, which are counted per grouping).
        Written out field by field: the dashboard adds up some 50,000 rows per page."""
        self.deliveries += other.deliveries
        self.clicks += other.clicks
        self.bot_fetches += other.bot_fetches
        self.codes_claimed += other.codes_claimed
        self.leads += other.leads
        self.online_sales += other.online_sales
        self.redemptions_linked += other.redemptions_linked
        self.redemptions_code_only += other.redemptions_code_only
        if other.revenue:
            _add_money(self.revenue, other.revenue)
        if other.shop_revenue:
            _add_money(self.shop_revenue, other.shop_revenue)
        if other.engagement:
            self.engagement = _add_engagement(self.engagement, other.engagement)


ADDITIVE = (
    "deliveries",
    "clicks",
    "bot_fetches",
    "codes_claimed",
    "leads",
    "online_sales",
    "redemptions_linked",
    "redemptions_code_only",
)


@dataclass
class Report:
    by: tuple[str, ...]
    since: date | None
    rows: list[Row]
    totals: Row
    generated_at: datetime
    filters: Filters = field(default_factory=Filters)
    # friends credited through a referral code, by the story x channel that started the chain
    brought_by_customers: dict[tuple[str, str], int] = field(default_factory=dict)


def parse_by(text: str, allowed: Sequence[str] = DIMENSIONS) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in parts if p not in allowed]
    if unknown or not parts or len(set(parts)) != len(parts):
        raise StoryloopError(
            f"--by {text!r}: expected a comma-separated list of {', '.join(allowed)}"
        )
    return parts


def build(
    engine: Engine,
    by: Sequence[str] = ("story", "channel"),
    since: date | None = None,
    *,
    filters: Filters | None = None,
) -> Report:
    """The report grouped by ``by``; ``since`` is a shorthand for ``filters.since``."""
    chosen = filters or Filters()
    if since is not None:
        chosen = replace(chosen, since=since)
    with engine.connect() as conn:
        model = ReadModel(conn, chosen)
        return replace(model.report(by), brought_by_customers=model.brought_by_customers())


def sort_key(row: Row) -> tuple[Any, ...]:
    """What matters first: in-shop sales, then conversions, then readers; then by name."""
    names = tuple([v or "" for v in row.key])
    shop = row.redemptions_linked + row.redemptions_code_only  # the properties, written out:
    made = row.leads + row.online_sales + shop  # the dashboard sorts some 20,000 rows a page
    return (-shop, -made, -row.unique_readers, -row.clicks, names)


# --------------------------------------------------------------------------- the read model


class ReadModel:
    """One period's figures, read once, served as any number of groupings."""

    def __init__(self, conn: Connection, filters: Filters) -> None:
        self.conn = conn
        self.filters = filters
        # the cube without deliveries: a sent post with nothing else is no row of it (at
        # scale 1 some 8,000 of 10,000 keys); each grouping counts its own deliveries
        self._rows: dict[Key, Row] | None = None
        self._distinct: dict[tuple[str, tuple[str, ...]], dict[Key, int]] = {}
        self._converted_cache: tuple[dict[Key, int], int] | None = None
        # the additive figures of every grouping served so far, each rolled up from the
        # smallest one already served that holds its dimensions (else from the cube)
        self._grouped: dict[tuple[str, ...], dict[Key, Row]] = {}

    # the additive cube: one row per story, channel, variant, region and store
    def _dense(self) -> dict[Key, Row]:
        """The cube's figures but deliveries: the keys with clicks, engagement, claimed codes
        or conversions."""
        if self._rows is None:
            self._rows = self._read_cube()
        return self._rows

    def _sent(self, by: tuple[str, ...]) -> dict[Key, int]:
        """Sent deliveries per ``by`` group, counted in the database: one row per group, where
        the cube would bring one per post to be added up here (a store key is None)."""
        if self.filters.store is not None:
            return {}
        names = [d for d in by if d in deliveries.c]
        out: dict[Key, int] = {}
        for *values, count in self.conn.execute(_deliveries_query(self.filters, names)).all():
            if count:
                found = dict(zip(names, values, strict=True))
                out[tuple(found[d] or None if d in found else None for d in by)] = int(count)
        return out

    def _read_cube(self) -> dict[Key, Row]:
        rows: dict[Key, Row] = {}

        def row(fine: Sequence[Any], store: str | None = None) -> Row:
            story, channel, variant, region = fine  # text columns: "" is a missing value
            key = (story or None, channel or None, variant or None, region or None, store)
            found = rows.get(key)  # not setdefault: a Row is built only when new
            if found is None:
                found = rows[key] = Row(key)
            return found

        conn, f = self.conn, self.filters
        store_only = f.store is not None
        if not store_only:
            # fetched at once (``all``): psycopg hands rows over one at a time for half again
            # the CPU when iterated
            for *fine, reader_clicks, fetches in conn.execute(_clicks_query(f)).all():
                found = row(fine)
                found.clicks, found.bot_fetches = int(reader_clicks), int(fetches)
            for *fine, likes, reposts, replies, views in conn.execute(_metrics_query(f)):
                figures = (likes, reposts, replies, views)
                if any(v is not None for v in figures):
                    row(fine).engagement = {
                        n: None if v is None else int(v)
                        for n, v in zip(ENGAGEMENT, figures, strict=True)
                    }
            for *fine, count in conn.execute(_codes_query(f)):
                row(fine).codes_claimed = int(count)
        for *fine, store, kind, linked, currency, count, value in self._conversion_groups():
            found = row(fine, store if kind == "redemption" else None)
            _add_conversions(found, kind, bool(linked), currency, int(count), int(value or 0))
        return rows

    def _conversion_groups(self) -> Any:
        """Conversions per post, store, kind, link/code and currency: (*FINE, store, kind,
        linked, currency, count, value) rows (the dashboard's model reads its rollup)."""
        return self.conn.execute(_conversions_query(self.filters))

    def report(self, by: Sequence[str], *, readers: bool = True) -> Report:
        """The rows grouped by ``by``; ``readers=False`` leaves the rows' unique and converted
        readers at 0 (for a view of in-shop sales, which have no readers), saving two counts."""
        by = tuple(by)
        served = by in self._grouped
        grouped = dict(self._additive(by))
        if served:  # asked again: its rows went out once already, these are new ones
            grouped = {key: _fresh(r) for key, r in grouped.items()}
        for target, count in (self.readers(by) if readers else {}).items():
            grouped.setdefault(target, Row(target)).unique_readers = count
        for target, count in (self.converted(by) if readers else {}).items():
            grouped.setdefault(target, Row(target)).converted_readers = count
        ordered = sorted(grouped.values(), key=sort_key)
        totals = _fresh(self._totals())
        totals.unique_readers = self.readers(()).get((), 0)
        totals.converted_readers = self.converted(()).get((), 0)
        return Report(by, self.filters.since, ordered, totals, datetime.now(UTC), self.filters)

    def _totals(self) -> Row:
        """The additive figures of the whole period, the same for every grouping."""
        if () not in self._grouped:
            self._additive(())
        return self._grouped[()][()] if self._grouped[()] else Row(())

    def _additive(self, by: tuple[str, ...]) -> dict[Key, Row]:
        """The additive figures grouped by ``by``: sums are sums of sums, so a grouping is
        rolled up from the smallest finer one already served (the dashboard's story from its
        story x variant), else from the cube."""
        if by in self._grouped:
            return self._grouped[by]
        source_by: tuple[str, ...] = DIMENSIONS
        source = self._dense()
        from_cube = True
        for have, rows in self._grouped.items():
            if set(by) <= set(have) and (from_cube or len(rows) < len(source)):
                source_by, source, from_cube = have, rows, False
        pick = _picker([source_by.index(d) for d in by])
        grouped: dict[Key, Row] = {}
        for key, fine in source.items():
            target = pick(key)
            found = grouped.get(target)  # not setdefault: a Row is built only when new
            if found is None:
                found = grouped[target] = Row(target)
            found.add(fine)
        if from_cube:  # the cube holds no deliveries: this grouping's own count
            for target, count in self._sent(by).items():
                found = grouped.get(target)
                if found is None:
                    found = grouped[target] = Row(target)
                found.deliveries += count
        self._grouped[by] = grouped
        return grouped

    def brought_by_customers(self) -> dict[tuple[str, str], int]:
        """Friends credited through referral codes in the period, by the chain's origin."""
        f = self.filters
        found = referrals.brought_by_customers(self.conn, *f.window())
        return {
            (story, channel): n
            for (story, channel), n in found.items()
            if f.store is None
            and (f.story is None or f.story == story)
            and (f.channel is None or f.channel == channel)
        }

    def readers(self, by: Sequence[str]) -> dict[Key, int]:
        """Unique readers per group: for the whole period (``by`` empty) the true number; for a
        grouping, each post's unique readers added up (see "Definitions" in docs/TRACKING.md).
        A store has none: readers belong to no store."""
        if self.filters.store is not None:
            return {}
        if not by:
            return self._count("readers", by, _readers_query)
        return _roll_up(self._count("readers", FINE, _readers_query), by)

    def converted(self, by: Sequence[str]) -> dict[Key, int]:
        """Readers who converted through a click, counted like :meth:`readers`."""
        if self.filters.store is not None:
            return {}
        per_post, everyone = self._converted()
        return {(): everyone} if not by else _roll_up(per_post, by)

    def _converted(self) -> tuple[dict[Key, int], int]:
        """(converted readers per post, converted readers in all): one query for both (two
        counts in the database cost twice the join), at most one row per converting reader."""
        if self._converted_cache is None:
            per_post: dict[Key, set[str]] = {}
            everyone: set[str] = set()
            for *key, reader in self.conn.execute(_converted_query(self.filters)):
                per_post.setdefault(tuple(_none(v) for v in key), set()).add(reader)
                everyone.add(reader)
            counts = {k: len(v) for k, v in per_post.items()}
            self._converted_cache = (counts, len(everyone))
        return self._converted_cache

    def _count(
        self, what: str, by: Sequence[str], make: Callable[[Sequence[str], Filters], Any]
    ) -> dict[Key, int]:
        """One count per grouping and read model, however often it is asked."""
        memo = (what, tuple(by))
        if memo not in self._distinct:
            rows = self.conn.execute(make(by, self.filters))
            self._distinct[memo] = {tuple(_none(v) for v in key): int(n) for *key, n in rows}
        return self._distinct[memo]


def _fresh(row: Row) -> Row:
    """A new row with ``row``'s additive figures (its own money and engagement) and no readers,
    for a caller that may add to it."""
    return replace(
        row,
        unique_readers=0,
        converted_readers=0,
        revenue=dict(row.revenue),
        shop_revenue=dict(row.shop_revenue),
        engagement=None if row.engagement is None else dict(row.engagement),
    )


def _picker(indexes: list[int]) -> Callable[[Key], Key]:
    """A key's parts at ``indexes``, as a tuple (itemgetter's own tuple for two or more)."""
    if len(indexes) > 1:
        return itemgetter(*indexes)  # type: ignore[return-value]
    if indexes:
        only = indexes[0]
        return lambda key: (key[only],)
    return lambda key: ()


def _roll_up(per_post: Mapping[Key, int], by: Sequence[str]) -> dict[Key, int]:
    """Per-post counts (keyed by FINE) added up to ``by``; a store key is always None."""
    indexes = [FINE.index(d) if d in FINE else None for d in by]
    known = [i for i in indexes if i is not None]
    pick: Callable[[Key], Key]
    if len(known) < len(indexes):
        pick = lambda key: tuple(None if i is None else key[i] for i in indexes)  # noqa: E731
    else:
        pick = _picker(known)
    out: dict[Key, int] = {}
    for key, n in per_post.items():
        target = pick(key)
        out[target] = out.get(target, 0) + n
    return out


def _none(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _col(table: Table, name: str) -> ColumnElement[Any]:
    return table.c[name] if name in table.c else literal(None, String)


def _fine(table: Table) -> list[ColumnElement[Any]]:
    return [table.c[d] for d in FINE]


def _where(table: Table, f: Filters, *, store: bool = False) -> list[ColumnElement[bool]]:
    """Conditions for the dimension filters (the store only where ``store`` says it exists)."""
    out: list[ColumnElement[bool]] = []
    for name, value in f.values().items():
        if name != "store":
            out.append(table.c[name] == value)
        elif store:
            out.append(table.c.store == value)
    return out


def _days(column: ColumnElement[Any], f: Filters) -> list[ColumnElement[bool]]:
    first, last = f.days()
    out = []
    if first:
        out.append(column >= first)
    if last:
        out.append(column <= last)
    return out


def _between(column: ColumnElement[Any], f: Filters) -> list[ColumnElement[bool]]:
    start, end = f.window()
    out = []
    if start:
        out.append(column >= start)
    if end:
        out.append(column < end)
    return out


def _deliveries_query(f: Filters, by: Sequence[str] = FINE) -> Any:
    keys = [deliveries.c[d] for d in by]
    query = select(*keys, func.count()).where(deliveries.c.state == "sent")
    query = query.where(*_where(deliveries, f), *_between(deliveries.c.sent_at, f))
    return query.group_by(*keys) if keys else query


def _clicks_query(f: Filters) -> Any:
    sums = (func.sum(click_totals.c.reader_clicks), func.sum(click_totals.c.bot_fetches))
    query = select(*_fine(click_totals), *sums)
    query = query.where(*_where(click_totals, f), *_days(click_totals.c.day, f))
    return query.group_by(*_fine(click_totals))


def _metrics_query(f: Filters) -> Any:
    sums = [func.sum(metrics.c[name]) for name in ENGAGEMENT]
    joined = metrics.join(deliveries, deliveries.c.id == metrics.c.delivery_id)
    query = select(*_fine(deliveries), *sums).select_from(joined)
    query = query.where(*_where(deliveries, f), *_between(deliveries.c.sent_at, f))
    return query.group_by(*_fine(deliveries))


def _codes_query(f: Filters) -> Any:
    """Personal codes readers claimed on the site (the shop's table), by when they claimed."""
    query = select(*_fine(personal_codes), func.count())
    query = query.where(*_where(personal_codes, f), *_between(personal_codes.c.created_at, f))
    return query.group_by(*_fine(personal_codes))


def _conversions_query(f: Filters) -> Any:
    linked = conversions.c.click_id.is_not(None)
    extra = (conversions.c.store, conversions.c.kind, linked, conversions.c.currency)
    query = select(*_fine(conversions), *extra, func.count(), func.sum(conversions.c.value_minor))
    query = query.where(*_where(conversions, f, store=True), *_between(conversions.c.at, f))
    return query.group_by(*_fine(conversions), *extra)


def _readers_query(by: Sequence[str], f: Filters) -> Any:
    """Unique readers per ``by`` group. Grouped by :data:`FINE` it is a plain ``COUNT(*)``, since
    ``click_readers`` holds each group's reader once and is clustered in that order: one
    streaming pass, where a ``COUNT(DISTINCT ...)`` for a coarser grouping must sort them all."""
    if not by and not f.values():
        everyone = select(func.count()).select_from(daily_readers)
        return everyone.where(*_days(daily_readers.c.day, f))
    keys = [_col(click_readers, d) for d in by]
    counted: ColumnElement[Any]
    if tuple(by) == FINE:
        counted = func.count()
    else:
        counted = func.count(func.distinct(click_readers.c.reader_key))
    query = select(*keys, counted)
    query = query.where(*_where(click_readers, f), *_days(click_readers.c.day, f))
    return query.group_by(*keys) if keys else query


def reader_of(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """The part of the reader hash ingest keeps as ``click_readers.reader_key`` (15 hex)."""
    return func.substr(column, 1, 15)


def _converted_query(f: Filters) -> Any:
    """Each post's readers whose click is in the period and whose conversion is too (distinct
    pairs): a subset of the readers :func:`_readers_query` counts for the same post."""
    joined = conversions.join(clicks, clicks.c.id == conversions.c.click_id)
    start, end = f.days()
    click_window = replace(
        f,
        since=date.fromisoformat(start) if start else None,
        until=date.fromisoformat(end) if end else None,
        timezone="UTC",
    )
    return (
        select(*_fine(conversions), reader_of(clicks.c.reader))
        .select_from(joined)
        .where(conversions.c.click_id.is_not(None), clicks.c.kind == "reader")
        .where(clicks.c.reader.is_not(None))
        .where(*_where(conversions, f), *_between(conversions.c.at, f))
        .where(*_between(clicks.c.at, click_window))
        .distinct()
    )


def _add_conversions(
    row: Row, kind: str, linked: bool, currency: str, count: int, value: int
) -> None:
    if kind == "lead":
        row.leads += count
        return
    if kind == "sale":
        row.online_sales += count
    else:
        if linked:
            row.redemptions_linked += count
        else:
            row.redemptions_code_only += count
        row.shop_revenue[currency] = row.shop_revenue.get(currency, 0) + value
    row.revenue[currency] = row.revenue.get(currency, 0) + value


def _add_money(total: dict[str, int], more: Mapping[str, int]) -> None:
    for currency, value in more.items():
        total[currency] = total.get(currency, 0) + value


def _add_engagement(
    total: dict[str, int | None] | None, more: Mapping[str, int | None]
) -> dict[str, int | None]:
    mine = total or dict.fromkeys(ENGAGEMENT)
    out: dict[str, int | None] = {}
    for k in ENGAGEMENT:
        a, b = mine.get(k), more.get(k)
        out[k] = None if a is None and b is None else (a or 0) + (b or 0)
    return out


def channels_without_conversions(report: Report) -> list[str]:
    """Channels that brought reader clicks and not one conversion, over the whole report."""
    index = report.by.index("channel") if "channel" in report.by else None
    if index is None:
        return []
    clicked: dict[str, int] = {}
    converted: dict[str, int] = {}
    for r in report.rows:
        name = str(r.key[index])
        clicked[name] = clicked.get(name, 0) + r.clicks
        converted[name] = converted.get(name, 0) + r.conversions
    return sorted(n for n, c in clicked.items() if c and not converted.get(n))


# --------------------------------------------------------------------------- output


def money(minor: int) -> str:
    return str((Decimal(minor) / 100).quantize(Decimal("0.01")))


def _figures(r: Row) -> dict[str, Any]:
    return {
        "deliveries": r.deliveries,
        "clicks": r.clicks,
        "unique_readers": r.unique_readers,
        "bot_fetches": r.bot_fetches,
        "codes_claimed": r.codes_claimed,
        "leads": r.leads,
        "online_sales": r.online_sales,
        "redemptions": r.redemptions,
        "redemptions_linked": r.redemptions_linked,
        "redemptions_code_only": r.redemptions_code_only,
        "converted_readers": r.converted_readers,
        "conversions": r.conversions,
        "revenue": {c: money(v) for c, v in sorted(r.revenue.items())},
        "shop_revenue": {c: money(v) for c, v in sorted(r.shop_revenue.items())},
        "conversion_rate": r.conversion_rate,
        "engagement": r.engagement,
        "flags": r.flags,
    }


def as_json(report: Report) -> dict[str, Any]:
    return {
        "version": REPORT_VERSION,
        "generated_at": report.generated_at.isoformat().replace("+00:00", "Z"),
        "since": report.since.isoformat() if report.since else None,
        "until": report.filters.until.isoformat() if report.filters.until else None,
        "timezone": report.filters.timezone,
        "by": list(report.by),
        "rows": [{**dict(zip(report.by, r.key, strict=True)), **_figures(r)} for r in report.rows],
        "totals": _figures(report.totals),
        "channels_without_conversions": channels_without_conversions(report),
        "brought_by_customers": [
            {"story": story, "channel": channel, "customers": n}
            for (story, channel), n in brought_rows(report)
        ],
    }


def brought_rows(report: Report) -> list[tuple[tuple[str, str], int]]:
    """Customers brought by customers, most first."""
    return sorted(report.brought_by_customers.items(), key=lambda item: (-item[1], item[0]))


COLUMNS = (
    "deliveries",
    "clicks",
    "unique_readers",
    "bot_fetches",
    "codes_claimed",
    "leads",
    "online_sales",
    "redemptions_linked",
    "redemptions_code_only",
    "converted_readers",
    "conversion_rate",
)


def _revenue_text(revenue: Mapping[str, int]) -> str:
    return " + ".join(f"{c} {money(v)}" for c, v in sorted(revenue.items())) or "-"


def _engagement_text(engagement: Mapping[str, int | None] | None) -> str:
    if not engagement:
        return "-"
    return " ".join(f"{k}={v}" for k, v in engagement.items() if v is not None)


def as_csv(report: Report) -> str:
    currencies = sorted({c for r in report.rows for c in r.revenue})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [*report.by, *COLUMNS, *(f"revenue_{c}" for c in currencies), *ENGAGEMENT, "flags"]
    )
    for r in report.rows:
        rate = "" if r.conversion_rate is None else r.conversion_rate
        values = [getattr(r, c) for c in COLUMNS[:-1]] + [rate]
        revenue = [money(r.revenue.get(c, 0)) for c in currencies]
        engagement = [(r.engagement or {}).get(k, "") for k in ENGAGEMENT]
        writer.writerow(
            [*(v or "" for v in r.key), *values, *revenue, *engagement, " ".join(r.flags)]
        )
    return out.getvalue()


@dataclass(frozen=True)
class TableColumn:
    """One column of the terminal table; lower ``rank`` is kept longer when space is short."""

    header: str
    rank: int
    cell: Callable[[Row], str]
    numeric: bool = True


def _rate_text(r: Row) -> str:
    return "-" if r.conversion_rate is None else f"{r.conversion_rate:.1%}"


TABLE_COLUMNS = (
    TableColumn("in-shop", 0, lambda r: str(r.redemptions)),
    TableColumn("shop revenue", 1, lambda r: _revenue_text(r.shop_revenue)),
    TableColumn("conv.", 2, lambda r: str(r.conversions)),
    TableColumn("readers", 3, lambda r: str(r.unique_readers)),
    TableColumn("conv. rate", 4, _rate_text),
    TableColumn("via link", 5, lambda r: str(r.redemptions_linked)),
    TableColumn("code only", 6, lambda r: str(r.redemptions_code_only)),
    TableColumn("sales", 7, lambda r: str(r.online_sales)),
    TableColumn("revenue", 8, lambda r: _revenue_text(r.revenue)),
    TableColumn("clicks", 9, lambda r: str(r.clicks)),
    TableColumn("deliveries", 10, lambda r: str(r.deliveries)),
    TableColumn("codes", 11, lambda r: str(r.codes_claimed)),
    TableColumn("leads", 12, lambda r: str(r.leads)),
    TableColumn("bots", 13, lambda r: str(r.bot_fetches)),
    TableColumn("engagement", 14, lambda r: _engagement_text(r.engagement), numeric=False),
)
KEY_WIDTH = 16  # a group name gets this much before any figure but the first; it may wrap


def _key_cells(report: Report, r: Row) -> list[str]:
    key = [str(v) if v is not None else "-" for v in r.key] or ["total"]
    return key + [""] * (len(report.by) - len(key))


def table_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    """Header and cells of every column, widest form (CSV-like callers and tests)."""
    header = [*report.by, *(c.header for c in TABLE_COLUMNS), ""]
    cells = []
    for r in [*report.rows, report.totals]:
        flag = "clicks, no conversions" if r.flags else ""
        cells.append([*_key_cells(report, r), *(c.cell(r) for c in TABLE_COLUMNS), flag])
    return header, cells


@dataclass(frozen=True)
class Layout:
    """The terminal table as it will be drawn: which columns fit, and how wide each is."""

    header: list[str]
    cells: list[list[str]]
    widths: list[int]
    numeric: list[bool]
    left_out: list[str]


def layout(report: Report, width: int) -> Layout:
    """Keep the columns that matter most and that fit ``width`` (rich draws 3 characters per
    column plus 1 of borders), never narrowing a number; group names may wrap."""
    rows = [*report.rows, report.totals]
    names = list(report.by) or [""]
    keys = [
        _key_cells(report, r) if report.by else ["total" if r is report.totals else ""]
        for r in rows
    ]
    natural = [max([len(n), *(len(k[i]) for k in keys)]) for i, n in enumerate(names)]
    widths = [min(n, KEY_WIDTH) for n in natural]
    used = sum(widths) + 3 * len(widths) + 1
    kept: dict[str, int] = {}
    left_out = []
    for column in sorted(TABLE_COLUMNS, key=lambda c: c.rank):
        need = max([len(column.header), *(len(column.cell(r)) for r in rows)])
        if used + need + 3 <= width:
            kept[column.header] = need
            used += need + 3
        else:
            left_out.append(column.header)
    spare = max(0, width - used)
    for i, n in enumerate(natural):
        extra = min(spare, n - widths[i])
        widths[i] += extra
        spare -= extra
    order = [c for c in TABLE_COLUMNS if c.header in kept]
    return Layout(
        header=[*names, *(c.header for c in order)],
        cells=[[*k, *(c.cell(r) for c in order)] for k, r in zip(keys, rows, strict=True)],
        widths=[*widths, *(kept[c.header] for c in order)],
        numeric=[False] * len(names) + [c.numeric for c in order],
        left_out=left_out,
    )
