"""Tables the shop owns (migration ``0003_shop``); conversions stay in :mod:`publisher.tracking`.

- ``personal_codes``: one row per code a reader claimed on the site ("codes claimed"), with the
  delivery it is credited to: the click that brought the reader, or the ``site`` channel.
- ``redemption_counts``: how often a code, a customer and an offer were used, kept beside the
  conversions so a limit is enforced by one conditional ``UPDATE`` even with two tills at once.
- ``redemption_requests``: the till's client-made ids, so a resent form is answered with what
  the first one did, and an undo knows what to take back.
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

personal_codes = Table(
    "personal_codes",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("offer_story", String(200), nullable=False),  # whose offer (and rules) it is
    Column("offer", Text, nullable=False),
    Column("reader", String(64), nullable=False),  # random id in the reader's cookie
    Column("via", String(8), nullable=False),  # link | site
    Column("click_id", String(64)),
    Column("delivery_id", String(200), nullable=False),  # credited to (the click's, or site)
    Column("story", String(200), nullable=False),
    Column("channel", String(100), nullable=False),
    Column("variant", String(50)),
    Column("region", String(100)),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("offer_story", "reader"),
    Index("ix_personal_codes_group", "story", "channel", "variant", "region"),
)

redemption_counts = Table(
    "redemption_counts",
    metadata,
    Column("scope", String(10), primary_key=True),  # code | customer | offer
    Column("key", String(300), primary_key=True),
    Column("uses", Integer, nullable=False),
)

redemption_requests = Table(
    "redemption_requests",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("dedupe_key", String(200), nullable=False),
    Column("code", String(32), nullable=False),
    Column("store", String(100), nullable=False),
    Column("account", String(100), nullable=False),
    Column("value_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("undone_at", UTCDateTime),
)
