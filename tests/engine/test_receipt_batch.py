"""A batch's receipts are one statement on SQLite too, and it finds each delivery by its key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import event, insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.interfaces import DBAPICursor, ExecutionContext

from publisher import ledger
from publisher.ledger import transitions

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
TOKEN = "w/1"


def _row(i: int, state: str) -> dict[str, object]:
    return {
        "id": f"d{i:05d}",
        "story": f"s{i}",
        "channel": "net",
        "category": "stories",
        "timezone": "UTC",
        "content_hash": "h",
        "due_at": T0,
        "next_attempt_at": T0,
        "state": state,
        "claimed_by": TOKEN if state == ledger.SENDING else None,
        "lease_until": T0 + timedelta(minutes=5) if state == ledger.SENDING else None,
        "attempts": 0,
        "created_at": T0,
        "updated_at": T0,
    }


def test_a_batch_of_receipts_is_one_update_that_looks_deliveries_up_by_key(
    ledger_db: Engine,
) -> None:
    # 3,000 deliveries, 600 of them in flight: the receipts of 200 of those come back.
    rows = [_row(i, ledger.SENDING if i % 5 == 0 else ledger.SENT) for i in range(3000)]
    with ledger.transaction(ledger_db) as conn:
        conn.execute(insert(ledger.deliveries), rows)
    claims = [
        ledger.Claim(r["id"], "s", "net", None, "UTC", T0, 0, TOKEN)  # type: ignore[arg-type]
        for r in rows
        if r["state"] == ledger.SENDING
    ][:200]
    receipts = [(c, {"remote_id": f"r-{c.id}", "url": f"https://x/{c.id}"}) for c in claims]
    updates: list[str] = []

    def seen(
        _conn: Connection,
        _cursor: DBAPICursor,
        statement: str,
        _params: object,
        _context: ExecutionContext | None,
        _many: bool,
    ) -> None:
        if statement.startswith("UPDATE deliveries"):
            updates.append(statement)

    event.listen(ledger_db, "before_cursor_execute", seen)
    try:
        with ledger.transaction(ledger_db) as conn:
            stored = ledger.mark_sent_many(conn, receipts, T0)
            if conn.dialect.name == "sqlite":
                plan = " ".join(
                    str(r[3])
                    for r in conn.exec_driver_sql(
                        "EXPLAIN QUERY PLAN " + updates[0],
                        tuple(_positional(conn, receipts)),
                    )
                )
                assert "SEARCH deliveries USING INDEX sqlite_autoindex" in plan, plan
    finally:
        event.remove(ledger_db, "before_cursor_execute", seen)
    assert stored == {c.id for c in claims}
    assert len(updates) == 1
    with ledger_db.connect() as conn:
        counts = ledger.counts_by_state(conn)
    assert counts == {ledger.SENT: 2400 + 200, ledger.SENDING: 400}


def _positional(
    conn: Connection, receipts: list[tuple[ledger.Claim, dict[str, str]]]
) -> list[object]:
    """The SQLite statement's parameters in order, as mark_sent_many binds them."""
    import json

    compiled = transitions._SENT_ALL_SQLITE.compile(dialect=conn.dialect)
    rows = [[c.id, c.token, r["remote_id"], r["url"], json.dumps(r)] for c, r in receipts]
    params = compiled.construct_params({"b_rows": json.dumps(rows), "b_now": T0})
    processors = compiled._bind_processors
    out: list[object] = []
    assert compiled.positiontup is not None
    for name in compiled.positiontup:
        value = params[name]
        out.append(processors[name](value) if name in processors else value)
    return out
