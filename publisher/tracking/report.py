"""The funnel report: per story × channel × variant × region, from deliveries to revenue.

All counting happens in the database. Clicks are read from the totals ingest keeps per delivery
and day (``click_totals``) and from one row per delivery and reader (``click_readers``), never
from the raw clicks table; Python only merges small grouped results.

The JSON form (:func:`as_json`) is stable: fields are only ever added, and ``version`` changes
if one is renamed or removed. docs/TRACKING.md describes it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, DateTime, Engine, MetaData, String, Table, and_, func, select
from sqlalchemy.sql.elements import ColumnElement

from publisher.errors import StoryloopError
from publisher.tracking.schema import (
    click_readers,
    click_totals,
    conversions,
    daily_readers,
    metrics,
)

REPORT_VERSION = 1
DIMENSIONS = ("story", "channel", "variant", "region")
ENGAGEMENT = ("likes", "reposts", "replies", "views")
FLAG_NO_CONVERSIONS = "clicks_without_conversions"

# The engine's ledger, seen through the few columns the report reads (its own MetaData, so the
# engine's declaration of the same table is not disturbed).
_ledger = MetaData()
deliveries = Table(
    "deliveries",
    _ledger,
    Column("id", String, primary_key=True),
    Column("story", String),
    Column("channel", String),
    Column("variant", String),
    Column("region", String),
    Column("state", String),
    Column("sent_at", DateTime(timezone=True)),
    Column("remote_id", String),
    Column("url", String),
)

Key = tuple[str | None, ...]


@dataclass
class Row:
    key: Key
    deliveries: int = 0
    clicks: int = 0
    unique_readers: int = 0
    bot_fetches: int = 0
    leads: int = 0
    online_sales: int = 0
    redemptions: int = 0
    revenue: dict[str, int] = field(default_factory=dict)  # currency -> minor units
    engagement: dict[str, int | None] | None = None  # None: the network reports nothing

    @property
    def conversions(self) -> int:
        return self.leads + self.online_sales + self.redemptions

    @property
    def conversion_rate(self) -> float | None:
        return round(self.conversions / self.unique_readers, 4) if self.unique_readers else None

    @property
    def flags(self) -> list[str]:
        return [FLAG_NO_CONVERSIONS] if self.clicks and not self.conversions else []


@dataclass
class Report:
    by: tuple[str, ...]
    since: date | None
    rows: list[Row]
    totals: Row
    generated_at: datetime


def parse_by(text: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in parts if p not in DIMENSIONS]
    if unknown or not parts or len(set(parts)) != len(parts):
        raise StoryloopError(
            f"--by {text!r}: expected a comma-separated list of {', '.join(DIMENSIONS)}"
        )
    return parts


def build(
    engine: Engine, by: Sequence[str] = ("story", "channel"), since: date | None = None
) -> Report:
    by = tuple(by)
    start = datetime(since.year, since.month, since.day, tzinfo=UTC) if since else None
    rows: dict[Key, Row] = {}

    def row(key: Key) -> Row:
        return rows.setdefault(key, Row(key))

    with engine.connect() as conn:
        for *key, count in conn.execute(_deliveries_query(by, start)):
            row(tuple(key)).deliveries = int(count)
        for *key, reader_clicks, fetches in conn.execute(_clicks_query(by, since)):
            found = row(tuple(key))
            found.clicks, found.bot_fetches = int(reader_clicks), int(fetches)
        for *key, readers in conn.execute(_readers_query(by, since)):
            row(tuple(v if v != "" else None for v in key)).unique_readers += int(readers)
        for *key, kind, currency, count, value in conn.execute(_conversions_query(by, start)):
            _add_conversions(row(tuple(key)), kind, currency, int(count), int(value or 0))
        for *key, likes, reposts, replies, views in conn.execute(_metrics_query(by, start)):
            figures = (likes, reposts, replies, views)
            if any(v is not None for v in figures):
                row(tuple(key)).engagement = {
                    n: None if v is None else int(v)
                    for n, v in zip(ENGAGEMENT, figures, strict=True)
                }
        total_readers = int(conn.execute(_all_readers_query(since)).scalar() or 0)
    ordered = sorted(rows.values(), key=lambda r: tuple(v or "" for v in r.key))
    return Report(by, since, ordered, _totals(ordered, total_readers), datetime.now(UTC))


def _group(table: Table, by: Sequence[str]) -> list[ColumnElement[Any]]:
    return [table.c[d] for d in by]


def _deliveries_query(by: Sequence[str], start: datetime | None) -> Any:
    query = select(*_group(deliveries, by), func.count()).where(deliveries.c.state == "sent")
    if start:
        query = query.where(deliveries.c.sent_at >= start)
    return query.group_by(*_group(deliveries, by))


def _clicks_query(by: Sequence[str], since: date | None) -> Any:
    sums = (func.sum(click_totals.c.reader_clicks), func.sum(click_totals.c.bot_fetches))
    query = select(*_group(click_totals, by), *sums)
    if since:
        query = query.where(click_totals.c.day >= since.isoformat())
    return query.group_by(*_group(click_totals, by))


def _readers_query(by: Sequence[str], since: date | None) -> Any:
    distinct = func.count(func.distinct(click_readers.c.reader_key))
    query = select(*_group(click_readers, by), distinct)
    if since:
        query = query.where(click_readers.c.day >= since.isoformat())
    return query.group_by(*_group(click_readers, by))


def _all_readers_query(since: date | None) -> Any:
    query = select(func.count()).select_from(daily_readers)
    return query.where(daily_readers.c.day >= since.isoformat()) if since else query


def _conversions_query(by: Sequence[str], start: datetime | None) -> Any:
    extra = (conversions.c.kind, conversions.c.currency)
    query = select(
        *_group(conversions, by), *extra, func.count(), func.sum(conversions.c.value_minor)
    )
    if start:
        query = query.where(conversions.c.at >= start)
    return query.group_by(*_group(conversions, by), *extra)


def _metrics_query(by: Sequence[str], start: datetime | None) -> Any:
    sums = [func.sum(metrics.c[name]) for name in ENGAGEMENT]
    joined = metrics.join(deliveries, deliveries.c.id == metrics.c.delivery_id)
    query = select(*_group(deliveries, by), *sums).select_from(joined)
    if start:
        query = query.where(and_(deliveries.c.sent_at >= start))
    return query.group_by(*_group(deliveries, by))


def _add_conversions(row: Row, kind: str, currency: str, count: int, value: int) -> None:
    if kind == "lead":
        row.leads += count
        return
    if kind == "sale":
        row.online_sales += count
    else:
        row.redemptions += count
    row.revenue[currency] = row.revenue.get(currency, 0) + value


def _totals(rows: Sequence[Row], readers: int) -> Row:
    total = Row((), unique_readers=readers)
    for r in rows:
        total.deliveries += r.deliveries
        total.clicks += r.clicks
        total.bot_fetches += r.bot_fetches
        total.leads += r.leads
        total.online_sales += r.online_sales
        total.redemptions += r.redemptions
        for currency, value in r.revenue.items():
            total.revenue[currency] = total.revenue.get(currency, 0) + value
        if r.engagement:
            total.engagement = _add_engagement(total.engagement, r.engagement)
    return total


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
        "leads": r.leads,
        "online_sales": r.online_sales,
        "redemptions": r.redemptions,
        "conversions": r.conversions,
        "revenue": {c: money(v) for c, v in sorted(r.revenue.items())},
        "conversion_rate": r.conversion_rate,
        "engagement": r.engagement,
        "flags": r.flags,
    }


def as_json(report: Report) -> dict[str, Any]:
    return {
        "version": REPORT_VERSION,
        "generated_at": report.generated_at.isoformat().replace("+00:00", "Z"),
        "since": report.since.isoformat() if report.since else None,
        "by": list(report.by),
        "rows": [{**dict(zip(report.by, r.key, strict=True)), **_figures(r)} for r in report.rows],
        "totals": _figures(report.totals),
        "channels_without_conversions": channels_without_conversions(report),
    }


COLUMNS = (
    "deliveries",
    "clicks",
    "unique_readers",
    "bot_fetches",
    "leads",
    "online_sales",
    "redemptions",
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


def table_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    """Header and cells for the terminal table (the CLI draws it with rich)."""
    labels = ["deliveries", "clicks", "readers", "bots", "leads", "sales", "in-store", "conv."]
    header = [*report.by, *labels, "revenue", "engagement", ""]
    cells = []
    for r in [*report.rows, report.totals]:
        key = [str(v) if v is not None else "-" for v in r.key] or ["total"]
        key += [""] * (len(report.by) - len(key))
        rate = "-" if r.conversion_rate is None else f"{r.conversion_rate:.1%}"
        values = [str(getattr(r, c)) for c in COLUMNS[:-1]] + [rate]
        flag = "clicks, no conversions" if r.flags else ""
        cells.append(
            [*key, *values, _revenue_text(r.revenue), _engagement_text(r.engagement), flag]
        )
    return header, cells
