"""Plan benchmark: `storyloop plan --apply` for growing corpora on the sample's eight channels.

Each size runs in a child process of its own (so its peak RSS is its own), and reports CPU time
(``getrusage``, user + system) for:

- ``desired``: placing every delivery with the sample's windows and daily caps;
- ``no caps``: the same corpus with the caps taken out (the cost caps add, same run);
- ``walk``: the day-by-day walk the plan used before (tests/engine/plan_walk.py), up to
  ``--walk-upto`` stories, since it grows with the square of the queue;
- ``diff + write``: reading an empty SQLite ledger and writing the plan in steps, as
  ``plan --apply`` does, with the longest step's CPU and wall time (the write lock is held for
  one step at a time);
- a full garbage collection after the writes (``gc.collect()``, printed apart): the plan pauses
  Python's cycle collector, and this is at most what it leaves for later.

``--writer`` also runs a second process that writes to the same database every 5 ms while the
plan is written, and reports how long its ``BEGIN IMMEDIATE`` waited at worst. ``--runs N`` runs
every size N times, the sizes in turn (so a drift in the host's load touches each size alike),
prints every run and compares the doublings by each size's median CPU: one run's noise at a
size was as large as a tenth of the figure, the same order as the goal's margin. With three runs
a size the medians still moved by about 0.1x a doubling from run to run of the same code; with
five, two runs of the same code agreed within 0.05x (docs/BENCHMARKS.md, the plan's fifth round).

Usage: ``.venv/bin/python benchmarks/plan.py [--sizes 1000,2000,4000,8000,16000]
[--walk-upto 2000] [--writer] [--runs 1]``

``--instructions`` counts instead the instructions the plan runs at each size under valgrind's
callgrind: a child that makes the corpus and an empty ledger, and one that then also places,
diffs and writes the plan and collects after it, both with one hash seed; the plan's count is
the difference. It is the same in every run, where CPU time moved by a tenth, and leaves out
the kernel's work (writing the WAL) and memory stalls. About 50 times slower than a timed run.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "engine")]

from enginekit import write_settings  # noqa: E402
from plan_walk import CHANNELS, corpus, desired_day_by_day  # noqa: E402

from publisher import db, ledger, plan  # noqa: E402
from publisher.model import Manifest  # noqa: E402

START = datetime(2027, 1, 4, 6, 15, tzinfo=UTC)

WRITER = """
import json, os, sqlite3, sys, time
path, stop = sys.argv[1], sys.argv[2]
conn = sqlite3.connect(path, timeout=60, isolation_level=None)
conn.execute("CREATE TABLE IF NOT EXISTS other_writer (n INTEGER, at REAL)")
waits = []
print("ready", flush=True)
while not os.path.exists(stop):
    began = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    waits.append(time.perf_counter() - began)
    conn.execute("INSERT INTO other_writer VALUES (?, ?)", (len(waits), time.time()))
    conn.execute("COMMIT")
    time.sleep(0.005)
