"""Tables the tracking area owns, declared on :data:`publisher.db.metadata`.

Their shape in the database comes from migration ``0002_tracking``; keep both in step.
Story, channel, variant and region are copied onto links, clicks and conversions when they are
written, so the report groups one table at a time instead of joining a million clicks.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from publisher.db import UTCDateTime, metadata

links = Table(
    "tracked_links",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("delivery_id", String(200), nullable=False),
    Column("story", String(200), nullable=False),
    Column("channel", String(100), nullable=False),
    Column("variant", String(50)),
    Column("region", String(100)),
    Column("original", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("delivery_id", "original"),
)

offer_codes = Table(
    "offer_codes",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("delivery_id", String(200), nullable=False, unique=True),
    Column("story", String(200), nullable=False),
    Column("channel", String(100), nullable=False),
    Column("variant", String(50)),
    Column("region", String(100)),
    Column("offer", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

clicks = Table(
    "clicks",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("code", String(32), nullable=False),
    Column("delivery_id", String(200), nullable=False),
    Column("story", String(200), nullable=False),
    Column("channel", String(100), nullable=False),
    Column("variant", String(50)),
    Column("region", String(100)),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(10), nullable=False),  # reader | bot | head
    Column("agent", String(50)),  # the bot's name, for bots
    Column("reader", String(32)),  # salted daily hash of address + user agent
    Column("referrer_host", String(255)),
    # An ordinary rowid table on SQLite (migration 0004_scale): rows go in in ingest order.
)

# Kept up to date by ingest in the same transaction as the clicks, so the report reads a few
# thousand rows instead of every click.
click_totals = Table(
    "click_totals",
    metadata,
    Column("delivery_id", String(200), primary_key=True),
    Column("day", String(10), primary_key=True),  # UTC, YYYY-MM-DD
    Column("story", String(200), nullable=False),
    Column("channel", String(100), nullable=False),
    Column("variant", String(50)),
    Column("region", String(100)),
    Column("reader_clicks", BigInteger, nullable=False),
    Column("bot_fetches", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# One row per group and reader (the daily hash as a 60-bit number), clustered in the order the
# report counts unique readers in. A missing variant or region is stored as "" because key
# columns cannot be NULL.
click_readers = Table(
    "click_readers",
    metadata,
    Column("story", String(200), primary_key=True),
    Column("channel", String(100), primary_key=True),
    Column("variant", String(50), primary_key=True),
    Column("region", String(100), primary_key=True),
    Column("reader_key", BigInteger, primary_key=True),
    Column("day", String(10), nullable=False),
    sqlite_with_rowid=False,
)

# Every reader once (a reader hash belongs to one day): unique readers over the whole report.
daily_readers = Table(
    "daily_readers",
    metadata,
    Column("reader_key", BigInteger, primary_key=True),
    Column("day", String(10), nullable=False),
    sqlite_with_rowid=False,
)

# How many readers daily_readers holds per day (0017_dash), kept by triggers on it: the period's
# unique readers add up a row per day instead of counting every reader.
reader_days = Table(
    "reader_days",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("readers", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

conversions = Table(
    "conversions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dedupe_key", String(200), nullable=False, unique=True),
    Column("kind", String(12), nullable=False),  # lead | sale | redemption
    Column("click_id", String(64)),
    Column("offer_code", String(32)),
    Column("delivery_id", String(200), nullable=False),
    Column("story", String(200), nullable=False),
    Column("channel", String(100), nullable=False),
    Column("variant", String(50)),
    Column("region", String(100)),
    Column("value_minor", BigInteger, nullable=False),  # value in the currency's minor unit
    Column("currency", String(3), nullable=False),
    Column("order_id", String(200)),
    Column("store", String(100)),
    Column("source", String(10), nullable=False),  # till | api | webhook | cli | csv
    Column("at", UTCDateTime, nullable=False),
    # 0003_shop: link = the customer came through a tracked link (a click id is known);
    # code = only an offer code is known (a code printed in a post, or a personal code
    # claimed on the site without a click)
    Column("via", String(8)),
    Column("code_kind", String(10)),  # shared | personal, for redemptions
    Column("account", String(100)),  # who recorded it: a till account, api, cli, csv
    Column("warning", String(200)),  # rules the owner let the till pass, e.g. "expired"
    Index("ix_conversions_group", "story", "channel", "variant", "region", "kind"),
    Index("ix_conversions_click", "click_id"),  # 0010_rollup
    Index("ix_conversions_store", "store"),  # 0015_dash: the stores a filter offers
)

# The dashboard's rollup (migration 0010_rollup; docs/TRACKING.md, "The rollup"). A missing
# variant, region or store is stored as "" because key columns cannot be NULL.
# Per post and UTC day: kept by ingest in the batch's transaction, like click_totals.
post_days = Table(
    "post_days",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("story", String(200), primary_key=True),
    Column("channel", String(100), primary_key=True),
    Column("variant", String(50), primary_key=True),
    Column("region", String(100), primary_key=True),
    Column("reader_clicks", BigInteger, nullable=False),
    Column("bot_fetches", BigInteger, nullable=False),
    Column("readers", BigInteger, nullable=False),  # the post's unique readers of that day
    sqlite_with_rowid=False,
)

# Per UTC hour, post, store, kind, link/code and currency: kept by triggers on conversions, so
# every writer keeps it in its own transaction.
conversion_hours = Table(
    "conversion_hours",
    metadata,
    Column("hour", String(13), primary_key=True),  # YYYY-MM-DD HH, UTC
    Column("story", String(200), primary_key=True),
    Column("channel", String(100), primary_key=True),
    Column("variant", String(50), primary_key=True),
    Column("region", String(100), primary_key=True),
    Column("store", String(100), primary_key=True),
    Column("kind", String(12), primary_key=True),
    Column("linked", Integer, primary_key=True),  # 1: the conversion has a click id
    Column("currency", String(3), primary_key=True),
    Column("conversions", BigInteger, nullable=False),
    Column("value_minor", BigInteger, nullable=False),
    # 0015_dash, covering: per post as the dashboard adds them up, and per hour for its chart
    Index(
        "ix_conversion_hours_post",
        "story",
        "channel",
        "variant",
        "region",
        "store",
        "kind",
        "linked",
        "currency",
        "hour",
        "conversions",
        "value_minor",
    ),
    Index(
        "ix_conversion_hours_slot",
        "hour",
        "channel",
        "currency",
        "kind",
        "conversions",
        "value_minor",
    ),
    sqlite_with_rowid=False,
)

# One row per conversion made through a reader's click: the reader's hash (as the report
# counts it, its first 15 hex digits) and the click's UTC day. Kept by the same triggers, and
# by ingest for a conversion recorded before its click was ingested.
conversion_readers = Table(
    "conversion_readers",
    metadata,
    Column("conversion_id", Integer, primary_key=True, autoincrement=False),
    Column("story", String(200), nullable=False),
    Column("channel", String(100), nullable=False),
    Column("variant", String(50)),
    Column("region", String(100)),
    Column("reader", String(15), nullable=False),
    Column("day", String(10), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    # covering, in the order converted readers are counted: per post, and in all
    Index(
        "ix_conversion_readers_post",
        "story",
        "channel",
        "variant",
        "region",
        "reader",
        "day",
        "at",
    ),
    Index("ix_conversion_readers_reader", "reader", "day", "at"),
)

optouts = Table(
    "optouts",
    metadata,
    Column("email", String(320), primary_key=True),
    Column("at", UTCDateTime, nullable=False),
)

metrics = Table(
    "metrics",
    metadata,
    Column("delivery_id", String(200), primary_key=True),
    Column("likes", Integer),
    Column("reposts", Integer),
    Column("replies", Integer),
    Column("views", Integer),
    Column("clicks", Integer),
    Column("fetched_at", UTCDateTime, nullable=False),
)

salts = Table(
    "reader_salts",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("salt", String(64), nullable=False),
)

journal_offsets = Table(
    "journal_offsets",
    metadata,
    Column("path", String(255), primary_key=True),
    Column("offset", BigInteger, nullable=False),
)
