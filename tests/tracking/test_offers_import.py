"""Offer codes redeemed in the shop: the CLI and a till's CSV export."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from publisher.tracking import prepare_links
from publisher.tracking.schema import conversions
from tests.tracking.trackkit import Site, make_story, run_storyloop


def _offer(site: Site, delivery_id: str = "d1", channel: str = "mastodon") -> str:
    with site.engine.begin() as conn:
        links = prepare_links(
            conn,
            site.settings,
            delivery_id=delivery_id,
            story=make_story(),
            channel=channel,
            variant=None,
        )
    assert links.offer_code
    return links.offer_code


def _redemptions(site: Site) -> list[tuple[str, int, str | None]]:
    with site.engine.connect() as conn:
        query = select(conversions.c.channel, conversions.c.value_minor, conversions.c.store)
        return [tuple(r) for r in conn.execute(query.order_by(conversions.c.id))]  # type: ignore[misc]


def test_storyloop_redeem_records_a_sale_for_the_code_s_delivery(any_site: Site) -> None:
    code = _offer(any_site, channel="telegram")
    done = run_storyloop(any_site, "redeem", code.lower(), "--value", "299", "--store", "xiamen-1")
    assert done.returncode == 0, done.stderr
    assert _redemptions(any_site) == [("telegram", 29900, "xiamen-1")]


def test_storyloop_redeem_rejects_a_mistyped_code_with_a_clear_line(sqlite_site: Site) -> None:
    code = _offer(sqlite_site)
    typo = code[:-1] + ("A" if code[-1] != "A" else "B")
    done = run_storyloop(sqlite_site, "redeem", typo, "--value", "10")
    assert done.returncode == 1
    assert "code:" in done.stderr and "not a valid offer code" in done.stderr
    assert "Traceback" not in done.stderr
    assert _redemptions(sqlite_site) == []


def test_storyloop_redeem_rejects_an_unknown_store(sqlite_site: Site) -> None:
    done = run_storyloop(sqlite_site, "redeem", _offer(sqlite_site), "--value", "1", "--store", "x")
    assert done.returncode == 1 and "unknown store 'x'" in done.stderr


def _till_export(path: Path, good: str, other: str) -> Path:
    path.write_text(
        "date,code,order_id,value,currency,store\n"
        f"2026-03-02,{good},T-1,299,CNY,xiamen-1\n"
        f"2026-03-02,{good.lower()},,120.50,,xiamen-1\n"
        f"2026-03-02,{other},T-3,not-a-number,CNY,xiamen-1\n"
        f"2026-03-02,CC-AAAAA-A,T-4,10,CNY,xiamen-1\n"
        f"yesterday,{good},T-5,10,CNY,xiamen-1\n"
        f"2026-03-03,{other},T-6,88,EUR,xiamen-1\n"
        f"2026-03-03,{other},T-7,1,CNY,nowhere\n",
        encoding="utf-8",
    )
    return path


def test_import_sales_reports_bad_rows_by_line_and_imports_the_good(
    any_site: Site, tmp_path: Path
) -> None:
    good, other = _offer(any_site, "d1"), _offer(any_site, "d2", channel="email")
    export = _till_export(tmp_path / "till.csv", good, other)
    done = run_storyloop(any_site, "import-sales", str(export))
    assert done.returncode == 1
    assert "3 imported, 0 already there, 4 bad row(s)" in done.stdout
    for line, field in ((4, "value"), (5, "code"), (6, "date"), (8, "store")):
        assert f"till.csv:{line}: {field}:" in done.stderr
    assert sorted(_redemptions(any_site)) == [
        ("email", 8800, "xiamen-1"),
        ("mastodon", 12050, "xiamen-1"),
        ("mastodon", 29900, "xiamen-1"),
    ]


def test_importing_the_same_file_twice_adds_nothing(sqlite_site: Site, tmp_path: Path) -> None:
    export = _till_export(
        tmp_path / "till.csv", _offer(sqlite_site, "d1"), _offer(sqlite_site, "d2")
    )
    run_storyloop(sqlite_site, "import-sales", str(export))
    again = run_storyloop(sqlite_site, "import-sales", str(export))
    assert "0 imported, 3 already there" in again.stdout
    with sqlite_site.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(conversions)).scalar_one() == 3


def test_a_file_without_the_needed_columns_is_refused(sqlite_site: Site, tmp_path: Path) -> None:
    export = tmp_path / "wrong.csv"
    export.write_text("when,amount\n2026-03-02,10\n", encoding="utf-8")
    done = run_storyloop(sqlite_site, "import-sales", str(export))
    assert done.returncode == 1
    assert "wrong.csv:1: header: missing column(s) code, value" in done.stderr