print(json.dumps(waits), flush=True)
"""


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@contextlib.contextmanager
def timed(out: dict[str, float], name: str) -> Iterator[None]:
    c, w = cpu(), time.perf_counter()
    yield
    out[f"{name}_cpu"] = cpu() - c
    out[f"{name}_wall"] = time.perf_counter() - w


def one(n: int, walk: bool, writer: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"n": n}
    with tempfile.TemporaryDirectory(prefix="storyloop-plan-") as tmp:
        url = f"sqlite:///{tmp}/ledger.db"
        settings = write_settings(Path(tmp), db_url=url, channels=CHANNELS)
        uncapped = write_settings(
            Path(tmp) / "uncapped",
            db_url=url,
            channels={
                k: {x: y for x, y in v.items() if x != "daily_cap"} for k, v in CHANNELS.items()
            },
        )
        manifest = Manifest(
            version=1, site_url="http://127.0.0.1:8000", stories=tuple(corpus(n, START))
        )
        with timed(out, "desired"):
            wanted = plan.desired(manifest, settings)
        out["deliveries"] = len(wanted)
        with timed(out, "nocaps"):
            plan.desired(manifest, uncapped)
        if walk:
            with timed(out, "walk"):
                old = desired_day_by_day(manifest, settings)
            out["same_as_walk"] = [(w.id, w.due_at) for w in old] == [
                (w.id, w.due_at) for w in wanted
            ]
        engine = db.connect(url)
        db.upgrade(engine)
        steps: list[tuple[float, float]] = []
        real = ledger.transaction

        @contextlib.contextmanager
        def step(e: Any) -> Iterator[Any]:
            c, w = cpu(), time.perf_counter()
            with real(e) as conn:
                yield conn
            steps.append((cpu() - c, time.perf_counter() - w))

        other = None
        stop = Path(tmp) / "stop"
        if writer:
            other = subprocess.Popen(
                [sys.executable, "-c", WRITER, url.removeprefix("sqlite:///"), str(stop)],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert other.stdout is not None and other.stdout.readline().strip() == "ready"
        plan.ledger.transaction = step  # type: ignore[attr-defined]
        try:
            with timed(out, "write"):
                now = datetime.now(UTC)
                with engine.connect() as conn:
                    result = plan.diff(
                        conn,
                        wanted,
                        now=START - timedelta(days=1),
                        grace=plan.grace_period(settings),
                    )
                plan.apply_in_steps(engine, result, now=now)
        finally:
            plan.ledger.transaction = real  # type: ignore[attr-defined]
        with timed(out, "collect"):  # what the collector, paused for the plan, does after it
            gc.collect()
        if other is not None:
            stop.touch()
            waits = json.loads(other.communicate(timeout=300)[0].strip().splitlines()[-1])
            out["writer_writes"] = len(waits)
            out["writer_max_wait"] = max(waits)
            out["writer_p99_wait"] = sorted(waits)[int(len(waits) * 0.99) - 1]
        engine.dispose()
        out["steps"] = len(steps)
        out["step_max_cpu"] = max(c for c, _ in steps)
        out["step_max_wall"] = max(w for _, w in steps)
        out["db_bytes"] = sum(p.stat().st_size for p in Path(tmp).glob("ledger.db*"))
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def counted(n: int, planned: bool) -> None:
    """One size's work for ``--instructions``: the corpus and an empty ledger, then the plan
    placed, diffed, written in steps and collected after, when ``planned``."""
    with tempfile.TemporaryDirectory(prefix="storyloop-plan-") as tmp:
        url = f"sqlite:///{tmp}/ledger.db"
        settings = write_settings(Path(tmp), db_url=url, channels=CHANNELS)
        manifest = Manifest(
            version=1, site_url="http://127.0.0.1:8000", stories=tuple(corpus(n, START))
        )
        engine = db.connect(url)
        db.upgrade(engine)
        if planned:
            wanted = plan.desired(manifest, settings)
            with engine.connect() as conn:
                grace = plan.grace_period(settings)
                result = plan.diff(conn, wanted, now=START - timedelta(days=1), grace=grace)
            plan.apply_in_steps(engine, result, now=START)
            gc.collect()
        engine.dispose()


def instructions(n: int, planned: bool) -> float:
    """Billions of instructions of one ``counted`` child, under callgrind."""
    with tempfile.TemporaryDirectory(prefix="storyloop-callgrind-") as tmp:
        out = Path(tmp) / "counts"
        argv = ["valgrind", "--tool=callgrind", "--dump-instr=no", f"--callgrind-out-file={out}"]
        argv += [sys.executable, __file__, "--count", str(n)] + (["--planned"] if planned else [])
        env = os.environ | {"PYTHONHASHSEED": "0"}
        subprocess.run(argv, check=True, capture_output=True, env=env)
        totals = [
            x for x in out.read_text(encoding="utf-8").splitlines() if x.startswith("totals:")
        ]
        return int(totals[0].split()[1]) / 1e9


def count(sizes: list[int]) -> None:
    if shutil.which("valgrind") is None:
        sys.exit("--instructions needs valgrind (Debian: apt-get install valgrind)")
    rows = []
    for n in sizes:
        setup, whole = instructions(n, False), instructions(n, True)
        rows.append((n, whole - setup))
        print(f"{n:,} stories: the plan {whole - setup:.3f} G instructions", flush=True)
    for (a, x), (b, y) in itertools.pairwise(rows):
        print(f"  {a:,} -> {b:,} ({b / a:g}x stories): {y / x:.3f}x")


MEDIANS = ("desired_cpu", "write_cpu", "collect_cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,2000,4000,8000,16000")
    parser.add_argument("--walk-upto", type=int, default=2000)
    parser.add_argument("--writer", action="store_true", help="time a second writer meanwhile")
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="runs a size, the sizes taken in turn; the doublings compare each size's median",
    )
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions under callgrind instead"
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--walk", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--planned", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.count:
        counted(args.count, args.planned)
        return
    if args.instructions:
        count([int(s) for s in args.sizes.split(",")])
        return
    if args.one:
        print(json.dumps(one(args.one, args.walk, args.writer)))
        return
    print(f"load average {os.getloadavg()[0]:.1f} (wall times are on a shared, loaded host)")
    head = [
        "stories", "deliveries", "desired CPU", "no caps CPU", "walk CPU", "diff + write CPU",
        "plan total CPU", "total wall", "steps", "longest step CPU / wall",
        "other writer's longest wait", "peak RSS",
    ]  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|---" * len(head) + "|")
    sizes = [int(s) for s in args.sizes.split(",")]
    done: dict[int, list[dict[str, Any]]] = {n: [] for n in sizes}
    for n in [n for _ in range(args.runs) for n in sizes]:
        argv = [sys.executable, __file__, "--one", str(n)]
        argv += ["--walk"] if n <= args.walk_upto else []
        argv += ["--writer"] if args.writer else []
        r = json.loads(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)
        done[n].append(r)
        walk = (
            f"{r['walk_cpu']:.2f} s{'' if r['same_as_walk'] else ' (DIFFERS)'}"
            if "walk_cpu" in r
            else "-"
        )
        wait = (
            f"{r['writer_max_wait'] * 1000:.0f} ms ({r['writer_writes']} writes)"
            if "writer_max_wait" in r
            else "-"
        )
        print(
            f"| {n:,} | {r['deliveries']:,} | {r['desired_cpu']:.2f} s "
            f"| {r['nocaps_cpu']:.2f} s | {walk} "
            f"| {r['write_cpu']:.2f} s | {r['desired_cpu'] + r['write_cpu']:.2f} s "
            f"| {r['desired_wall'] + r['write_wall']:.1f} s | {r['steps']} "
            f"| {r['step_max_cpu'] * 1000:.0f} ms / {r['step_max_wall'] * 1000:.0f} ms | {wait} "
            f"| {r['peak_rss_mb']:.0f} MB |",
            flush=True,
        )
    # one size's runs as one row: the medians of its CPU figures (one run's noise at a size is
    # as large as the goal's margin per doubling)
    rows = [
        done[n][0] | {k: statistics.median(r[k] for r in done[n]) for k in MEDIANS} for n in sizes
    ]
    print()
    median = f", the median of {args.runs} runs a size" if args.runs > 1 else ""
    print(f"per doubling (CPU of this size / CPU of the size before{median}):")
    for a, b in itertools.pairwise(rows):
        total = (b["desired_cpu"] + b["write_cpu"]) / (a["desired_cpu"] + a["write_cpu"])
        print(
            f"  {a['n']:,} -> {b['n']:,} ({b['n'] / a['n']:g}x stories): "
            f"desired {b['desired_cpu'] / a['desired_cpu']:.2f}x, "
            f"diff + write {b['write_cpu'] / a['write_cpu']:.2f}x, total {total:.2f}x"
        )
    print(
        "a full collection after the plan (the plan pauses the cycle collector), CPU: "
        + ", ".join(f"{r['n']:,}: {r['collect_cpu']:.2f} s" for r in rows)
    )
    for r in rows:
        if "walk_cpu" in r:
            print(
                f"  {r['n']:,}: walk / desired {r['walk_cpu'] / r['desired_cpu']:.1f}x; "
                f"desired with caps / without {r['desired_cpu'] / r['nocaps_cpu']:.2f}x"
            )


if __name__ == "__main__":
    main()
