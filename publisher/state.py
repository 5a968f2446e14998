"""What channel adapters remember, in the engine's database (migration ``0013_state``).

Ids a network handed out half-way through a post (WeChat's draft and publish ids), a cached
access token, a per-recipient record of a newsletter: kept where every engine process on every
machine sharing the database sees them, so a lease that runs out on one machine is settled on
another with the same knowledge. One row per (scope, key), its value JSON; a write replaces the
value in one statement (an upsert on SQLite and PostgreSQL alike).

Adapters reach it only through :class:`~channels.contract.StateStore` in their context.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import Column, String, Table, Text, select
from sqlalchemy.engine import Engine

from channels.contract import JSON
from publisher.db import UTCDateTime, insert_on_conflict, metadata

adapter_state = Table(
    "adapter_state",
    metadata,
    Column("scope", String(100), primary_key=True),  # the adapter's name space
    Column("key", String(200), primary_key=True),
    Column("value", Text, nullable=False),  # JSON
    Column("updated_at", UTCDateTime, nullable=False),
)


class DatabaseState:
    """:class:`~channels.contract.StateStore` over :data:`adapter_state`; each call is its own
    short transaction, so what an adapter wrote is there for every process once it returns."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, scope: str, key: str) -> JSON | None:
        t = adapter_state.c
        with self.engine.connect() as conn:
            raw = conn.execute(
                select(t.value).where(t.scope == scope, t.key == key)
            ).scalar_one_or_none()
        return None if raw is None else json.loads(raw)

    def put(self, scope: str, key: str, value: JSON) -> None:
        row = {
            "scope": scope,
            "key": key,
            "value": json.dumps(value, ensure_ascii=False),
            "updated_at": datetime.now(UTC),
        }
        with self.engine.begin() as conn:
            statement = insert_on_conflict(
                conn,
                adapter_state,
                values=row,
                keys=["scope", "key"],
                update={"value": row["value"], "updated_at": row["updated_at"]},
            )
            conn.execute(statement)

    def items(self, scope: str) -> dict[str, JSON]:
        t = adapter_state.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.key, t.value).where(t.scope == scope)).all()
        return {key: json.loads(raw) for key, raw in rows}
