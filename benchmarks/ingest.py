"""Click ingest and report speed on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/ingest.py [--clicks 1000000] [--conversions 50000]
        [--db sqlite|postgresql|sqlite,postgresql] [--work DIR]

Journals N clicks (85% readers, 15% bots) over 1,000 deliveries in four journal files, times
``ingest`` moving them into the database (clicks, the report's totals and the dashboard's
rollup), then adds M conversions and times the report grouped by story × channel and by all
four dimensions. Goals (issue 17): 10,000,000 clicks ingested in under 60 s on SQLite; the
bytes written under 3x the data stored; the report over 1,000,000 clicks and 50,000
conversions under 1 s. ``--work`` puts the journal and the SQLite file elsewhere (a 10 M run
needs about 4 GB); the folder is deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work" / "ingest"
sys.path.insert(0, str(ROOT))  # tests.conftest too

from sqlalchemy import insert, select, text  # noqa: E402

from publisher import db  # noqa: E402
from publisher import settings as settings_mod  # noqa: E402
from publisher.tracking import report  # noqa: E402
from publisher.tracking.ingest import ingest  # noqa: E402
from publisher.tracking.journal import Journal, journal_dir  # noqa: E402
from publisher.tracking.schema import clicks, conversions, links  # noqa: E402

CHANNELS = ("mastodon", "bluesky", "telegram", "wechat", "email")


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


def cpu() -> float:
    """CPU seconds of this process, user + system: the host's load does not add to it."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def io() -> dict[str, int]:
    """This process's I/O counters: ``wchar`` (bytes passed to write calls) and ``write_bytes``
    (bytes it caused to be sent to the disk)."""
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return {k: int(v) for k, v in fields.items()}


def peak_reset() -> None:
    """Start counting this process's peak resident memory again (Linux's clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_mb() -> float:
    """This process's peak resident memory since ``peak_reset`` (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e6
    return 0.0


def timed(label: str, fn: Any) -> tuple[float, Any]:
    start, began = time.perf_counter(), cpu()
    result = fn()
    elapsed, used = time.perf_counter() - start, cpu() - began
    print(f"{label:52} {elapsed:7.2f} s wall {used:7.2f} s CPU")
    return elapsed, result


def database_bytes(engine: Any) -> int:
    """The data as stored: SQLite's file (checkpointed), or PostgreSQL's database size."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            path = Path(engine.url.database)
            return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        return int(conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar_one())


def written(engine: Any) -> int:
    """Bytes written so far: this process's write calls on SQLite (the database, its WAL and the
    temp files all go through them); on PostgreSQL, the WAL the server has generated (its data
    files are written from the WAL's pages, once per checkpoint)."""
    if engine.dialect.name == "sqlite":
        return io()["wchar"]
    with engine.connect() as conn:
        lsn = conn.exec_driver_sql("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").scalar_one()
    return int(lsn)


def run(url: str, n: int, conversions_n: int) -> dict[str, float]:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    (WORK / "pelicanconf.py").write_text(f"STORYLOOP = {{'database_url': {url!r}}}\n")
    settings = settings_mod.load(WORK / "pelicanconf.py")
    engine = db.connect(settings.database_url)
    db.upgrade(engine)
    link_rows = deliveries(engine, 100)
    folder = journal_dir(settings.var_dir)
    timed(
        f"journal {n:,} clicks (setup)",
        lambda: journal_clicks(folder, [r["code"] for r in link_rows], n),
    )
    journal_bytes = sum(p.stat().st_size for p in folder.glob("*.jsonl"))
    size_before, written_before = database_bytes(engine), written(engine)
    peak_reset()
    rss_before, cpu_before = peak_mb(), cpu()
    ingest_s, result = timed(f"ingest {n:,} clicks", lambda: ingest(engine, folder))
    ingest_cpu, ingest_peak = cpu() - cpu_before, peak_mb()
    grown = database_bytes(engine) - size_before  # checkpoints SQLite's WAL first
    wrote = written(engine) - written_before
    with engine.connect() as conn:
        ids = set(conn.execute(select(clicks.c.id)).scalars())
    assert len(ids) == n == result.inserted, (len(ids), result)
    timed("ingest again (nothing new)", lambda: ingest(engine, folder))
    add_conversions(engine, link_rows, conversions_n)
    label = f"report by story,channel ({n:,} clicks, {conversions_n:,} conv.)"
    report_s, built = timed(label, lambda: report.as_json(report.build(engine)))
    all_s, _ = timed(
        "report by story,channel,variant,region",
        lambda: report.as_json(report.build(engine, report.DIMENSIONS)),
    )
    assert built["totals"]["clicks"] <= n
    engine.dispose()
    print(
        f"  journal {journal_bytes / 1e6:,.1f} MB; database grew {grown / 1e6:,.1f} MB; "
        f"written {wrote / 1e6:,.1f} MB: {wrote / grown:.2f}x the data stored; "
        f"peak memory during ingest {ingest_peak:,.0f} MB (before it {rss_before:,.0f} MB)"
    )
    return {
        "ingest_wall": ingest_s,
        "ingest_cpu": ingest_cpu,
        "ingest_peak": ingest_peak,
        "amplification": wrote / grown,
        "grown_mb": grown / 1e6,
        "report_wall": max(report_s, all_s),
    }


def main() -> None:
    global WORK
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clicks", type=int, default=1_000_000)
    parser.add_argument("--conversions", type=int, default=50_000)
    parser.add_argument("--db", default="sqlite", help="sqlite, postgresql or both")
    parser.add_argument("--work", type=Path, default=WORK, help="working folder (deleted)")
    args = parser.parse_args()
    WORK = args.work.resolve()
    print("load average (1, 5, 15 min): {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    rows = {}
    for kind in args.db.split(","):
        print(f"{kind}:")
        server = None
        if kind == "postgresql":
            from tests.conftest import PostgresServer

            server = PostgresServer()
            server.start()
            url = str(server.create_database())
        else:
            url = "sqlite:///var/storyloop.db"
        try:
            rows[kind] = run(url, args.clicks, args.conversions)
        finally:
            if server is not None:
                server.stop()
            shutil.rmtree(WORK, ignore_errors=True)  # a 10 M run leaves gigabytes
    head = "| database | clicks | ingest wall | ingest CPU | µs CPU / click | peak memory |"
    print(head + " written / stored | report |")
    print("|---|---|---|---|---|---|---|---|")
    for kind, r in rows.items():
        print(
            f"| {kind} | {args.clicks:,} | {r['ingest_wall']:.1f} s | {r['ingest_cpu']:.1f} s "
            f"| {r['ingest_cpu'] / args.clicks * 1e6:.1f} | {r['ingest_peak']:,.0f} MB "
            f"| {r['amplification']:.2f}x "
            f"| {r['report_wall']:.2f} s |"
        )
    ok = all(r["amplification"] < 3 and r["report_wall"] < 1 for r in rows.values())
    print("goals met" if ok else "GOALS MISSED (written < 3x stored, report < 1 s)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
