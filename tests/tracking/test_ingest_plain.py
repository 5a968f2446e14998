"""SQLite's two ways in: the tracker's own lines parsed in Python, any other batch through
json_each. The same journal must give the same tables either way, to the row."""

from __future__ import annotations

import random
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, text

from publisher.tracking import ingest as ingest_mod
from publisher.tracking.journal import Journal, journal_dir
from publisher.tracking.schema import conversions, journal_offsets, links
from tests.tracking.trackkit import Site, open_site

TABLES = (
    "SELECT id, code, delivery_id, story, channel, variant, region, at, kind, agent, reader, "
    "referrer_host FROM clicks ORDER BY rowid",
    "SELECT * FROM click_totals ORDER BY delivery_id, day",
    "SELECT * FROM post_days ORDER BY day, story, channel, variant, region",
    "SELECT * FROM click_readers ORDER BY story, channel, variant, region, reader_key",
    "SELECT * FROM daily_readers ORDER BY reader_key",
    "SELECT * FROM reader_days ORDER BY day",
    "SELECT * FROM conversion_readers ORDER BY conversion_id",
)
# code: delivery, story, channel, variant, region (two links of one delivery; no variant or region)
LINKS = {
    "plainA1": ("d1", "kitchen", "mastodon", "A", "xiamen"),
    "plainA2": ("d1", "kitchen", "mastodon", "A", "xiamen"),
    "plainB1": ("d2", "kitchen", "mastodon", "B", "xiamen"),
    "plainC1": ("d3", "garden", "email", None, None),
    "plainD1": ("d4", "garden", "bluesky", "A", None),
}


def _links(site: Site) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "code": code,
            "delivery_id": d,
            "story": story,
            "channel": channel,
            "variant": variant,
            "region": region,
            "original": f"http://x/{story}/{code}",
            "target": f"http://x/{story}/{code}?utm_source={channel}",
            "created_at": now,
        }
        for code, (d, story, channel, variant, region) in LINKS.items()
    ]
    with site.engine.begin() as conn:
        conn.execute(insert(links), rows)


def _journal(folder: Path) -> list[str]:
    """Two trackers' files: readers and bots over three UTC days, hashes in lower and upper
    case, hashes that are no hex, readers without a hash, with and without a referrer."""
    rng = random.Random(5)
    readers = [f"{rng.getrandbits(128):032x}" for _ in range(40)]
    ids = []
    journals = [Journal(folder), Journal(folder)]
    for i in range(1500):
        journal = journals[i % 2]
        code = rng.choice(sorted(LINKS))
        at = 1764547200 + i * 170 + rng.random()  # 2026-12-01 onwards
        pick = rng.random()
        if pick < 0.15:
            ids.append(journal.record(code, "bot", "mastodon", None, None, at))
        elif pick < 0.2:
            ids.append(journal.record(code, "head", None, None, None, at))
        elif pick < 0.3:
            ids.append(journal.record(code, "reader", None, rng.choice(readers).upper(), None, at))
        elif pick < 0.33:
            ids.append(journal.record(code, "reader", None, "zz" + readers[0][2:], None, at))
        elif pick < 0.36:
            ids.append(journal.record(code, "reader", None, None, "example.org", at))
        else:
            ref = rng.choice(("mastodon.social", None))
            ids.append(journal.record(code, "reader", None, rng.choice(readers), ref, at))
    for journal in journals:
        journal.close()
    return ids


def _convert_before_the_click(site: Site, click_ids: list[str]) -> None:
    when = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
    rows: list[dict[str, Any]] = []
    for n, click_id in enumerate(click_ids):
        d, story, channel, variant, region = LINKS[click_id.split(".", 1)[0]]
        rows.append(
            {
                "dedupe_key": f"order:{n}",
                "kind": "sale",
                "click_id": click_id,
                "offer_code": None,
                "delivery_id": d,
                "story": story,
                "channel": channel,
                "variant": variant,
                "region": region,
                "value_minor": 1000 + n,
                "currency": "CNY",
                "order_id": str(n),
                "store": None,
                "source": "api",
                "at": when,
            }
        )
    with site.engine.begin() as conn:
        conn.execute(insert(conversions), rows)


