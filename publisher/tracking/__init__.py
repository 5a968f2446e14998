"""Tracked links, the tracker server, clicks, conversions, offers and the report.

The seams other areas use:

- :func:`prepare_links` (engine, before publishing a delivery)
- :func:`optouts`, :func:`publisher.tracking.optout.make_token` (email channel)
- :func:`record_metrics` (engine's periodic metrics job)
"""

from __future__ import annotations

from sqlalchemy import Engine, select

from publisher.tracking.links import prepare_links
from publisher.tracking.metrics import record_metrics
from publisher.tracking.schema import optouts as optouts_table

__all__ = ["optouts", "prepare_links", "record_metrics"]


def optouts(engine: Engine) -> set[str]:
    """Lower-case addresses that unsubscribed."""
    with engine.connect() as conn:
        return {str(e).lower() for e in conn.execute(select(optouts_table.c.email)).scalars()}
