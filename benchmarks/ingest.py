"""Click ingest and report speed on SQLite.

    .venv/bin/python benchmarks/ingest.py [--clicks 1000000] [--conversions 50000]

Journals N clicks (85% readers, 15% bots) over 1,000 deliveries in four journal files, times
``ingest`` moving them into the database, then adds M conversions and times the report grouped
by story × channel and by all four dimensions. Goals: ingest of 1,000,000 clicks < 30 s;
report over 1,000,000 clicks and 50,000 conversions < 1 s.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work" / "ingest"
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select, text  # noqa: E402

from publisher import db  # noqa: E402
from publisher import settings as settings_mod  # noqa: E402
from publisher.tracking import report  # noqa: E402
from publisher.tracking.ingest import ingest  # noqa: E402
from publisher.tracking.journal import Journal, journal_dir  # noqa: E402
from publisher.tracking.schema import clicks, conversions, links  # noqa: E402

CHANNELS = ("mastodon", "bluesky", "telegram", "wechat", "email")
SETTINGS = 'STORYLOOP = {"database_url": "sqlite:///var/storyloop.db"}\n'


def deliveries(engine: Any, stories: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    made = []
    for s in range(stories):
        for channel in CHANNELS:
            for variant in ("A", "B"):
                made.append(
                    {
                        "id": f"s{s}-{channel}-{variant}",
                        "story": f"story-{s}",
                        "channel": channel,
                        "variant": variant,
                        "region": ("xiamen", "shanghai", "berlin")[s % 3],
                    }
                )
    ledger_rows = [
        {
            **d,
            "category": "stories",
            "timezone": "UTC",
            "content_hash": "h",
            "due_at": now,
            "state": "sent",
            "sent_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for d in made
    ]
    link_rows = [
        {
            **{k: v for k, v in d.items() if k != "id"},
            "delivery_id": d["id"],
            "code": f"c{i:09d}",
            "original": f"http://x/{d['story']}.html",
            "target": f"http://x/{d['story']}.html?utm_source={d['channel']}",
            "created_at": now,
        }
        for i, d in enumerate(made)
    ]
    names = ", ".join(ledger_rows[0])
    values = ", ".join(f":{k}" for k in ledger_rows[0])
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO deliveries ({names}) VALUES ({values})"), ledger_rows)
        conn.execute(insert(links), link_rows)
    return link_rows


def journal_clicks(folder: Path, codes: list[str], n: int) -> None:
    rng = random.Random(7)
    journals = [Journal(folder) for _ in range(4)]
    readers = [f"{rng.getrandbits(128):032x}" for _ in range(200_000)]
    for i in range(n):
        journal = journals[i % 4]
        code = codes[int(rng.paretovariate(1.2)) % len(codes)]
        if rng.random() < 0.15:
            journal.record(code, "bot", "mastodon", None, None)
        else:
            journal.record(code, "reader", None, rng.choice(readers), "mastodon.social")
    for journal in journals:
        journal.close()


def add_conversions(engine: Any, link_rows: list[dict[str, Any]], n: int) -> None:
    rng = random.Random(11)
    now = datetime.now(UTC)
    rows = []
    for i in range(n):
        link = rng.choice(link_rows)
        kind = rng.choice(("lead", "sale", "sale", "redemption"))
        rows.append(
            {
                "dedupe_key": f"order:{i}",
                "kind": kind,
                "click_id": f"{link['code']}.bench{i:x}" if kind != "redemption" else None,
                "offer_code": None,
                "delivery_id": link["delivery_id"],
                "story": link["story"],
                "channel": link["channel"],
                "variant": link["variant"],
                "region": link["region"],
                "value_minor": 0 if kind == "lead" else rng.randrange(1000, 500000),
                "currency": "CNY",
                "order_id": str(i),
                "store": None,
                "source": "api",
                "at": now,
            }
        )
    with engine.begin() as conn:
        conn.execute(insert(conversions), rows)


def timed(label: str, fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    print(f"{label:52} {elapsed:7.2f} s")
    return elapsed, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clicks", type=int, default=1_000_000)
    parser.add_argument("--conversions", type=int, default=50_000)
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    (WORK / "pelicanconf.py").write_text(SETTINGS, encoding="utf-8")
    settings = settings_mod.load(WORK / "pelicanconf.py")
    engine = db.connect(settings.database_url)
    db.upgrade(engine)
    link_rows = deliveries(engine, 100)
    folder = journal_dir(settings.var_dir)
    timed(
        f"journal {args.clicks:,} clicks (setup)",
        lambda: journal_clicks(folder, [r["code"] for r in link_rows], args.clicks),
    )
    ingest_s, result = timed(f"ingest {args.clicks:,} clicks", lambda: ingest(engine, folder))
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(clicks)).scalar_one()
    assert stored == args.clicks == result.inserted, (stored, result)
    timed("ingest again (nothing new)", lambda: ingest(engine, folder))
    add_conversions(engine, link_rows, args.conversions)
    label = f"report by story,channel ({args.clicks:,} clicks, {args.conversions:,} conv.)"
    report_s, built = timed(label, lambda: report.as_json(report.build(engine)))
    all_s, _ = timed(
        "report by story,channel,variant,region",
        lambda: report.as_json(report.build(engine, report.DIMENSIONS)),
    )
    print(f"rows: {len(built['rows'])}, totals clicks: {built['totals']['clicks']:,}")
    engine.dispose()
    print("load average (1, 5, 15 min): {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    ok = ingest_s < 30 and max(report_s, all_s) < 1
    print("goals met" if ok else "GOALS MISSED (ingest < 30 s, report < 1 s)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
