"""The consent tables (migration ``0008_consent``); only :mod:`publisher.consent` writes them.

- ``withdrawal_links``: the private link each customer got after sending a testimonial, kept so
  the owner can send it again.
- ``consent_ends``: one row per testimonial whose consent ended: why (withdrawn, expired, scope),
  when, and how the customer asked. Never deleted: it is part of the consent record.
- ``consent_removals``: one row per copy (a delivery of that testimonial): cancelled before it
  went out, or taken back from the network, claimed under a lease like a delivery.
- ``consent_steps``: every transition of a removal, with the worker and the network's words.
"""

from __future__ import annotations

from sqlalchemy import Column, Integer, String, Table, Text

from publisher.db import metadata
from publisher.ledger import UTCDateTime

WITHDRAWN, EXPIRED, SCOPE = "withdrawn", "expired", "scope"  # consent_ends.reason

withdrawal_links = Table(
    "withdrawal_links",
    metadata,
    Column("invite", String(40), primary_key=True),
    Column("token", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

consent_ends = Table(
    "consent_ends",
    metadata,
    Column("story", String(200), primary_key=True),  # the testimonial's slug
    Column("invite", String(40)),  # when it came through the form
    Column("reason", String(16), nullable=False),  # withdrawn | expired | scope
    Column("how", Text, nullable=False),  # "withdrawal link", "by phone", "Consent-Until 2026-…"
    Column("ended_at", UTCDateTime, nullable=False),
)

consent_removals = Table(
    "consent_removals",
    metadata,
    Column("id", String(32), primary_key=True),  # the delivery's id: one removal per copy
    Column("story", String(200), nullable=False, index=True),
    Column("channel", String(100), nullable=False),
    Column("variant", String(50)),
    Column("action", String(8), nullable=False),  # cancel | delete
    Column("state", String(16), nullable=False),
    Column("remote_id", Text),
    Column("url", Text),
    Column("receipt", Text),
    Column("sent_at", UTCDateTime),
    Column("next_attempt_at", UTCDateTime),
    Column("lease_until", UTCDateTime),
    Column("claimed_by", String(120)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("detail", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

consent_steps = Table(
    "consent_steps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("removal_id", String(32), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("state", String(16), nullable=False),
    Column("worker", String(120)),
    Column("detail", Text),
)
