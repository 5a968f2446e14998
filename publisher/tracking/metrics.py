"""Engagement the networks report for a delivery (likes, reposts, ...), kept for the report."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from channels.base import Metrics, Receipt
from publisher.errors import StoryloopError
from publisher.ledger import deliveries
from publisher.settings import Settings
from publisher.tracking.schema import metrics as metrics_table

log = logging.getLogger(__name__)

FIELDS = ("likes", "reposts", "replies", "views", "clicks")


def record_metrics(engine: Engine, delivery_id: str, metrics: Metrics) -> None:
    """Store the latest figures for a delivery (replacing earlier ones)."""
    values = {name: getattr(metrics, name) for name in FIELDS}
    row = {"delivery_id": delivery_id, "fetched_at": datetime.now(UTC), **values}
    with engine.begin() as conn:
        dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
        statement = dialect.insert(metrics_table).values(**row)
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=["delivery_id"],
                set_={**values, "fetched_at": row["fetched_at"]},
            )
        )


def stored_receipt(remote_id: str, url: str | None, stored: str | None) -> Receipt:
    """The receipt as the ledger keeps it (remote id, URL and whatever else the adapter said),
    for ``metrics()``; a receipt that is not a JSON object keeps only the id and the URL."""
    try:
        data = json.loads(stored) if stored else {}
    except ValueError:
        data = {}
    extra = (
        {k: v for k, v in data.items() if k not in ("remote_id", "url")}
        if isinstance(data, dict)
        else {}
    )
    return Receipt(remote_id=remote_id, url=url, extra=extra)


def refresh_metrics(engine: Engine, settings: Settings) -> tuple[int, int]:
    """Ask each channel for the figures of its sent posts; (recorded, failed)."""
    from channels.base import ChannelError
    from publisher.adapters import channel_context, open_channel

    d = deliveries.c
    query = select(d.id, d.channel, d.remote_id, d.url, d.receipt)
    query = query.where(d.state == "sent", d.remote_id.is_not(None))
    with engine.connect() as conn:
        sent = conn.execute(query).all()
    context = channel_context(settings, engine)
    opened: dict[str, Any] = {}
    recorded = failed = 0
    for delivery_id, channel, remote_id, url, stored in sent:
        try:
            if channel not in opened:
                opened[channel] = open_channel(channel, settings, context)
            figures = opened[channel].metrics(stored_receipt(remote_id, url, stored))
        except (ChannelError, StoryloopError, LookupError) as exc:
            log.warning("delivery %s: %s: no metrics: %s", delivery_id, channel, exc)
            failed += 1
            continue
        if figures is not None:
            record_metrics(engine, delivery_id, figures)
            recorded += 1
    return recorded, failed
