"""The click journal and its ingest: exact, idempotent, safe while trackers write."""

from __future__ import annotations

import json
import time

from sqlalchemy import delete, func, select

from publisher.tracking.ingest import ingest
from publisher.tracking.journal import Click, Journal, files, journal_dir
from publisher.tracking.schema import clicks, journal_offsets
from tests.tracking.trackkit import Site, link_code, run_storyloop


def _write(journal: Journal, code: str, n: int, kind: str = "reader") -> list[str]:
    ids = []
    for i in range(n):
        click_id = journal.new_click_id(code)
        reader = f"{i:032x}" if kind == "reader" else None
        journal.append(Click(click_id, code, time.time(), kind, None, reader, "example.com"))
        ids.append(click_id)
    return ids


def _count(site: Site) -> int:
    with site.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(clicks)).scalar_one())


def test_journalled_clicks_are_ingested_once_however_often_ingest_runs(any_site: Site) -> None:
    code = link_code(any_site)
    journal = Journal(journal_dir(any_site.settings.var_dir))
    _write(journal, code, 50)
    folder = journal_dir(any_site.settings.var_dir)
    assert ingest(any_site.engine, folder).inserted == 50
    assert ingest(any_site.engine, folder).read == 0
    _write(journal, code, 7, kind="bot")
    ingest(any_site.engine, folder)
    assert _count(any_site) == 57
    with any_site.engine.connect() as conn:
        row = conn.execute(select(clicks).limit(1)).mappings().one()
    assert (row["story"], row["channel"], row["variant"]) == ("kitchen", "mastodon", "A")
    assert row["referrer_host"] == "example.com"


def test_losing_the_offsets_counts_nothing_twice(any_site: Site) -> None:
    code = link_code(any_site)
    folder = journal_dir(any_site.settings.var_dir)
    _write(Journal(folder), code, 30)
    ingest(any_site.engine, folder, chunk_bytes=512)
    with any_site.engine.begin() as conn:
        conn.execute(delete(journal_offsets))
    ingest(any_site.engine, folder, chunk_bytes=512)
    assert _count(any_site) == 30


def test_a_half_written_last_line_waits_for_its_end(sqlite_site: Site) -> None:
    code = link_code(sqlite_site)
    folder = journal_dir(sqlite_site.settings.var_dir)
    journal = Journal(folder)
    _write(journal, code, 3)
    (path,) = files(folder)
    line = Click(f"{code}.ffff1", code, time.time(), "reader", None, "a" * 32, None).line()
    with path.open("a") as handle:
        handle.write(line[:20])
    ingest(sqlite_site.engine, folder)
    assert _count(sqlite_site) == 3
    with path.open("a") as handle:
        handle.write(line[20:] + "\n")
    ingest(sqlite_site.engine, folder)
    assert _count(sqlite_site) == 4


def test_a_malformed_line_is_skipped_and_the_rest_ingested(sqlite_site: Site) -> None:
    code = link_code(sqlite_site)
    folder = journal_dir(sqlite_site.settings.var_dir)
    journal = Journal(folder)
    _write(journal, code, 2)
    (path,) = files(folder)
    with path.open("a") as handle:
        handle.write("{not json\n" + json.dumps({"id": "x"}) + "\n")
    _write(journal, code, 2)
    result = ingest(sqlite_site.engine, folder)
    assert (result.inserted, result.skipped) == (4, 2)


def test_a_finished_file_is_removed_once_its_writer_has_gone(sqlite_site: Site) -> None:
    code = link_code(sqlite_site)
    folder = journal_dir(sqlite_site.settings.var_dir)
    journal = Journal(folder)
    _write(journal, code, 5)
    ingest(sqlite_site.engine, folder)
    assert len(files(folder)) == 1
    journal.close()
    ingest(sqlite_site.engine, folder)
    assert files(folder) == []
    assert _count(sqlite_site) == 5


def test_a_click_on_an_unknown_code_is_skipped_and_the_rest_ingested(sqlite_site: Site) -> None:
    code = link_code(sqlite_site)
    folder = journal_dir(sqlite_site.settings.var_dir)
    journal = Journal(folder)
    _write(journal, code, 2)
    _write(journal, "Unknown123", 1)
    result = ingest(sqlite_site.engine, folder)
    assert (result.inserted, result.skipped) == (2, 1)


def test_storyloop_ingest_says_what_it_moved(sqlite_site: Site) -> None:
    _write(Journal(journal_dir(sqlite_site.settings.var_dir)), link_code(sqlite_site), 3)
    done = run_storyloop(sqlite_site, "ingest")
    assert done.returncode == 0, done.stderr
    assert "3 click(s) read from 1 journal file(s), 3 new, 0 skipped" in done.stdout
