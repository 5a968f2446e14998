"""Ingest at scale: clicks stored in the order they arrive, so a batch appends instead of
rewriting pages all over the table, and the bytes written stay a small multiple of the data."""

from __future__ import annotations

import json
import time
from pathlib import Path

from alembic import command
from sqlalchemy import Engine, insert, select

from publisher import db
from publisher.tracking.ingest import ingest
from publisher.tracking.schema import clicks, links


def _table_sql(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(
            conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'clicks'").scalar_one()
        )


CLICK = {
    "code": "c1",
    "delivery_id": "d1",
    "story": "s",
    "channel": "mastodon",
    "variant": None,
    "region": None,
    "kind": "reader",
    "agent": None,
    "reader": None,
    "referrer_host": None,
}


def test_migration_moves_clicks_into_arrival_order_and_back(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    engine = db.connect(f"sqlite:///{tmp_path / 'ledger.db'}")
    db.upgrade(engine, "0002_tracking")
    assert "WITHOUT ROWID" in _table_sql(engine)
    t0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    rows = [{**CLICK, "id": f"c1.{i:04x}", "at": t0 + timedelta(seconds=i)} for i in range(50)]
    with engine.begin() as conn:
        conn.execute(insert(clicks), rows[::-1])
    db.upgrade(engine)
    assert "WITHOUT ROWID" not in _table_sql(engine)
    with engine.connect() as conn:
        # rowid order is arrival order: the rows were copied by time
        stored = conn.exec_driver_sql("SELECT id FROM clicks ORDER BY rowid").scalars().all()
    assert stored == [r["id"] for r in rows]
    with engine.begin() as conn:  # the id is still unique
        conn.execute(insert(clicks).prefix_with("OR IGNORE"), rows[:3])
        assert len(conn.execute(select(clicks.c.id)).all()) == 50
    command.downgrade(db.alembic_config(engine), "0002_tracking")
    assert "WITHOUT ROWID" in _table_sql(engine)
    with engine.connect() as conn:
        assert len(conn.execute(select(clicks.c.id)).all()) == 50
    engine.dispose()


def _io() -> dict[str, int]:
    lines = Path("/proc/self/io").read_text().splitlines()
    return {k: int(v) for k, v in (line.split(": ") for line in lines)}


def test_ingest_writes_under_three_times_the_data_it_stores(tmp_path: Path) -> None:
    """60,000 clicks over 2,000 links, as a busy day's journal: bytes passed to write calls
    (database, WAL, temp files) against the growth of the checkpointed database file."""
    from datetime import UTC, datetime

    path = tmp_path / "ledger.db"
    engine = db.connect(f"sqlite:///{path}")
    db.upgrade(engine)
    now = datetime.now(UTC)
    codes = [f"k{i:05d}" for i in range(2000)]
    with engine.begin() as conn:
        conn.execute(
            insert(links),
            [
                {
                    "code": code,
                    "delivery_id": f"d{i}",
                    "story": f"s{i % 200}",
                    "channel": "mastodon",
                    "variant": None,
                    "region": None,
                    "original": "http://x/",
                    "target": "http://x/",
                    "created_at": now,
                }
                for i, code in enumerate(codes)
            ],
        )
    folder = tmp_path / "journal"
    folder.mkdir()
    at = time.time()
    with open(folder / "clicks-host-1-aa.jsonl", "w", encoding="utf-8") as out:
        for i in range(60_000):
            record = {
                "id": f"{codes[(i * 7919) % len(codes)]}.aa{i:x}",
                "code": codes[(i * 7919) % len(codes)],
                "at": at + i / 100,
                "kind": "reader",
                "reader": f"{(i * 2654435761) % (1 << 64):016x}{i:016x}",
                "ref": "mastodon.social",
            }
            out.write(json.dumps(record) + "\n")

    def stored() -> int:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return sum(p.stat().st_size for p in tmp_path.glob("ledger.db*"))

    size, wrote = stored(), _io()["wchar"]
    result = ingest(engine, folder)
    grown = stored() - size
    written = _io()["wchar"] - wrote
    assert result.inserted == 60_000
    engine.dispose()
    print(f"stored {grown / 1e6:.1f} MB, written {written / 1e6:.1f} MB: {written / grown:.2f}x")
    assert written < 3 * grown, (written, grown)
