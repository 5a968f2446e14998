"""The ledger is the only writer of deliveries and their events, and what it hands out is typed."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

import publisher
from publisher import ledger, plan
from tests.engine.enginekit import T0

PACKAGE = Path(publisher.__file__).parent
LEDGER_TABLES = {"deliveries", "delivery_events"}
WRITES = {
    "insert",
    "update",
    "delete",
    "prepare_insert_ignore",
    "insert_on_conflict",
}


def _names_a_ledger_table(node: ast.AST) -> bool:
    if isinstance(node, ast.Name):
        return node.id in LEDGER_TABLES
    if isinstance(node, ast.Attribute):
        return node.attr in LEDGER_TABLES
    return False


def writes_in(root: Path, skip: Path | None = None) -> list[str]:
    """Calls such as ``update(deliveries)``, ``deliveries.delete()`` or ``prepare_insert_ignore(
    'sqlite', ledger.deliveries, …)`` in the modules under ``root`` (but not under ``skip``)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if skip is not None and path.is_relative_to(skip):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in sorted(ast.walk(tree), key=lambda n: getattr(n, "lineno", 0)):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name not in WRITES:
                continue
            on_table = isinstance(func, ast.Attribute) and _names_a_ledger_table(func.value)
            if on_table or any(_names_a_ledger_table(arg) for arg in node.args):
                found.append(f"{path.relative_to(root.parent)}:{node.lineno}")
    return found


def test_only_the_ledger_writes_deliveries_and_their_events() -> None:
    assert writes_in(PACKAGE, skip=PACKAGE / "ledger") == []


def test_the_scan_finds_a_module_that_writes_the_table_itself(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "rogue.py").write_text(
        "from sqlalchemy import update\nfrom publisher import ledger\n"
        "def f(conn):\n    conn.execute(update(ledger.deliveries).values(state='sent'))\n"
        "    conn.execute(delivery_events.delete())\n"
        "    db.prepare_insert_ignore('sqlite', ledger.deliveries, ['id'], [])(conn)\n"
    )
    assert writes_in(tmp_path / "pkg") == [
        "pkg/rogue.py:4",
        "pkg/rogue.py:5",
        "pkg/rogue.py:6",
    ]


def test_a_delivery_has_the_table_s_columns_in_its_order() -> None:
    assert ledger.Delivery._fields == tuple(ledger.deliveries.c.keys())


def test_the_plan_and_the_reads_hand_out_typed_deliveries(ledger_db: Engine) -> None:
    due = T0 - timedelta(minutes=5)
    wanted = plan.Desired(
        id=ledger.delivery_id("s", "net", None),
        story="s",
        channel="net",
        variant=None,
        region=None,
        category="news",
        timezone="UTC",
        content_hash="h1",
        due_at=due,
    )
    with ledger.transaction(ledger_db) as conn:
        plan.apply(conn, plan.PlanDiff(add=[wanted]), now=T0)
        got = ledger.get(conn, wanted.id)
        assert isinstance(got, ledger.Delivery)
        assert (got.state, got.due_at, got.next_attempt_at) == (ledger.PLANNED, due, due)
        assert [e.state for e in ledger.events(conn, wanted.id)] == [ledger.PLANNED]
        assert ledger.every(conn) == [got]
        assert ledger.due_now(conn, now=T0) == [got]
        later = plan.diff(conn, [wanted], now=T0, grace=timedelta(hours=6))
        assert later.unchanged == 1
