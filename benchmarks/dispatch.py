"""Dispatch benchmark: 10,000 deliveries through the outbox channel, on SQLite and PostgreSQL.

Two measurements, both through the engine's own path (claim, tracked links, render, in flight,
outbox write, receipt):

- throughput: 10,000 deliveries already due, drained by one ``Dispatcher``: deliveries/s;
- lateness: 10,000 deliveries falling due over 10 s (1,000/s), published by ``Runner`` (the
  APScheduler-driven loop of ``storyloop run``): sent_at - due_at, p50 and p99.

The database lives on disk, as in production. The outbox stands in for the networks, so by
default its files go to a RAM-backed folder (``/dev/shm``) where there is one: on a small VM's
ext4, creating 20,000 files a run costs more than the whole engine does (inode allocation, most of
the kernel time in a profile), which measures the disk, not the engine. ``--outbox-on disk``
measures that case too.

Usage: ``.venv/bin/python benchmarks/dispatch.py [--n 10000] [--db sqlite,postgresql]
[--outbox-on ram|disk]``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "engine")]

from enginekit import story, write_manifest, write_settings  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from channels.base import Links  # noqa: E402
from publisher import ledger, scheduler  # noqa: E402
from publisher.dispatch import Dispatcher  # noqa: E402
from publisher.settings import Settings  # noqa: E402

RAM = Path("/dev/shm")
OUTBOX_PARENT: Path | None = None  # where the outbox's files go; None: beside the site, on disk


@contextlib.contextmanager
def site(url: str, n: int, start: datetime, spread: float) -> Iterator[Settings]:
    """A site with n stories due from ``start`` over ``spread`` seconds, one outbox channel."""
    outbox = (
        tempfile.TemporaryDirectory(prefix="storyloop-outbox-", dir=OUTBOX_PARENT)
        if OUTBOX_PARENT
        else contextlib.nullcontext("var")  # beside the site
    )
    with tempfile.TemporaryDirectory() as tmp, outbox as var:
        settings = write_settings(
            Path(tmp),
            db_url=url,
            var_dir=var,
            channels={"outbox": {"type": "outbox"}},
            claim_batch=200,
            publish_threads=4,
            sweep_seconds=1,
        )
        step = spread / n
        stories = [story(f"s{i:05d}", start + timedelta(seconds=i * step)) for i in range(n)]
        write_manifest(Path(tmp), stories)
        yield settings


def no_links(conn: Any, settings: Settings, requests: list[Any]) -> list[Links]:
    return [Links() for _ in requests]


def cpu() -> float:
    """This process's CPU time, all threads, user + system (the host's load does not add to it)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def throughput(url: str, n: int, skip_links: bool = False) -> tuple[float, float]:
    """Deliveries per second of wall time, and CPU seconds per 1,000 deliveries."""
    with site(url, n, datetime.now(UTC) - timedelta(minutes=5), 60) as settings:
        engine = scheduler.open_database(settings)
        watch = scheduler.ManifestWatch(settings.manifest_path)
        scheduler.apply_plan(engine, watch.manifest, settings, datetime.now(UTC))
        dispatcher = Dispatcher(
            engine, settings, watch.stories, prepare_links=no_links if skip_links else None
        )
        began, cpu_began = time.perf_counter(), cpu()
        outcomes = dispatcher.run_due()
        elapsed, used = time.perf_counter() - began, cpu() - cpu_began
        assert outcomes == {"sent": n}, outcomes
        engine.dispose()
        return n / elapsed, used / n * 1000


def lateness(url: str, n: int, spread: float) -> tuple[float, float, float]:
    with site(url, n, datetime.now(UTC) + timedelta(seconds=5), spread) as settings:
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


class Database:
    """Fresh empty databases of one kind: SQLite files in a temp folder, or a throwaway
    PostgreSQL server (the one the tests start) with a new database per measurement."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.folder = Path(tempfile.mkdtemp(prefix="storyloop-bench-"))
        self.server: Any = None
        self.count = 0
        if kind == "postgresql":
            from tests.conftest import PostgresServer

            self.server = PostgresServer()
            self.server.start()

    def fresh(self) -> str:
        self.count += 1
        if self.server is not None:
            return str(self.server.create_database())
        return f"sqlite:///{self.folder / f'storyloop-{self.count}.db'}"

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--spread", type=float, default=10.0, help="seconds the n fall due over")
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument(
        "--skip-links",
        action="store_true",
        help="also measure throughput without the tracked-links step (to see its share)",
    )
    parser.add_argument("--no-lateness", action="store_true", help="measure throughput only")
    parser.add_argument(
        "--outbox-on",
        choices=["ram", "disk"],
        default="ram" if RAM.is_dir() else "disk",
        help=f"where the outbox writes: {RAM} (default where it exists) or beside the site",
    )
    args = parser.parse_args()
    global OUTBOX_PARENT
    OUTBOX_PARENT = RAM if args.outbox_on == "ram" else None
    print(
        f"{args.n} deliveries through the outbox channel, due over {args.spread:g} s for lateness;"
        f" database on disk, outbox on {args.outbox_on}"
    )
    print(f"load average {os.getloadavg()[0]:.1f}: wall figures are from a shared host")
    print("| database | deliveries/s (all due) | CPU s per 1,000 | lateness p50 | p99 | max |")
    print("|---|---|---|---|---|---|")
    for kind in args.db.split(","):
        database = Database(kind)
        try:
            rate, per = throughput(database.fresh(), args.n)
            if args.no_lateness:
                print(f"| {kind} | {rate:,.0f} | {per:.3f} s | | | |", flush=True)
            else:
                p50, p99, worst = lateness(database.fresh(), args.n, args.spread)
                print(
                    f"| {kind} | {rate:,.0f} | {per:.3f} s | {p50 * 1000:.0f} ms "
                    f"| {p99 * 1000:.0f} ms | {worst * 1000:.0f} ms |",
                    flush=True,
                )
            if args.skip_links:
                bare, bare_per = throughput(database.fresh(), args.n, skip_links=True)
                print(
                    f"| {kind}, links step skipped | {bare:,.0f} | {bare_per:.3f} s | | | |",
                    flush=True,
                )
        finally:
            database.close()


if __name__ == "__main__":
    main()
