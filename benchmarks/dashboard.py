"""Dashboard speed on a real history, SQLite and PostgreSQL, against the plain report query.

    .venv/bin/python benchmarks/dashboard.py [--scale 1.0] [--db sqlite|postgresql|both]

At scale 1: 10,000 deliveries (1,000 stories x 5 channels x 2 variants, one in ten a
testimonial), 1,000,000 clicks over four weeks (85 % readers from 300,000 daily reader hashes,
15 % bots) journalled and ingested through the real path, and 50,000 conversions (online sales
and leads by click id, in-shop redemptions through a click or with a code only, in three
stores). Then, in the same run and on the same database, it times

- the plain report query (``report.build`` by story and channel, the old ``storyloop report``);
- the dashboard's server work for one page: reading every section (``queries.load``) and
  rendering the page (charts and template), each the median of five runs after one warm-up.

Goal: the dashboard answers in under 500 ms server time at scale 1 on both databases, judged on
CPU time (on a shared machine wall time is mostly waiting for a core). Wall time and CPU time
are printed; the CPU time is this process's plus, on PostgreSQL, that of the server
process behind the benchmark's one connection (read from /proc), so it is the work done however
busy the machine is. Parallel query workers, if PostgreSQL starts any, are not in it.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work" / "dashboard"
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from publisher import db, ledger  # noqa: E402
from publisher.dashboard import pages, queries  # noqa: E402
from publisher.tracking import report  # noqa: E402
from publisher.tracking.ingest import ingest  # noqa: E402
from publisher.tracking.journal import Click, Journal, journal_dir  # noqa: E402
from publisher.tracking.report import Filters  # noqa: E402
from publisher.tracking.schema import conversions, links, offer_codes  # noqa: E402

CHANNELS = ("mastodon", "bluesky", "telegram", "wechat", "email")
STORES = ("xiamen-1", "berlin-1", "shanghai-1")
ZONE = "Asia/Shanghai"
LAST_DAY = date(2026, 3, 28)
DAYS = 28


def seed(engine: Any, var_dir: Path, scale: float) -> dict[str, int]:
    rng = random.Random(12)
    stories = max(2, int(1000 * scale))
    start = datetime(2026, 3, 1, tzinfo=UTC)
    made = []
    for s in range(stories):
        for channel in CHANNELS:
            for variant in ("A", "B"):
                made.append(
                    {
                        "id": ledger.delivery_id(f"story-{s}", channel, variant),
                        "story": f"story-{s}",
                        "channel": channel,
                        "variant": variant,
                        "region": ("xiamen", "shanghai", "berlin")[s % 3],
                        "category": "testimonials" if s % 10 == 0 else "stories",
                    }
                )
    now = datetime.now(UTC)
    rows = []
    for i, d in enumerate(made):
        sent = start + timedelta(hours=rng.randrange(DAYS * 24))
        state = "sent" if i % 50 else rng.choice(("failed", "unknown", "planned", "retry_wait"))
        rows.append(
            {
                **d,
                "timezone": ZONE,
                "content_hash": "h",
                "due_at": sent,
                "state": state,
                "attempts": 1,
                "next_attempt_at": None if state in ("sent", "failed") else sent,
                "url": f"https://{d['channel']}.example/{d['id']}" if state == "sent" else None,
                "last_error": None if state == "sent" else "benchmark",
                "sent_at": sent if state == "sent" else None,
                "created_at": now,
                "updated_at": now,
            }
        )
    link_rows = [
        {
            "code": f"c{i:09d}",
            "delivery_id": d["id"],
            **{k: d[k] for k in ("story", "channel", "variant", "region")},
            "original": f"http://x/{d['story']}.html",
            "target": f"http://x/{d['story']}.html?utm_source={d['channel']}",
            "created_at": now,
        }
        for i, d in enumerate(made)
    ]
    offers = [
        {
            **{k: v for k, v in r.items() if k not in ("original", "target")},
            "code": f"SL-{i:06d}",
            "offer": "10 %",
        }
        for i, r in enumerate(link_rows)
    ]
    with engine.begin() as conn:
        conn.execute(insert(ledger.deliveries), rows)
        conn.execute(insert(links), link_rows)
        conn.execute(insert(offer_codes), offers)

    n_clicks = int(1_000_000 * scale)
    journals = [Journal(journal_dir(var_dir)) for _ in range(4)]
    readers = [f"{rng.getrandbits(128):032x}" for _ in range(max(10, int(300_000 * scale)))]
    reader_clicks: list[tuple[str, int]] = []
    span = DAYS * 86400
    base = start.timestamp()
    for i in range(n_clicks):
        journal = journals[i % 4]
        index = int(rng.paretovariate(1.1)) % len(link_rows)
        code = link_rows[index]["code"]
        at = base + rng.random() * span
        click_id = journal.new_click_id(code)
        if rng.random() < 0.15:
            journal.append(Click(click_id, code, at, "bot", "mastodon", None, None))
        else:
            reader = rng.choice(readers)
            journal.append(Click(click_id, code, at, "reader", None, reader, "mastodon.social"))
            if len(reader_clicks) < 200_000:
                reader_clicks.append((click_id, index))
    for journal in journals:
        journal.close()
    t = time.perf_counter()
    ingest(engine, journal_dir(var_dir))
    ingest_s = time.perf_counter() - t

    rows = []
    for i in range(int(50_000 * scale)):
        kind = rng.choice(("lead", "sale", "sale", "redemption", "redemption"))
        linked = kind != "redemption" or rng.random() < 0.5
        click_id, index = rng.choice(reader_clicks)
        link = link_rows[index]
        rows.append(
            {
                "dedupe_key": f"b:{i}",
                "kind": kind,
                "click_id": click_id if linked else None,
                "offer_code": None if linked else offers[index]["code"],
                "delivery_id": link["delivery_id"],
                **{k: link[k] for k in ("story", "channel", "variant", "region")},
                "value_minor": 0 if kind == "lead" else rng.randrange(1000, 500000),
                "currency": "EUR" if index % 3 == 2 else "CNY",
                "order_id": str(i),
                "store": rng.choice(STORES) if kind == "redemption" else None,
                "source": "api",
                "at": start + timedelta(seconds=rng.randrange(span)),
            }
        )
    with engine.begin() as conn:
        for chunk in range(0, len(rows), 5000):
            conn.execute(insert(conversions), rows[chunk : chunk + 5000])
    return {
        "deliveries": len(made),
        "clicks": n_clicks,
        "conversions": len(rows),
        "ingest_ms": int(ingest_s * 1000),
    }


def backend_cpu(engine: Any) -> Callable[[], float]:
    """CPU seconds used so far by the database server's process serving this engine's one
    pooled connection (PostgreSQL), or nothing (SQLite works inside this process)."""
    if engine.dialect.name != "postgresql":
        return lambda: 0.0
    with engine.connect() as conn:
        pid = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
    ticks = os.sysconf("SC_CLK_TCK")

    def used() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    return used


def median_ms(
    fn: Callable[[], Any], server: Callable[[], float], runs: int = 5
) -> tuple[float, float, Any]:
    """(median wall ms, median CPU ms of this process plus the database server's, last
    result), after one warm-up."""
    result = fn()
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu, db_cpu = time.perf_counter(), time.process_time(), server()
        result = fn()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu + server() - db_cpu) * 1000)
    return statistics.median(walls), statistics.median(cpus), result


def measure(url: str, scale: float, *, reuse: bool = False) -> dict[str, Any]:
    name = "postgresql" if url.startswith("postgresql") else "sqlite"
    engine = db.connect(url)
    db.upgrade(engine)
    if reuse:
        sizes = {"deliveries": 0, "clicks": 0, "conversions": 0, "ingest_ms": 0}
    else:
        sizes = seed(engine, WORK / name / "var", scale)
        if name == "postgresql":
            # what autovacuum does within a minute of a bulk load on a running server: the
            # planner's statistics and the visibility map (index-only scans read no heap)
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
    filters = Filters(since=LAST_DAY - timedelta(days=DAYS - 1), until=LAST_DAY, timezone=ZONE)

    def plain() -> Any:
        return report.as_json(report.build(engine, ("story", "channel")))

    def load() -> Any:
        return queries.load(engine, filters)

    def page(data: queries.Dashboard) -> str:
        context = pages.context(data, "en", interactive=True)
        context["csrf_field"] = lambda: ""
        return (
            pages.environment("en")
            .get_template("dashboard.html")
            .render(request=None, account=None, path="/dashboard", **context)
        )

    engine.dispose()
    engine = db.connect(url, pool_size=1, max_overflow=0)
    server = backend_cpu(engine)
    report_ms, report_cpu, _ = median_ms(plain, server)
    load_ms, load_cpu, data = median_ms(load, server)
    render_ms, render_cpu, html = median_ms(lambda: page(data), server)
    engine.dispose()
    return {
        "db": name,
        **sizes,
        "report_ms": report_ms,
        "report_cpu_ms": report_cpu,
        "load_ms": load_ms,
        "load_cpu_ms": load_cpu,
        "render_ms": render_ms,
        "render_cpu_ms": render_cpu,
        "page_kb": len(html) // 1024,
    }


def postgres_url() -> tuple[Any, str]:
    from tests.conftest import PostgresServer

    server = PostgresServer()
    server.start()
    return server, server.create_database()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--reuse", action="store_true", help="Measure the SQLite file of the last run again."
    )
    args = parser.parse_args()
    sqlite_file = WORK / "sqlite" / "var" / "bench.db"
    reuse = args.reuse and sqlite_file.exists()
    if not reuse:
        shutil.rmtree(WORK, ignore_errors=True)
        (WORK / "sqlite" / "var").mkdir(parents=True)
    results = []
    if args.db in ("sqlite", "both"):
        results.append(measure(f"sqlite:///{sqlite_file}", args.scale, reuse=reuse))
    if args.db in ("postgresql", "both"):
        (WORK / "postgresql" / "var").mkdir(parents=True, exist_ok=True)
        server, url = postgres_url()
        try:
            results.append(measure(url, args.scale))
        finally:
            server.stop()
    ok = True
    for r in results:
        server_ms = r["load_ms"] + r["render_ms"]
        server_cpu = r["load_cpu_ms"] + r["render_cpu_ms"]
        # judged on CPU time: on a shared machine the wall time is mostly waiting for a core
        ok = ok and (server_cpu < 500 or args.scale < 1)
        print(
            f"{r['db']:10} {r['deliveries']:,} deliveries, {r['clicks']:,} clicks, "
            f"{r['conversions']:,} conversions (ingest {r['ingest_ms'] / 1000:.1f} s)\n"
            f"  plain report query   {r['report_ms']:7.1f} ms wall "
            f"{r['report_cpu_ms']:7.1f} ms cpu\n"
            f"  dashboard: read      {r['load_ms']:7.1f} ms wall {r['load_cpu_ms']:7.1f} ms cpu\n"
            f"  dashboard: render    {r['render_ms']:7.1f} ms wall {r['render_cpu_ms']:7.1f} ms cpu"
            f"  ({r['page_kb']} KiB)\n"
            f"  dashboard total      {server_ms:7.1f} ms wall {server_cpu:7.1f} ms cpu = "
            f"{server_ms / r['report_ms']:.2f}x (wall), {server_cpu / r['report_cpu_ms']:.2f}x "
            "(cpu) the plain report"
        )
    print("load average (1, 5, 15 min): {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    print("goal met (< 500 ms CPU)" if ok else "GOAL MISSED (dashboard < 500 ms server CPU time)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
