"""The least work ingest can do a click on SQLite, to set the 10 M clicks in 60 s goal against.

    .venv/bin/python benchmarks/ingest_floor.py [--clicks 1000000,4000000] [--work DIR]

Not Storyloop's ingest (``benchmarks/ingest.py`` measures that): the same work cut to its
bones, to find what any design of it would cost on this host's SQLite. Lines are journalled
in the tracker's own shape, 85 % readers over 1,000 links in four journal files' id spaces,
200,000 a transaction, and each batch goes through what ingest has to do and nothing else:

- parse: the batch's lines as one JSON array by Python's C parser (the fastest way tried, see
  docs/BENCHMARKS.md), and a row of integers a click (the click id as its file's number and
  its counter in one 64-bit key, the link as its index, the reader's hash as a number), no
  validation;
- stage: the rows bound into a temporary table by ``executemany``;
- append: the clicks not stored before (by id) appended to a ``clicks`` table keyed by it;
- totals: reader clicks per link and day, added to what is stored;
- readers: each reader once per group (``click_readers``) and once per day (``daily_readers``),
  both keyed by integers;
- commit.

It prints CPU a click for each step and in all, and the share of the 6 µs a click that 10 M in
60 s allows. Stores, keys and columns are those of the slimmest schema that keeps what the
dashboard and attribution need; the folder is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

BATCH = 200_000
LINKS = 1000
BUDGET_US = 60 / 10_000_000 * 1e6  # the goal: 10 M clicks in 60 s
DAY = 86_400
START = 1_764_547_200.0  # 2025-12-01 00:00 UTC

SCHEMA = (
    "CREATE TABLE clicks (id INTEGER PRIMARY KEY, link INTEGER NOT NULL, at REAL NOT NULL, "
    "kind INTEGER NOT NULL, reader INTEGER, ref TEXT)",
    "CREATE TABLE totals (link INTEGER, day INTEGER, clicks INTEGER NOT NULL, "
    "PRIMARY KEY (link, day)) WITHOUT ROWID",
    "CREATE TABLE click_readers (grp INTEGER, reader INTEGER, day INTEGER NOT NULL, "
    "PRIMARY KEY (grp, reader)) WITHOUT ROWID",
    "CREATE TABLE daily_readers (day INTEGER, reader INTEGER, PRIMARY KEY (day, reader)) "
    "WITHOUT ROWID",
    "CREATE TEMP TABLE stage (id INTEGER PRIMARY KEY, link INTEGER, at REAL, kind INTEGER, "
    "reader INTEGER, ref TEXT)",
)
STEPS = {
    "stage": ("DELETE FROM stage",),  # then executemany
    "append": (
        "DELETE FROM stage WHERE id IN (SELECT id FROM clicks WHERE id IN (SELECT id FROM stage))",
        "INSERT INTO clicks SELECT * FROM stage",
    ),
    "totals": (
        f"INSERT INTO totals SELECT link, CAST(at / {DAY} AS INTEGER), count(*) FROM stage "
        "WHERE kind = 1 GROUP BY 1, 2 ON CONFLICT DO UPDATE SET clicks = clicks + excluded.clicks",
    ),
    "readers": (
        f"INSERT OR IGNORE INTO click_readers SELECT link % 300, reader, "
        f"MIN(CAST(at / {DAY} AS INTEGER)) FROM stage WHERE reader IS NOT NULL GROUP BY 1, 2",
        f"INSERT OR IGNORE INTO daily_readers SELECT CAST(at / {DAY} AS INTEGER), reader "
        "FROM stage WHERE reader IS NOT NULL GROUP BY 1, 2",
    ),
}


def batches(clicks: int, rng: random.Random) -> Iterator[list[str]]:
    """The journal's lines, in the shape ``Journal.record`` writes them, a batch at a time."""
    codes = [f"c{i:07d}" for i in range(LINKS)]
    prefixes = [f"{rng.getrandbits(48):012x}" for _ in range(4)]
    for start in range(0, clicks, BATCH):
        lines = []
        for i in range(start, min(clicks, start + BATCH)):
            code = codes[rng.randrange(LINKS)]
            bot = rng.random() < 0.15
            reader = "null" if bot else f'"{rng.getrandbits(64):016x}"'
            kind, agent = ('"bot"', '"Googlebot"') if bot else ('"reader"', "null")
            lines.append(
                f'{{"id":"{code}.{prefixes[i % 4]}{i // 4:x}","code":"{code}",'
                f'"at":{START + i * 30 * DAY / clicks:.6f},"kind":{kind},'
                f'"agent":{agent},"reader":{reader},'
                '"ref":"example.com"}'
            )
        yield lines


def run(clicks: int, work: Path) -> dict[str, float]:
    path = work / f"floor-{clicks}.db"
    con = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "cache_size=-65536"):
        con.execute(f"PRAGMA {pragma}")
    for statement in SCHEMA:
        con.execute(statement)
    link_index = {f"c{i:07d}": i for i in range(LINKS)}
    files: dict[str, int] = {}  # each journal file's id prefix, as a small number
    spent = dict.fromkeys(("parse", *STEPS, "commit"), 0.0)
    for lines in batches(clicks, random.Random(clicks)):
        t = time.process_time()
        for line in lines[:64]:  # the four files' prefixes; a real ingest reads them per file
            files.setdefault(line.split(".", 1)[1][:12], len(files))
        rows = [
            (
                files[(tail := c["id"].rpartition(".")[2])[:12]] << 40 | int(tail[12:], 16),
                link_index[c["code"]],
                c["at"],
                1 if c["kind"] == "reader" else 2,
                None if c["reader"] is None else int(c["reader"], 16) >> 1,
                c["ref"],
            )
            for c in json.loads("[" + ",".join(lines) + "]")
        ]
        spent["parse"] += time.process_time() - t
        con.execute("BEGIN")
        for step, statements in STEPS.items():
            t = time.process_time()
            for statement in statements:
                con.execute(statement)
            if step == "stage":
                con.executemany("INSERT INTO stage VALUES (?, ?, ?, ?, ?, ?)", rows)
            spent[step] += time.process_time() - t
        t = time.process_time()
        con.execute("COMMIT")
        spent["commit"] += time.process_time() - t
    stored = con.execute("SELECT count(*) FROM clicks").fetchone()[0]
    con.close()
    if stored != clicks:
        raise SystemExit(f"{stored} clicks stored of {clicks}")
    return {step: seconds / clicks * 1e6 for step, seconds in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", default="1000000,4000000")
    parser.add_argument(
        "--work", type=Path, help="a folder for the database (default: a temporary one)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="floor-", dir=args.work))
    print(f"SQLite {sqlite3.sqlite_version}; the goal allows {BUDGET_US:.1f} µs of CPU a click")
    try:
        for clicks in (int(n) for n in args.clicks.split(",")):
            us = run(clicks, work)
            total = sum(us.values())
            parts = ", ".join(f"{step} {v:.2f}" for step, v in us.items())
            print(
                f"{clicks:>11,} clicks: {total:.2f} µs of CPU a click ({parts}); "
                f"10 M would take {total * 10:.0f} s, {total / BUDGET_US:.2f}x the goal",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
