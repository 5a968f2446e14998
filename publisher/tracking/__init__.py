"""Tracked links, the tracker server, clicks, conversions, offers and the report.

The seams other areas use:

- :func:`prepare_links_many` (engine, before publishing a batch of deliveries) and
  :func:`prepare_links` (one delivery)
- :func:`optouts`, :func:`publisher.tracking.optout.make_token` (email channel)
- :func:`record_metrics` (engine's periodic metrics job)
"""

from __future__ import annotations

from sqlalchemy import Engine, select

from publisher.tracking.links import LinkRequest, prepare_links, prepare_links_many
from publisher.tracking.metrics import record_metrics
from publisher.tracking.schema import optouts as optouts_table

__all__ = ["LinkRequest", "optouts", "prepare_links", "prepare_links_many", "record_metrics"]


def optouts(engine: Engine) -> set[str]:
    """Lower-case addresses that unsubscribed."""
    with engine.connect() as conn:
        return {str(e).lower() for e in conn.execute(select(optouts_table.c.email)).scalars()}
