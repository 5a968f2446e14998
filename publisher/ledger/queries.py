"""Reading the ledger: typed :class:`Delivery` values, never raw rows, for plan, dispatcher,
commands and metrics. Nothing here writes."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection, Row

from publisher.ledger.schema import (
    FAILED,
    IS_PENDING,
    IS_UNKNOWN,
    MISSED,
    SENT,
    UNKNOWN,
    channel_state,
    d,
    deliveries,
    delivery_events,
)


class Delivery(NamedTuple):
    """One delivery as the ledger holds it (story × channel × variant), read-only.

    A named tuple rather than a dataclass: the plan reads every delivery of the ledger at once,
    and building one of these costs a sixth of a frozen dataclass's ``__init__``. The fields are
    the table's columns, in its order, so a row becomes one with ``Delivery._make(row)``."""

    id: str
    story: str
    channel: str
    variant: str | None
    region: str | None
    category: str
    timezone: str
    content_hash: str
    due_at: datetime
    state: str
    next_attempt_at: datetime | None
    lease_until: datetime | None
    claimed_by: str | None
    attempts: int
    remote_id: str | None
    url: str | None
    receipt: str | None
    last_error: str | None
    cancelled_by: str | None
    sent_at: datetime | None
    created_at: datetime
    updated_at: datetime


_ALL = select(deliveries)


def _deliveries(conn: Connection, stmt: Any) -> list[Delivery]:
    make = Delivery._make
    return [make(row) for row in conn.execute(stmt)]


def get(conn: Connection, id_: str) -> Delivery | None:
    row = conn.execute(_ALL.where(d.id == id_)).first()
    return None if row is None else Delivery._make(row)


def every(conn: Connection) -> list[Delivery]:
    """The whole ledger (the plan compares it with what the manifest wants)."""
    return _deliveries(conn, _ALL)


def due_now(conn: Connection, *, now: datetime) -> list[Delivery]:
    """Pending and due, in the order a pass would take them (for a dry run)."""
    stmt = _ALL.where(and_(IS_PENDING, d.next_attempt_at <= now))
    return _deliveries(conn, stmt.order_by(d.next_attempt_at, d.id))


def sent_with_remote_id(conn: Connection) -> list[Delivery]:
    """Posts the networks took and named, whose figures can be asked for."""
    return _deliveries(conn, _ALL.where(d.state == SENT, d.remote_id.is_not(None)))


def counts_by_state(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(d.state, func.count()).group_by(d.state)).all()
    return {state: int(n) for state, n in rows}


def upcoming(conn: Connection, *, limit: int = 10) -> list[Delivery]:
    """The next ``limit`` pending or unknown deliveries with a time, soonest first: the first
    ``limit`` of each from its own index, merged."""
    found = [
        row
        for state in (IS_PENDING, IS_UNKNOWN)
        for row in _deliveries(
            conn,
            _ALL.where(state, d.next_attempt_at.is_not(None))
            .order_by(d.next_attempt_at, d.id)
            .limit(limit),
        )
    ]
    found.sort(key=lambda row: (row.next_attempt_at, row.id))
    return found[:limit]


def due(now: datetime, skip_ids: Collection[str] = (), skip_channels: Collection[str] = ()) -> Any:
    """Pending, due, and on a channel that is neither paused nor blocked (nor skipped)."""
    held = select(channel_state.c.channel).where(
        or_(channel_state.c.paused_reason.is_not(None), channel_state.c.blocked_until > now)
    )
    condition = [IS_PENDING, d.next_attempt_at <= now, d.channel.not_in(held)]
    if skip_ids:
        condition.append(d.id.not_in(list(skip_ids)))
    if skip_channels:
        condition.append(d.channel.not_in(list(skip_channels)))
    return and_(*condition)


def any_due(conn: Connection, *, now: datetime) -> bool:
    """Whether a pass started now would find something to claim."""
    return conn.execute(select(d.id).where(due(now)).limit(1)).first() is not None


def next_wakeups(conn: Connection, *, after: datetime, limit: int = 100) -> list[datetime]:
    stmt = (
        select(d.next_attempt_at)
        .where(IS_PENDING, d.next_attempt_at > after)
        .group_by(d.next_attempt_at)
        .order_by(d.next_attempt_at)
        .limit(limit)
    )
    return [t for t in conn.execute(stmt).scalars() if t is not None]


def needing_attention(conn: Connection, *, limit: int = 10) -> list[Delivery]:
    stmt = (
        _ALL.where(or_(d.state.in_((FAILED, UNKNOWN, MISSED)), d.last_error.is_not(None)))
        .where(d.state != SENT)
        .order_by(d.updated_at.desc())
        .limit(limit)
    )
    return _deliveries(conn, stmt)


def paused_channels(conn: Connection, *, now: datetime) -> list[Row[Any]]:
    c = channel_state.c
    stmt = select(channel_state).where(or_(c.paused_reason.is_not(None), c.blocked_until > now))
    return list(conn.execute(stmt).all())


def events(conn: Connection, id_: str) -> list[Row[Any]]:
    e = delivery_events.c
    stmt = select(delivery_events).where(e.delivery_id == id_).order_by(e.id)
    return list(conn.execute(stmt).all())
