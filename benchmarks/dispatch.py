"""Dispatch benchmark: 10,000 deliveries through the outbox channel, on SQLite and PostgreSQL.

Two measurements, both through the engine's own path (claim, tracked links, render, in flight,
outbox write, receipt):

- throughput: 10,000 deliveries already due, drained by one ``Dispatcher``: deliveries/s;
- lateness: 10,000 deliveries falling due over 10 s (1,000/s), published by ``Runner`` (the
  APScheduler-driven loop of ``storyloop run``): sent_at - due_at, p50 and p99.

Usage: ``.venv/bin/python benchmarks/dispatch.py [--n 10000] [--db sqlite,postgresql]``
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "engine")]

from enginekit import story, write_manifest, write_settings  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from publisher import ledger, scheduler  # noqa: E402
from publisher.dispatch import Dispatcher  # noqa: E402
from publisher.settings import Settings  # noqa: E402


def make_site(root: Path, url: str, n: int, start: datetime, spread: float) -> Settings:
    settings = write_settings(
        root,
        db_url=url,
        channels={"outbox": {"type": "outbox"}},
        claim_batch=200,
        publish_threads=1,
        sweep_seconds=1,
    )
    step = spread / n
    stories = [story(f"s{i:05d}", start + timedelta(seconds=i * step)) for i in range(n)]
    write_manifest(root, stories)
    return settings


def throughput(url: str, n: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_site(Path(tmp), url, n, datetime.now(UTC) - timedelta(minutes=5), 60)
        engine = scheduler.open_database(settings)
        watch = scheduler.ManifestWatch(settings.manifest_path)
        scheduler.apply_plan(engine, watch.manifest, settings, datetime.now(UTC))
        dispatcher = Dispatcher(engine, settings, watch.stories)
        began = time.perf_counter()
        outcomes = dispatcher.run_due()
        elapsed = time.perf_counter() - began
        assert outcomes == {"sent": n}, outcomes
        engine.dispose()
        return n / elapsed


def lateness(url: str, n: int, spread: float) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        start = datetime.now(UTC) + timedelta(seconds=5)
        settings = make_site(Path(tmp), url, n, start, spread)
        engine = scheduler.open_database(settings)
        runner = scheduler.Runner(settings, engine)
        thread = threading.Thread(target=runner.run)
        thread.start()
        try:
            _wait_all_sent(engine, n, timeout=spread + 120)
        finally:
            runner.request_stop()
            thread.join()
        with engine.connect() as conn:
            rows = conn.execute(select(ledger.d.due_at, ledger.d.sent_at)).all()
        engine.dispose()
        late = sorted((sent - due).total_seconds() for due, sent in rows)
        return statistics.median(late), late[int(len(late) * 0.99) - 1], late[-1]


def _wait_all_sent(engine: object, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:  # type: ignore[attr-defined]
            sent = conn.execute(
                select(func.count()).where(ledger.d.state == ledger.SENT)
            ).scalar_one()
        if sent == n:
            return
        time.sleep(0.5)
    raise TimeoutError(f"only {sent} of {n} sent")


def databases(names: list[str]) -> list[tuple[str, str, object]]:
    out: list[tuple[str, str, object]] = []
    for name in names:
        if name == "sqlite":
            folder = Path(tempfile.mkdtemp(prefix="storyloop-bench-"))
            out.append((name, f"sqlite:///{folder / 'storyloop.db'}", folder))
        else:
            from tests.conftest import PostgresServer

            server = PostgresServer()
            server.start()
            out.append((name, "", server))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--spread", type=float, default=10.0, help="seconds the n fall due over")
    parser.add_argument("--db", default="sqlite,postgresql")
    args = parser.parse_args()
    print(f"{args.n} deliveries through the outbox channel")
    print("| database | deliveries/s (all due) | lateness p50 | p99 | max |")
    print("|---|---|---|---|---|")
    for name, url, handle in databases(args.db.split(",")):
        try:
            fresh = (lambda: handle.create_database()) if name != "sqlite" else None  # type: ignore[attr-defined]
            rate = throughput(fresh() if fresh else url, args.n)
            if name == "sqlite":
                Path(url[len("sqlite:///") :]).unlink()
            p50, p99, worst = lateness(fresh() if fresh else url, args.n, args.spread)
            print(f"| {name} | {rate:,.0f} | {p50 * 1000:.0f} ms | {p99 * 1000:.0f} ms | {worst * 1000:.0f} ms |")
        finally:
            if name == "sqlite":
                shutil.rmtree(handle, ignore_errors=True)  # type: ignore[arg-type]
            else:
                handle.stop()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
