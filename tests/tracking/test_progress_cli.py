"""`storyloop import-sales` and `storyloop ingest` show a rich progress bar on a terminal, and
nothing of it on a pipe (CI logs, cron mail)."""

from __future__ import annotations

import re
import time
from pathlib import Path

from publisher.tracking import prepare_links
from publisher.tracking.journal import Click, Journal, journal_dir
from tests.ptykit import run
from tests.tracking.trackkit import Site, link_code, make_story, storyloop_argv, tracker_env

ROWS = 1200  # enough for several of import_sales' progress batches


def _offer(site: Site) -> str:
    with site.engine.begin() as conn:
        links = prepare_links(
            conn,
            site.settings,
            delivery_id="d1",
            story=make_story(),
            channel="mastodon",
            variant=None,
        )
    assert links.offer_code
    return links.offer_code


def _export(path: Path, code: str) -> Path:
    rows = [f"2026-03-02,{code},T-{i},12.50,CNY,xiamen-1\n" for i in range(ROWS)]
    path.write_text("date,code,order_id,value,currency,store\n" + "".join(rows), encoding="utf-8")
    return path


def test_import_sales_draws_a_progress_bar_on_a_terminal_only(
    sqlite_site: Site, tmp_path: Path
) -> None:
    export = _export(tmp_path / "till.csv", _offer(sqlite_site))
    argv = storyloop_argv(sqlite_site, "import-sales", str(export))
    shown = run(argv, cwd=sqlite_site.root, env=tracker_env(), terminal=True)
    assert shown.returncode == 0, shown.stderr
    assert f"{ROWS} imported, 0 already there, 0 bad row(s)" in shown.stdout
    assert re.search(rf"importing till\.csv .*{ROWS + 1}/{ROWS + 1} lines", shown.stderr), (
        shown.stderr
    )
    piped = run(argv, cwd=sqlite_site.root, env=tracker_env(), terminal=False)
    assert piped.returncode == 0, piped.stderr
    assert f"0 imported, {ROWS} already there" in piped.stdout
    assert "importing" not in piped.stderr and "lines" not in piped.stderr
    assert "\x1b" not in piped.stderr + piped.stdout


def test_ingest_draws_a_progress_bar_on_a_terminal_only(sqlite_site: Site) -> None:
    code = link_code(sqlite_site)
    journal = Journal(journal_dir(sqlite_site.settings.var_dir))
    for i in range(ROWS):
        journal.append(
            Click(journal.new_click_id(code), code, time.time(), "reader", None, f"{i:032x}", None)
        )
    argv = storyloop_argv(sqlite_site, "ingest")
    shown = run(argv, cwd=sqlite_site.root, env=tracker_env(), terminal=True)
    assert shown.returncode == 0, shown.stderr
    assert f"{ROWS} click(s) read" in shown.stdout
    # done of total, in the bytes the journals held: the bar ends full
    full = re.search(r"ingesting clicks .*?([\d.]+)/([\d.]+) (k?B)", shown.stderr)
    assert full and full.group(1) == full.group(2) and float(full.group(1)) > 0, shown.stderr
    for _ in range(3):
        journal.append(
            Click(journal.new_click_id(code), code, time.time(), "reader", None, None, None)
        )
    piped = run(argv, cwd=sqlite_site.root, env=tracker_env(), terminal=False)
    assert piped.returncode == 0, piped.stderr
    assert "3 click(s) read" in piped.stdout
    assert piped.stderr == ""
