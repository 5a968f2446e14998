"""Engagement the networks report for a delivery (likes, reposts, ...), kept for the report."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from channels.base import Metrics
from publisher import ledger
from publisher.db import insert_on_conflict
from publisher.errors import StoryloopError
from publisher.settings import Settings
from publisher.tracking.schema import metrics as metrics_table

log = logging.getLogger(__name__)

FIELDS = ("likes", "reposts", "replies", "views", "clicks")


def record_metrics(engine: Engine, delivery_id: str, metrics: Metrics) -> None:
    """Store the latest figures for a delivery (replacing earlier ones)."""
    values = {name: getattr(metrics, name) for name in FIELDS}
    row = {"delivery_id": delivery_id, "fetched_at": datetime.now(UTC), **values}
    with engine.begin() as conn:
        statement = insert_on_conflict(
            conn,
            metrics_table,
            values=row,
            keys=["delivery_id"],
            update={**values, "fetched_at": row["fetched_at"]},
        )
        conn.execute(statement)


def refresh_metrics(engine: Engine, settings: Settings) -> tuple[int, int]:
    """Ask each channel for the figures of its sent posts; (recorded, failed)."""
    from channels.base import ChannelError
    from publisher.adapters import channel_context, open_channel, stored_receipt

    with engine.connect() as conn:
        sent = ledger.sent_with_remote_id(conn)
    context = channel_context(settings, engine)
    opened: dict[str, Any] = {}
    recorded = failed = 0
    for delivery in sent:
        channel = delivery.channel
        try:
            if channel not in opened:
                opened[channel] = open_channel(channel, settings, context)
            receipt = stored_receipt(delivery.remote_id or "", delivery.url, delivery.receipt)
            figures = opened[channel].metrics(receipt)
        except (ChannelError, StoryloopError, LookupError) as exc:
            log.warning("delivery %s: %s: no metrics: %s", delivery.id, channel, exc)
            failed += 1
            continue
        if figures is not None:
            record_metrics(engine, delivery.id, figures)
            recorded += 1
    return recorded, failed