def _tables(site: Site) -> list[list[tuple[Any, ...]]]:
    with site.engine.connect() as conn:
        return [[tuple(row) for row in conn.execute(text(query))] for query in TABLES]


def _ingest_twice(site: Site) -> None:
    """Ingest, forget the offsets, ingest again: the second pass finds every id stored."""
    folder = journal_dir(site.settings.var_dir)
    first = ingest_mod.ingest(site.engine, folder, chunk_bytes=9000)
    assert (first.inserted, first.skipped) == (1500, 0)
    with site.engine.begin() as conn:
        conn.execute(delete(journal_offsets))
    assert ingest_mod.ingest(site.engine, folder, chunk_bytes=9000).inserted == 0


def test_the_plain_path_stores_what_the_json_path_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _journal(tmp_path / "journal")
    sites = []
    for name in ("plain", "json"):
        site = open_site(tmp_path / name, f"sqlite:///{tmp_path / name / 'var' / 'storyloop.db'}")
        _links(site)
        shutil.copytree(tmp_path / "journal", journal_dir(site.settings.var_dir))
        _convert_before_the_click(site, ids[::37])
        sites.append(site)
    plain, json_only = sites
    taken = []
    batch = ingest_mod._plain_batch

    def counted(conn: Any, lines: list[bytes]) -> int | None:
        fresh = batch(conn, lines)
        taken.append(fresh)
        return fresh

    monkeypatch.setattr(ingest_mod, "_plain_batch", counted)
    _ingest_twice(plain)
    assert taken.count(None) == 0 and sum(n or 0 for n in taken) == 1500  # every batch plain
    monkeypatch.setattr(ingest_mod, "_sqlite_plain", lambda conn, lines: None)
    _ingest_twice(json_only)
    got, expected = _tables(plain), _tables(json_only)
    assert [len(rows) for rows in got] == [len(rows) for rows in expected]
    assert all(got[n] == expected[n] for n in range(len(TABLES)))
    assert len(expected[0]) == 1500 and expected[6]  # conversion_readers filled by ingest
    for site in sites:
        site.engine.dispose()


@pytest.mark.parametrize(
    "odd",
    [
        b'{"code":"plainA1","id":"x.1","at":1764547200.5,"kind":"reader"}',  # keys reordered
        b'{"id":"x.\\u0031","code":"plainA1","at":1764547200.500000,"kind":"bot","agent":null,'
        b'"reader":null,"ref":null}',  # an escape
        b'{"id":"x.1","code":"plainA1","at":01764547200.500000,"kind":"bot","agent":null,'
        b'"reader":null,"ref":null}',  # not JSON
        b'{"id":"x.1","code":"plainA1","at":1764547200.500000,"kind":"bot","agent":"",'
        b'"reader":null,"ref":null}',  # an empty string is not null
        b"",
    ],
)
def test_a_line_not_in_the_trackers_shape_sends_its_batch_the_general_way(
    tmp_path: Path, odd: bytes
) -> None:
    site = open_site(tmp_path / "s", f"sqlite:///{tmp_path / 's' / 'var' / 'storyloop.db'}")
    _links(site)
    plain = (
        b'{"id":"x.2","code":"plainA1","at":1764547200.250000,"kind":"reader","agent":null,'
        b'"reader":"00ff00ff00ff00ff00ff00ff00ff00ff","ref":null}'
    )
    with site.engine.begin() as conn:
        ingest_mod.sqlite_setup(conn)
        assert ingest_mod._sqlite_plain(conn, [plain]) == 1  # the same line alone is plain
        assert ingest_mod._sqlite_plain(conn, [plain.replace(b"x.2", b"x.3"), odd]) is None
    site.engine.dispose()
