"""Chaos: three workers on one database, SIGKILLed at random while 300 deliveries fall due.

The channel is a real HTTP server on loopback that honours an Idempotency-Key and counts the
posts it created. Afterwards every delivery must have been posted exactly once, and the ledger
must agree with the server, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from enginekit import story, write_manifest, write_settings
from sqlalchemy import select

from publisher import db, ledger
from tests.conftest import ROOT, free_port, wait_for_port

HERE = Path(__file__).parent
DELIVERIES = 300
SPREAD = 20.0


def start_worker(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-c", "from publisher.cli import main; main()"]
    with open(log, "ab") as out:
        return subprocess.Popen(
            [*argv, "--config", str(config), "-v", "run", "--no-serve"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_running(worker: subprocess.Popen[bytes], log: Path) -> None:
    mark = f":{worker.pid}:"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(mark in line for line in log.read_text().splitlines() if "engine running" in line):
            return
        time.sleep(0.2)
    raise TimeoutError(f"worker {worker.pid} did not start")


def ledger_rows(url: str) -> list:
    engine = db.connect(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(ledger.deliveries)).all())
    except Exception:  # not migrated yet
        return []
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.timeout(330)
def test_killed_workers_never_post_twice_and_never_drop_a_post(tmp_path, db_url):
    port = free_port()
    server = subprocess.Popen([sys.executable, str(HERE / "fake_server.py"), str(port)])
    workers: list[subprocess.Popen[bytes]] = []
    log = tmp_path / "workers.log"
    try:
        wait_for_port(port)
        root = tmp_path / "site"
        channel = {
            "type": "tests.engine.fake_channel:FakeChannel",
            "url": f"http://127.0.0.1:{port}",
        }
        settings = write_settings(
            root,
            db_url=db_url,
            channels={"fake": channel},
            sweep_seconds=0.5,
            lease_seconds=3,
            claim_batch=5,
            publish_threads=3,
            retry_base_seconds=0.5,
            retry_max_seconds=2,
        )
        start = datetime.now(UTC) + timedelta(seconds=6)
        step = SPREAD / DELIVERIES
        write_manifest(
            root,
            [
                story(f"s{i:03d}", start + timedelta(seconds=i * step), channels=["fake"])
                for i in range(DELIVERIES)
            ],
        )
        workers = [start_worker(settings.source, log) for _ in range(3)]
        rng = random.Random(7)
        kills = 0
        chaos_until = time.monotonic() + 6 + SPREAD + 2
        while time.monotonic() < chaos_until:
            time.sleep(rng.uniform(0.5, 2.0))
            victim = rng.randrange(len(workers))
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait()
            kills += 1
            workers[victim] = start_worker(settings.source, log)
        deadline = time.monotonic() + 150  # generous: CI machines are shared
        while time.monotonic() < deadline:
            rows = ledger_rows(settings.database_url)
            if len(rows) == DELIVERIES and all(r.state == ledger.SENT for r in rows):
                break
            time.sleep(1)
        for w in workers:  # a worker killed by SIGTERM before it got going would prove nothing
            wait_running(w, log)
        for w in workers:
            w.send_signal(signal.SIGTERM)
        codes = [w.wait(timeout=30) for w in workers]
        stats = requests.get(f"http://127.0.0.1:{port}/stats", timeout=5).json()
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
        server.kill()
        server.wait()

    rows = ledger_rows(settings.database_url)
    states = sorted({r.state for r in rows})
    assert len(rows) == DELIVERIES and states == ["sent"], (states, log.read_text()[-3000:])
    print(f"kills={kills} requests={stats['requests']} posts={len(stats['posts'])}")
    assert kills >= 8
    assert codes == [0, 0, 0], log.read_text()[-3000:]
    assert set(stats["created"]) == {r.id for r in rows}
    assert set(stats["created"].values()) == {1}  # each delivery created exactly one post
    assert {r.id: r.remote_id for r in rows} == {k: p["id"] for k, p in stats["posts"].items()}
