"""Engagement the networks report for a delivery (likes, reposts, ...), kept for the report."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite

from channels.base import Metrics
from publisher.tracking.schema import metrics as metrics_table

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
