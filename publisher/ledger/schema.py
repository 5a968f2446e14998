"""The ledger's tables and states: what a delivery is, and the words its states are named with.

Only :mod:`publisher.ledger.transitions` writes these tables; everyone else reads them through
:mod:`publisher.ledger.queries` (typed :class:`~publisher.ledger.queries.Delivery` values) or, for
reports that aggregate in SQL, through the table declared here (never a second declaration).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, Float, Index, Integer, String, Table, Text, bindparam, literal, text

from publisher.db import UTCDateTime as UTCDateTime  # the one time type, named here as before
from publisher.db import metadata
from publisher.db import sqlite_text as sqlite_text

PLANNED = "planned"
CLAIMED = "claimed"
SENDING = "sending"
SENT = "sent"
RETRY_WAIT = "retry_wait"
FAILED = "failed"
UNKNOWN = "unknown"
RESOLVING = "resolving"
CANCELLED = "cancelled"
MISSED = "missed"

STATES = (
    PLANNED,
    CLAIMED,
    SENDING,
    SENT,
    RETRY_WAIT,
    FAILED,
    UNKNOWN,
    RESOLVING,
    CANCELLED,
    MISSED,
)
PENDING = (PLANNED, RETRY_WAIT)  # waiting for their time; the plan may still move or cancel them
IN_HAND = (CLAIMED, SENDING, RESOLVING)  # held by a worker under a lease

BY_PLAN = "plan"  # cancelled because the story left content/ (revived if it comes back)
BY_USER = "user"  # cancelled by hand (never revived by the plan)


deliveries = Table(
    "deliveries",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("story", String(200), nullable=False),
    Column("channel", String(100), nullable=False),
    Column("variant", String(50)),
    Column("region", String(100)),
    Column("category", String(100), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("content_hash", String(128), nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("state", String(16), nullable=False),
    Column("next_attempt_at", UTCDateTime),
    Column("lease_until", UTCDateTime),
    Column("claimed_by", String(120)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("remote_id", Text),
    Column("url", Text),
    Column("receipt", Text),
    Column("last_error", Text),
    Column("cancelled_by", String(8)),
    Column("sent_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_deliveries_state_lease_until", "state", "lease_until"),  # expired leases
    Index("ix_deliveries_story", "story"),
    # the dashboard counts sent deliveries per post from this index alone (0015_dash)
    Index("ix_deliveries_report", "state", "story", "channel", "variant", "region", "sent_at"),
)

# "Pending" written into a statement as literals, the way the partial index below is declared:
# SQLite uses a partial index only for a query that has the same term, and PostgreSQL cannot
# prove it from parameters in a cached generic plan. Queries for due rows use this term.
PENDING_SQL = "state IN (" + ", ".join(f"'{state}'" for state in PENDING) + ")"
IS_PENDING = deliveries.c.state.in_(
    bindparam("pending_states", list(PENDING), expanding=True, literal_execute=True)
)
# What is due, in the order a claim takes it: the claim reads its batch from the front of this
# index and stops (0020_ledger). Rows leave it when claimed, so it stays as small as the backlog.
Index(
    "ix_deliveries_due",
    deliveries.c.next_attempt_at,
    deliveries.c.id,
    postgresql_where=text(PENDING_SQL),
    sqlite_where=text(PENDING_SQL),
)
# Unknown outcomes by when to look again (0020_ledger, with the one above in place of an index
# on (state, next_attempt_at) that every state change of every delivery had to update).
UNKNOWN_SQL = f"state = '{UNKNOWN}'"
IS_UNKNOWN = deliveries.c.state == literal(UNKNOWN, literal_execute=True)
Index(
    "ix_deliveries_unknown",
    deliveries.c.next_attempt_at,
    postgresql_where=text(UNKNOWN_SQL),
    sqlite_where=text(UNKNOWN_SQL),
)

delivery_events = Table(
    "delivery_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", String(200), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("state", String(16), nullable=False),
    Column("worker", String(120)),
    Column("detail", Text),
)

channel_state = Table(
    "channel_state",
    metadata,
    Column("channel", String(100), primary_key=True),
    Column("paused_reason", Text),
    Column("paused_at", UTCDateTime),
    Column("blocked_until", UTCDateTime),
    Column("tat", Float),  # token bucket as GCRA: theoretical arrival time, epoch seconds
    Column("updated_at", UTCDateTime, nullable=False),
)

d = deliveries.c


def delivery_id(story: str, channel: str, variant: str | None) -> str:
    """Deterministic, so every process and every re-plan names a delivery the same way."""
    raw = f"{story}|{channel}|{variant or ''}"
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Claim:
    """A delivery this process holds: every later transition names ``token``."""

    id: str
    story: str
    channel: str
    variant: str | None
    timezone: str
    due_at: datetime
    attempts: int
    token: str
