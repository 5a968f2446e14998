"""The ledger's state machine, transition by transition, from every state, on both databases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.engine import Connection, Engine

from publisher import ledger
from publisher.ledger import Delivery
from tests.engine.enginekit import T0

LEASE = timedelta(minutes=2)
TOKEN = "w/1"
ID = ledger.delivery_id("s", "net", None)


def put(engine: Engine, state: str, **kw: Any) -> None:
    values = row(ID, state, TOKEN) | {
        "due_at": T0 - timedelta(minutes=1),
        "next_attempt_at": T0 - timedelta(minutes=1),
        "lease_until": T0 - timedelta(seconds=1),
        **kw,
    }
    with ledger.transaction(engine) as conn:
        conn.execute(insert(ledger.deliveries), [values])


def delivery(conn: Connection, id_: str) -> Delivery:
    found = ledger.get(conn, id_)
    assert found is not None, f"no delivery {id_}"
    return found


def state_of(engine: Engine) -> str:
    with engine.connect() as conn:
        return delivery(conn, ID).state


CLAIM = ledger.Claim(ID, "s", "net", None, "UTC", T0, 0, TOKEN)


def claim_due(conn: Connection) -> None:
    ledger.claim_due(conn, token="w/2", now=T0, lease=LEASE)


def mark_sending(conn: Connection) -> None:
    ledger.mark_sending(conn, CLAIM, now=T0, lease=LEASE)


def mark_sent(conn: Connection) -> None:
    ledger.mark_sent_many(conn, [(CLAIM, {"remote_id": "1", "url": None})], T0)


def mark_retry(conn: Connection) -> None:
    ledger.mark_retry(conn, CLAIM, at=T0, error="e", now=T0, max_attempts=5)


def mark_failed(conn: Connection) -> None:
    ledger.mark_failed(conn, CLAIM, error="e", now=T0)


def mark_unknown(conn: Connection) -> None:
    ledger.mark_unknown(conn, CLAIM, error="e", now=T0, check_at=T0)


def release(conn: Connection) -> None:
    ledger.release(conn, CLAIM, at=T0, now=T0, why="test")


def recover(conn: Connection) -> None:
    ledger.recover_expired(conn, now=T0)


def missed(conn: Connection) -> None:
    ledger.mark_missed(conn, now=T0 + timedelta(days=1), grace=timedelta(hours=6))


def retry(conn: Connection) -> None:
    ledger.retry(conn, ID, now=T0)


def cancel(conn: Connection) -> None:
    ledger.cancel(conn, ID, now=T0)


def resolve_sent(conn: Connection) -> None:
    ledger.resolve_sent(conn, ID, url="https://x", now=T0)


def resolve_resend(conn: Connection) -> None:
    ledger.resolve_resend(conn, ID, now=T0)


S = ledger
# transition -> {from state: to state}; every state not listed must stay as it was
ALLOWED: dict[Callable[[Connection], None], dict[str, str]] = {
    claim_due: {S.PLANNED: S.CLAIMED, S.RETRY_WAIT: S.CLAIMED},
    mark_sending: {S.CLAIMED: S.SENDING},
    mark_sent: {S.SENDING: S.SENT, S.UNKNOWN: S.SENT, S.RESOLVING: S.SENT},
    mark_retry: {S.CLAIMED: S.RETRY_WAIT, S.SENDING: S.RETRY_WAIT, S.RESOLVING: S.RETRY_WAIT},
    mark_failed: {S.CLAIMED: S.FAILED, S.SENDING: S.FAILED, S.RESOLVING: S.FAILED},
    mark_unknown: {S.SENDING: S.UNKNOWN, S.RESOLVING: S.UNKNOWN},
    release: {S.CLAIMED: S.PLANNED, S.SENDING: S.PLANNED},
    recover: {S.CLAIMED: S.PLANNED, S.SENDING: S.UNKNOWN, S.RESOLVING: S.UNKNOWN},
    missed: {S.PLANNED: S.MISSED},
    retry: {s: S.PLANNED for s in (S.FAILED, S.MISSED, S.CANCELLED, S.UNKNOWN, S.RETRY_WAIT)},
    cancel: {s: S.CANCELLED for s in (S.PLANNED, S.RETRY_WAIT, S.FAILED, S.UNKNOWN, S.MISSED)},
    resolve_sent: {S.UNKNOWN: S.SENT},
    resolve_resend: {S.UNKNOWN: S.RETRY_WAIT},
}


@pytest.mark.parametrize("transition", list(ALLOWED), ids=[t.__name__ for t in ALLOWED])
def test_transition_applies_only_from_its_states(
    ledger_db: Engine, transition: Callable[[Connection], None]
) -> None:
    outcome: dict[str, str] = {}
    for start in ledger.STATES:
        with ledger.transaction(ledger_db) as conn:
            conn.execute(ledger.deliveries.delete())
        put(ledger_db, start)
        with ledger.transaction(ledger_db) as conn:
            transition(conn)
        outcome[start] = state_of(ledger_db)
    assert outcome == {start: ALLOWED[transition].get(start, start) for start in ledger.STATES}


def test_receipts_stored_together_only_where_the_claim_still_holds(ledger_db: Engine) -> None:
    """One statement for the batch on PostgreSQL, one per row on SQLite: the same outcome."""
    rows = {
        "held": (S.SENDING, TOKEN),
        "lease-ran-out": (S.UNKNOWN, None),
        "taken-over": (S.SENDING, "w/other"),
        "cancelled": (S.CANCELLED, None),
    }
    with ledger.transaction(ledger_db) as conn:
        for name, (state, holder) in rows.items():
            conn.execute(insert(ledger.deliveries), [row(name, state, holder)])
    claims = [ledger.Claim(name, "s", "net", None, "UTC", T0, 0, TOKEN) for name in rows]
    receipts = [(c, {"remote_id": f"r-{c.id}", "url": f"https://x/{c.id}"}) for c in claims]
    with ledger.transaction(ledger_db) as conn:
        stored = ledger.mark_sent_many(conn, receipts, T0)
    assert stored == {"held", "lease-ran-out"}
    with ledger_db.connect() as conn:
        after = {name: delivery(conn, name) for name in rows}
        events = conn.execute(
            select(ledger.delivery_events.c.delivery_id, ledger.delivery_events.c.detail).where(
                ledger.delivery_events.c.state == S.SENT
            )
        ).all()
    assert {n: (r.state, r.remote_id) for n, r in after.items()} == {
        "held": (S.SENT, "r-held"),
        "lease-ran-out": (S.SENT, "r-lease-ran-out"),
        "taken-over": (S.SENDING, None),
        "cancelled": (S.CANCELLED, None),
    }
    assert after["held"].url == "https://x/held" and after["held"].sent_at == T0
    assert sorted(events) == [
        ("held", "https://x/held"),
        ("lease-ran-out", "https://x/lease-ran-out"),
    ]


def row(id_: str, state: str, holder: str | None) -> dict[str, Any]:
    return {
        "id": id_,
        "story": "s",
        "channel": "net",
        "category": "stories",
        "timezone": "UTC",
        "content_hash": "h",
        "due_at": T0,
        "next_attempt_at": T0,
        "state": state,
        "claimed_by": holder,
        "lease_until": T0 + LEASE if holder else None,
        "attempts": 0,
        "created_at": T0,
        "updated_at": T0,
    }


def test_a_claimed_delivery_cannot_be_claimed_again(ledger_db: Engine) -> None:
    put(ledger_db, ledger.PLANNED, claimed_by=None, lease_until=None)
    with ledger.transaction(ledger_db) as conn:
        first = ledger.claim_due(conn, token="a/1", now=T0, lease=LEASE)
        second = ledger.claim_due(conn, token="b/1", now=T0, lease=LEASE)
    assert [c.id for c in first] == [ID] and second == []


def test_a_worker_that_lost_its_claim_cannot_move_the_delivery(ledger_db: Engine) -> None:
    put(ledger_db, ledger.CLAIMED, claimed_by="someone-else/7")
    with ledger.transaction(ledger_db) as conn:
        assert not ledger.mark_sending(conn, CLAIM, now=T0, lease=LEASE)
        assert ledger.mark_retry(conn, CLAIM, at=T0, error="e", now=T0, max_attempts=5) == "lost"
    assert state_of(ledger_db) == ledger.CLAIMED


def test_released_retry_keeps_its_attempt_count_and_state(ledger_db: Engine) -> None:
    put(ledger_db, ledger.CLAIMED, attempts=2)
    claim = ledger.Claim(ID, "s", "net", None, "UTC", T0, 2, TOKEN)
    with ledger.transaction(ledger_db) as conn:
        assert ledger.release(conn, claim, at=T0, now=T0, why="test")
        row = delivery(conn, ID)
    assert (row.state, row.attempts) == (ledger.RETRY_WAIT, 2)


def test_datetimes_come_back_aware_in_utc(ledger_db: Engine) -> None:
    shanghai = datetime(2026, 11, 23, 17, 0, tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Asia/Shanghai")
    )
    put(ledger_db, ledger.PLANNED, due_at=shanghai)
    with ledger_db.connect() as conn:
        row = delivery(conn, ID)
    assert row.due_at == datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
    assert row.due_at.utcoffset() == timedelta(0)
    assert row.created_at.tzinfo is not None


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware UTC"):
        ledger.UTCDateTime().process_bind_param(datetime(2026, 1, 1), dialect=None)  # type: ignore[arg-type]


def test_channel_is_paused_once_however_many_workers_see_the_auth_problem(
    ledger_db: Engine,
) -> None:
    with ledger.transaction(ledger_db) as conn:
        firsts = [ledger.pause_channel(conn, "net", reason="401", now=T0) for _ in range(3)]
        assert ledger.resume_channel(conn, "net", now=T0)
        assert not ledger.resume_channel(conn, "net", now=T0)
    assert firsts == [True, False, False]


def test_token_bucket_allows_a_burst_then_one_per_interval(ledger_db: Engine) -> None:
    with ledger.transaction(ledger_db) as conn:
        taken = [ledger.take_token(conn, "net", per_minute=6, burst=2, now=T0) for _ in range(3)]
        later = ledger.take_token(
            conn, "net", per_minute=6, burst=2, now=T0 + timedelta(seconds=10)
        )
    assert taken[:2] == [None, None]
    assert taken[2] == T0 + timedelta(seconds=10)
    assert later is None


# Plans a planner may choose when the table's statistics are stale: a nested loop that scans
# the pick (LIMIT ... FOR UPDATE SKIP LOCKED) again for every row, each time past the rows it
# has just claimed. The claim must still take at most ``limit``.
RESCAN_PLAN = (
    "SET LOCAL enable_hashjoin = off",
    "SET LOCAL enable_mergejoin = off",
    "SET LOCAL enable_material = off",
    "SET LOCAL enable_indexscan = off",
    "SET LOCAL enable_bitmapscan = off",
)


@pytest.mark.parametrize("kind", ["due", "unknown"])
def test_a_claim_takes_at_most_its_limit_whatever_the_plan(ledger_db: Engine, kind: str) -> None:
    state = ledger.PLANNED if kind == "due" else ledger.UNKNOWN
    rows = [
        row(ledger.delivery_id(f"s{i}", "net", None), state, None)
        | {"story": f"s{i}", "next_attempt_at": T0 - timedelta(seconds=i)}
        for i in range(40)
    ]
    with ledger.transaction(ledger_db) as conn:
        conn.execute(insert(ledger.deliveries), rows)
    claim = ledger.claim_due if kind == "due" else ledger.claim_unknown
    with ledger.transaction(ledger_db) as conn:
        if conn.dialect.name == "postgresql":
            for setting in RESCAN_PLAN:
                conn.exec_driver_sql(setting)
        taken = claim(conn, token="a/1", now=T0, lease=LEASE, limit=5)
    assert len(taken) == 5
    with ledger_db.connect() as conn:
        held = conn.execute(
            select(ledger.deliveries.c.id).where(ledger.deliveries.c.claimed_by == "a/1")
        ).all()
    assert sorted(r.id for r in held) == sorted(c.id for c in taken)
    if kind == "due":  # the earliest due first
        assert {c.story for c in taken} == {f"s{i}" for i in range(35, 40)}


@pytest.mark.parametrize("kind", ["due", "unknown"])
def test_a_claim_reads_its_batch_from_the_index_of_what_is_due(
    ledger_db: Engine, kind: str
) -> None:
    waiting = ledger.PLANNED if kind == "due" else ledger.UNKNOWN
    rows = [
        row(ledger.delivery_id(f"s{i}", "net", None), ledger.SENT if i % 8 else waiting, None)
        | {"story": f"s{i}", "next_attempt_at": T0 - timedelta(seconds=i)}
        for i in range(2400)
    ]
    with ledger.transaction(ledger_db) as conn:
        conn.execute(insert(ledger.deliveries), rows)
        conn.exec_driver_sql("ANALYZE")
    statements: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if statement.lstrip().startswith("WITH picked"):
            statements.append((statement, parameters))

    claim = ledger.claim_due if kind == "due" else ledger.claim_unknown
    event.listen(ledger_db, "before_cursor_execute", seen)
    try:
        with ledger.transaction(ledger_db) as conn:
            taken = claim(conn, token="a/1", now=T0, lease=LEASE, limit=20)
            [(statement, parameters)] = statements
            explain = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "
            plan = " ".join(
                str(r[-1]) for r in conn.exec_driver_sql(explain + statement, parameters)
            )
    finally:
        event.remove(ledger_db, "before_cursor_execute", seen)
    assert len(taken) == 20
    assert f"ix_deliveries_{kind}" in plan, plan
    with ledger_db.connect() as conn:  # what `storyloop status` lists next, from both indexes
        soonest = ledger.upcoming(conn, limit=5)
    expected = sorted((r["next_attempt_at"], r["id"]) for r in rows if r["state"] == waiting)[20:25]
    assert [(u.next_attempt_at, u.id) for u in soonest] == expected
