"""Engagement the networks report for a delivery (likes, reposts, ...), kept for the report."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from channels.base import Metrics
from publisher.errors import StoryloopError
from publisher.settings import Settings
from publisher.tracking.report import deliveries
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


def refresh_metrics(engine: Engine, settings: Settings) -> tuple[int, int]:
    """Ask each channel for the figures of its sent posts; (recorded, failed)."""
    from channels.base import ChannelContext, ChannelError, Receipt, open_channel

    query = select(deliveries.c.id, deliveries.c.channel, deliveries.c.remote_id, deliveries.c.url)
    query = query.where(deliveries.c.state == "sent", deliveries.c.remote_id.is_not(None))
    with engine.connect() as conn:
        sent = conn.execute(query).all()
    context = ChannelContext(var_dir=settings.var_dir, content_dir=settings.content_path)
    opened: dict[str, Any] = {}
    recorded = failed = 0
    for delivery_id, channel, remote_id, url in sent:
        try:
            if channel not in opened:
                opened[channel] = open_channel(channel, settings, context)
            figures = opened[channel].metrics(Receipt(remote_id=remote_id, url=url))
        except (ChannelError, StoryloopError, LookupError) as exc:
            log.warning("delivery %s: %s: no metrics: %s", delivery_id, channel, exc)
            failed += 1
            continue
        if figures is not None:
            record_metrics(engine, delivery_id, figures)
            recorded += 1
    return recorded, failed
