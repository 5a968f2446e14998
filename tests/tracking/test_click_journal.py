"""The click journal and its ingest: exact, idempotent, safe while trackers write."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from sqlalchemy import delete, func, select

from publisher.tracking.ingest import ingest
from publisher.tracking.journal import Click, Journal, data_end, files, journal_dir
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


def test_every_kind_of_damaged_line_is_skipped_alone(any_site: Site) -> None:
    """A chunk with lines that are not JSON, not objects, or lack or mistype a field: each bad
    line is skipped and counted, every good one around them stored with its time and reader."""
    from datetime import UTC, datetime

    from publisher.tracking.ingest import reader_key
    from publisher.tracking.schema import click_readers, post_days

    code = link_code(any_site)
    folder = journal_dir(any_site.settings.var_dir)
    journal = Journal(folder)
    _write(journal, code, 2)
    (path,) = files(folder)
    good = {"code": code, "at": 1764579600.25, "kind": "reader", "agent": None, "ref": None}
    bad = [
        b"{not json",
        b"\xff\xfe not utf-8",
        b"[1, 2]",
        b'"a string"',
        b"5",
        b"null",
        json.dumps({"id": "m.1", "code": code, "kind": "reader"}).encode(),  # no time
        json.dumps({"id": "m.2", "code": code, "at": 1.7e9, "kind": "visit"}).encode(),
        json.dumps({"id": "m" * 65, "code": code, "at": 1.7e9, "kind": "bot"}).encode(),
        json.dumps({"id": 7, "code": code, "at": 1.7e9, "kind": "bot"}).encode(),
        json.dumps({"id": "m.3", "code": code, "at": float("nan"), "kind": "bot"}).encode(),
        json.dumps({"id": "m.4", "code": code, "at": 1e300, "kind": "bot"}).encode(),  # no year
    ]
    with path.open("ab") as handle:
        for line in bad:
            handle.write(line + b"\n  \n")
        upper = {**good, "id": f"{code}.up1", "reader": "ABCDEF0123456789AB"}
        handle.write(json.dumps(upper).encode() + b"\n")
    _write(journal, code, 2)
    result = ingest(any_site.engine, folder)
    assert (result.inserted, result.skipped) == (5, len(bad))
    with any_site.engine.connect() as conn:
        at = conn.execute(select(clicks.c.at).where(clicks.c.id == f"{code}.up1")).scalar_one()
        keys = set(conn.execute(select(click_readers.c.reader_key)).scalars())
        day = conn.execute(
            select(post_days.c.reader_clicks, post_days.c.readers).where(
                post_days.c.day == "2025-12-01"
            )
        ).one()
    assert at == datetime(2025, 12, 1, 9, 0, 0, 250000, tzinfo=UTC)
    assert reader_key("abcdef0123456789ab") in keys  # hex read the same in either case
    assert tuple(day) == (1, 1)


def test_a_line_still_being_copied_into_the_journal_waits_for_its_copy(sqlite_site: Site) -> None:
    """The journal is written through a memory map over reserved (zero) bytes, so a reader can
    see a line's newline before its middle: a zero inside a live writer's line means wait."""
    code = link_code(sqlite_site)
    folder = journal_dir(sqlite_site.settings.var_dir)
    journal = Journal(folder)
    _write(journal, code, 3)
    (path,) = files(folder)
    assert path.stat().st_size > data_end(path), "the writer reserves space ahead"
    line = Click(f"{code}.ffff1", code, time.time(), "reader", None, "a" * 32, None).line()
    hole = slice(30, 40)
    with path.open("r+b") as handle:
        handle.seek(data_end(path))
        handle.write(line[: hole.start].encode() + b"\0" * 10 + line[hole.stop :].encode() + b"\n")
        handle.flush()
        ingest(sqlite_site.engine, folder)
        assert _count(sqlite_site) == 3
        handle.seek(data_end(path) - len(line) - 1 + hole.start)
        handle.write(line[hole].encode())
    ingest(sqlite_site.engine, folder)
    assert _count(sqlite_site) == 4


def test_a_closed_journal_is_cut_back_to_its_lines(sqlite_site: Site) -> None:
    folder = journal_dir(sqlite_site.settings.var_dir)
    journal = Journal(folder)
    _write(journal, link_code(sqlite_site), 4)
    journal.close()
    (path,) = files(folder)
    data = path.read_bytes()
    assert len(data) == data_end(path) and data.endswith(b"\n") and b"\0" not in data
    assert len(data.splitlines()) == 4


KILLED_WRITER = """
import os, signal, sys, time
from publisher.tracking.journal import Journal
journal = Journal(__import__("pathlib").Path(sys.argv[1]))
for i in range(5):
    journal.record(sys.argv[2], "reader", None, f"{i:032x}", None)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_writer_s_reserved_space_is_skipped_and_its_file_removed(
    sqlite_site: Site,
) -> None:
    """A SIGKILLed tracker leaves its reserved zero bytes, and may leave a line cut off mid-copy
    (no 302 went out for it): its clicks are ingested, the cut line skipped, the file removed."""
    code = link_code(sqlite_site)
    folder = journal_dir(sqlite_site.settings.var_dir)
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(folder), code], check=False)
    assert done.returncode == -signal.SIGKILL
    (path,) = files(folder)
    assert path.stat().st_size > data_end(path)
    cut = Click(f"{code}.ffff1", code, time.time(), "reader", None, "a" * 32, None).line()
    with path.open("r+b") as handle:
        handle.seek(data_end(path))
        handle.write(cut[:30].encode() + b"\0" * 10 + cut[40:].encode() + b"\n")
    result = ingest(sqlite_site.engine, folder)
    assert (result.inserted, result.skipped) == (5, 1)
    assert files(folder) == []
