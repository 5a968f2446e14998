"""0011_core on a database that holds data at 0007: the ledger's ids and variants get the widths
the tracking tables use, every row and event stays as it was, and the way back works too."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from publisher import db, ledger
from tests.engine.enginekit import T0

ID = ledger.delivery_id("s", "net", "a")


def _delivery(id_: str, variant: str) -> dict[str, object]:
    return {
        "id": id_,
        "story": "s",
        "channel": "net",
        "variant": variant,
        "region": None,
        "category": "news",
        "timezone": "UTC",
        "content_hash": "h",
        "due_at": T0,
        "state": ledger.SENT,
        "next_attempt_at": None,
        "attempts": 1,
        "remote_id": "r-1",
        "url": "https://net.example/p/1",
        "sent_at": T0 + timedelta(minutes=1),
        "created_at": T0,
        "updated_at": T0,
    }


def _widths(engine: sa.Engine) -> dict[tuple[str, str], int | None]:
    inspector = sa.inspect(engine)
    wanted = {"deliveries": ("id", "variant"), "delivery_events": ("delivery_id",)}
    return {
        (table, c["name"]): getattr(c["type"], "length", None)
        for table, names in wanted.items()
        for c in inspector.get_columns(table)
        if c["name"] in names
    }


def _rows(engine: sa.Engine) -> tuple[list[ledger.Delivery], list[tuple[object, ...]]]:
    with engine.connect() as conn:
        events: list[tuple[object, ...]] = [
            (e.delivery_id, e.at, e.state, e.detail) for e in ledger.events(conn, ID)
        ]
        return ledger.every(conn), events


def test_upgrade_from_0007_with_data_and_back(db_url: str) -> None:
    engine = db.connect(db_url)
    try:
        db.upgrade(engine, "0007_customers")
        assert _widths(engine)[("deliveries", "variant")] == 8
        with ledger.transaction(engine) as conn:
            conn.execute(sa.insert(ledger.deliveries), [_delivery(ID, "a")])
            conn.execute(
                sa.insert(ledger.delivery_events),
                [{"delivery_id": ID, "at": T0, "state": ledger.SENT, "detail": "r-1"}],
            )
        before = _rows(engine)
        if engine.dialect.name == "postgresql":  # SQLite never enforced the old widths
            with pytest.raises(DBAPIError), ledger.transaction(engine) as conn:
                conn.execute(sa.insert(ledger.deliveries), [_delivery("site-s", "headline-b")])

        db.upgrade(engine, "0011_core")
        assert db.current_revision(engine) == "0011_core"
        assert _widths(engine) == {
            ("deliveries", "id"): 200,
            ("deliveries", "variant"): 50,
            ("delivery_events", "delivery_id"): 200,
        }
        assert _rows(engine) == before
        assert before[0][0].sent_at == T0 + timedelta(minutes=1)  # aware UTC, as written
        wide = ledger.delivery_id("s", "net", "headline-b") + "-" + "x" * 150
        with ledger.transaction(engine) as conn:
            conn.execute(sa.insert(ledger.deliveries), [_delivery(wide, "headline-b")])
            conn.execute(sa.delete(ledger.deliveries).where(ledger.d.id == wide))
        indexes = {i["name"] for i in sa.inspect(engine).get_indexes("deliveries")}
        assert {"ix_deliveries_state_next_attempt_at", "ix_deliveries_story"} <= indexes

        _downgrade(engine, "0007_customers")
        assert _widths(engine)[("deliveries", "variant")] == 8
        assert _rows(engine) == before
    finally:
        engine.dispose()


def _downgrade(engine: sa.Engine, revision: str) -> None:
    from alembic import command

    command.downgrade(db.alembic_config(engine), revision)


SHARED = ("story", "channel", "variant", "region", "delivery_id", "store")


def test_a_column_of_one_meaning_has_one_width_and_every_time_one_type() -> None:
    """The same name means the same thing in every table (the ledger's own id is a delivery
    id): one width each, and every time column the one type."""
    import publisher.customers.schema
    import publisher.shop.schema
    import publisher.tracking.schema
    import publisher.web.schema  # noqa: F401  (each declares its tables on db.metadata)

    widths: dict[str, set[int | None]] = {name: set() for name in SHARED}
    times = []
    for table in db.metadata.tables.values():
        for column in table.columns:
            own_id = (table.name, column.name) == ("deliveries", "id")
            name = "delivery_id" if own_id else column.name
            if name in widths and isinstance(column.type, sa.String):
                widths[name].add(column.type.length)
            if isinstance(column.type, sa.DateTime) or "DateTime" in type(column.type).__name__:
                times.append(f"{table.name}.{column.name}: {type(column.type).__name__}")
    assert {name: len(found) for name, found in widths.items()} == dict.fromkeys(SHARED, 1), widths
    assert times and all(t.endswith(": UTCDateTime") for t in times), times
