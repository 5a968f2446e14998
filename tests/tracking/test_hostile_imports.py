"""Bad input to the engine's own files and commands: till exports in other encodings or with
giant fields, numbers, currencies and dates that only look right, a manifest cut in the middle
of a character, a database another process holds locked. One clear line each, no traceback,
nothing changed."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from publisher.scheduler import ManifestWatch
from publisher.tracking import prepare_links
from publisher.tracking.schema import conversions
from tests.tracking.trackkit import Site, make_story, run_storyloop

GOLDEN_MANIFEST = Path(__file__).resolve().parents[1] / "golden" / "manifest.json"


def _offer(site: Site, delivery_id: str = "d1") -> str:
    with site.engine.begin() as conn:
        links = prepare_links(
            conn, site.settings, delivery_id=delivery_id, story=make_story(),
            channel="mastodon", variant=None,
        )  # fmt: skip
    assert links.offer_code
    return links.offer_code


def _count(site: Site) -> int:
    with site.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(conversions)).scalar_one())


def _export(code: str, note: str) -> str:
    return (
        "date,code,order_id,value,currency,store,note\n"
        f"2026-03-02,{code},T-1,299,CNY,xiamen-1,{note}\n"
        f"2026-03-02,{code},T-2,12.50,CNY,xiamen-1,{note} 2\n"
    )


def _no_traceback(done: object) -> None:
    assert "Traceback" not in getattr(done, "stderr", "")


@pytest.mark.parametrize(
    ("encoding", "note", "said"),
    [
        ("gbk", "厦门思明店 会员 赠品：茶具一套", "GB18030 (GBK)"),
        ("utf-16", "厦门思明店 会员", "UTF-16"),
        ("utf-16-le", "Straße", "UTF-16LE"),
        ("latin-1", "Müller, Größe L, Café", "Windows-1252 (Latin-1)"),
        ("utf-8-sig", "Größe", "UTF-8"),
    ],
)
def test_a_till_export_in_another_encoding_is_detected_and_named(
    sqlite_site: Site, tmp_path: Path, encoding: str, note: str, said: str
) -> None:
    export = tmp_path / "till.csv"
    export.write_bytes(_export(_offer(sqlite_site), note).encode(encoding))
    done = run_storyloop(sqlite_site, "import-sales", str(export))
    assert done.returncode == 0, done.stderr
    assert f"till.csv: read as {said} (detected; --encoding overrides)" in done.stdout
    assert "2 imported" in done.stdout
    assert _count(sqlite_site) == 2


def test_encoding_can_be_given_and_a_wrong_one_is_one_line(
    sqlite_site: Site, tmp_path: Path
) -> None:
    export = tmp_path / "till.csv"
    export.write_bytes(_export(_offer(sqlite_site), "厦门 会员").encode("gbk"))
    wrong = run_storyloop(sqlite_site, "import-sales", "--encoding", "utf-8", str(export))
    assert wrong.returncode == 1 and _count(sqlite_site) == 0
    assert wrong.stderr.strip().splitlines() == [
        f"error: {export}:2: byte 0xcf cannot be read as UTF-8 (hint: name the till's "
        "encoding with --encoding, e.g. gbk, utf-16, latin-1)"
    ]
    unknown = run_storyloop(sqlite_site, "import-sales", "--encoding", "klingon", str(export))
    assert unknown.returncode == 1 and "--encoding 'klingon': no such encoding" in unknown.stderr
    _no_traceback(unknown)
    right = run_storyloop(sqlite_site, "import-sales", "--encoding", "gbk", str(export))
    assert right.returncode == 0 and "read as GBK (as given)" in right.stdout
    assert _count(sqlite_site) == 2


def test_a_field_over_the_csv_limit_is_one_line_and_imports_nothing(
    sqlite_site: Site, tmp_path: Path
) -> None:
    export = tmp_path / "till.csv"
    text = _export(_offer(sqlite_site), "ok") + f"2026-03-02,X,T-9,1,CNY,xiamen-1,{'x' * 200_000}\n"
    export.write_text(text, encoding="utf-8")
    done = run_storyloop(sqlite_site, "import-sales", str(export))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {export}:4: field larger than field")
    assert "(nothing was imported)" in lines[0]
    _no_traceback(done)
    assert _count(sqlite_site) == 0


BAD_VALUES = [
    ("value", "1_000", "value: '1_000' is not a number"),
    ("value", "1e3", "value: '1e3' is not a number"),
    ("value", "٣٠٠", "value: '٣٠٠' is not a number"),
    ("currency", "ABC", "currency: 'ABC' is not an ISO 4217 currency code"),
    ("currency", "XYZ", "currency: 'XYZ' is not an ISO 4217 currency code"),
    ("date", "1999-12-31", "date: '1999-12-31' is not a sale's date"),
    ("date", "2999-01-01", "date: '2999-01-01' is not a sale's date"),
    ("date", "9999-12-31T23:59:59-01:00", "date: '9999-12-31T23:59:59-01:00' is not a date"),
]


def test_values_that_only_look_right_are_bad_rows(sqlite_site: Site, tmp_path: Path) -> None:
    code = _offer(sqlite_site)
    good = {"date": "2026-03-02", "code": code, "order_id": "T-0", "value": "10",
            "currency": "EUR", "store": "xiamen-1"}  # fmt: skip
    rows = [good | {column: value, "order_id": f"T-{n}"} for n, (column, value, _) in
            enumerate(BAD_VALUES, start=1)]  # fmt: skip
    export = tmp_path / "till.csv"
    lines = [",".join(good), *(",".join(row.values()) for row in [good, *rows])]
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = run_storyloop(sqlite_site, "import-sales", str(export))
    assert done.returncode == 1
    for line, (_, _, message) in enumerate(BAD_VALUES, start=3):
        assert f"till.csv:{line}: {message}" in done.stderr
    assert "1 imported, 0 already there, 8 bad row(s)" in done.stdout
    _no_traceback(done)
    assert _count(sqlite_site) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--value", "1_000"], "value: '1_000' is not a number"),
     (["--value", "10", "--currency", "QQQ"], "currency: 'QQQ' is not an ISO 4217")],
)  # fmt: skip
def test_redeem_refuses_the_same_with_one_line(
    sqlite_site: Site, args: list[str], message: str
) -> None:
    done = run_storyloop(sqlite_site, "redeem", _offer(sqlite_site), *args)
    assert done.returncode == 1 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert _count(sqlite_site) == 0


def test_a_locked_database_waits_briefly_then_says_so_in_one_line(
    sqlite_site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = _offer(sqlite_site)
    path = sqlite_site.settings.database_url.removeprefix("sqlite:///")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing, and not done
    try:
        monkeypatch.setenv("STORYLOOP_DB_BUSY_SECONDS", "1")
        started = time.monotonic()
        done = run_storyloop(sqlite_site, "redeem", code, "--value", "10")
        waited = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: the database is locked by another process (waited 1 s): nothing was changed; "
        "try again when it is done (STORYLOOP_DB_BUSY_SECONDS sets the wait)"
    ]
    assert 1.0 <= waited < 30
    assert _count(sqlite_site) == 0


def _cut_inside_a_character(data: bytes) -> bytes:
    """``data`` cut after the first byte of its last multi-byte character."""
    index = max(i for i, b in enumerate(data) if b >= 0xC0)
    return data[: index + 1]


def test_a_manifest_cut_inside_a_character_keeps_the_previous_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "storyloop-manifest.json"
    shutil.copy(GOLDEN_MANIFEST, path)
    watch = ManifestWatch(path)
    before = watch.manifest
    cut = _cut_inside_a_character(GOLDEN_MANIFEST.read_bytes())
    path.write_bytes(cut)
    with caplog.at_level(logging.WARNING):
        assert watch.refresh() is False
    assert watch.manifest is before
    assert "keeping the previous manifest" in caplog.text and "not UTF-8" in caplog.text


def test_with_only_a_cut_manifest_the_engine_says_so_in_one_line(sqlite_site: Site) -> None:
    manifest = sqlite_site.settings.manifest_path
    manifest.write_bytes(_cut_inside_a_character(GOLDEN_MANIFEST.read_bytes()))
    done = run_storyloop(sqlite_site, "plan")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "storyloop-manifest.json:" in lines[0]
    assert "not UTF-8 at byte" in lines[0] and "(cut short?)" in lines[0]
