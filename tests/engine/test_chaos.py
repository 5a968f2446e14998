"""Chaos: three workers on one database, SIGKILLed in the middle of requests while 300
deliveries fall due on three networks, one per idempotency strategy:

- ``keyed``: the network honours Idempotency-Key (and sometimes answers 503 after posting);
- ``lookup``: the network ignores keys but lists a delivery's posts (and sometimes answers 503
  after posting: only a lookup before the resend keeps it from posting twice);
- ``plain``: no key, no lookup; an unanswered post must be held for a person, never resent.

The networks are real HTTP servers on loopback in their own processes (``fake_network.py``) that
count every request that could create a post and every post made, per delivery, so a double
post shows. A worker is chosen as victim while the network is answering it. Afterwards no
delivery was posted twice, every keyed and lookup delivery was posted once and the ledger says
so with the network's id, and every plain one is either sent once or held with at most one post.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from publisher import ledger
from tests.conftest import free_port, wait_for_port
from tests.engine.enginekit import (
    ledger_rows,
    settled,
    start_worker,
    story,
    victim,
    wait_running,
    write_manifest,
    write_settings,
)

HERE = Path(__file__).parent
DELIVERIES = 300
SPREAD = 20.0
FLAKY = [
    "--fail-after-create",
    "0.05",
    "--delay",
    "0",
    "0.1",
    "--stall",
    "0.1",
    "--stall-seconds",
    "3",
]
NETWORKS = {
    "keyed": ("KeyedChannel", ["--keep-keys", "0", *FLAKY]),
    "lookup": ("LookupChannel", ["--lookup", *FLAKY]),
    "plain": ("PlainChannel", ["--delay", "0", "0.1", "--stall", "0.3", "--stall-seconds", "2"]),
}


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_workers_killed_mid_request_never_post_twice_whatever_the_strategy(
    tmp_path: Path, db_url: str
) -> None:
    ports = {name: free_port() for name in NETWORKS}
    servers = [
        subprocess.Popen(
            [sys.executable, str(HERE / "fake_network.py"), str(ports[name]), *args],
        )
        for name, (_cls, args) in NETWORKS.items()
    ]
    workers: list[subprocess.Popen[bytes]] = []
    log = tmp_path / "workers.log"
    try:
        for port in ports.values():
            wait_for_port(port)
        root = tmp_path / "site"
        channels = {
            name: {
                "type": f"tests.engine.fake_channel:{cls}",
                "url": f"http://127.0.0.1:{ports[name]}",
                "timeout": 5,
            }
            for name, (cls, _args) in NETWORKS.items()
        }
        settings = write_settings(
            root,
            db_url=db_url,
            channels=channels,
            sweep_seconds=0.5,
            lease_seconds=3,
            claim_batch=5,
            publish_threads=3,
            retry_base_seconds=0.5,
            retry_max_seconds=2,
            metrics_minutes=0,
        )
        write_manifest(root, [])
        workers = [start_worker(settings.source, log) for _ in range(3)]
        for w in workers:  # on a busy machine a worker takes seconds to start
            wait_running(w, log)
        start = datetime.now(UTC) + timedelta(seconds=2)
        step = SPREAD / DELIVERIES
        names = list(NETWORKS)
        write_manifest(
            root,
            [
                story(f"s{i:03d}", start + timedelta(seconds=i * step), channels=[names[i % 3]])
                for i in range(DELIVERIES)
            ],
        )
        rng = random.Random(7)
        kills: Counter[str] = Counter()
        chaos_until = time.monotonic() + 2 + SPREAD
        turn = 0
        enough = 2  # kills in the middle of a request, per network
        while time.monotonic() < chaos_until or (
            min(kills[n] for n in names) < enough and time.monotonic() < chaos_until + 30
        ):
            time.sleep(rng.uniform(0.5, 1.5))
            name = min(names, key=lambda n: (kills[n], (names.index(n) - turn) % 3))
            turn += 1
            index = victim(workers, ports[name])
            if index is None:
                continue
            workers[index].send_signal(signal.SIGKILL)
            workers[index].wait()
            kills[name] += 1
            workers[index] = start_worker(settings.source, log)
        deadline = time.monotonic() + 150  # generous: CI machines are shared
        while time.monotonic() < deadline:
            rows = ledger_rows(settings.database_url)
            if len(rows) == DELIVERIES and all(settled(r) for r in rows):
                break
            time.sleep(1)
        for w in workers:  # a worker killed by SIGTERM before it got going would prove nothing
            wait_running(w, log)
        for w in workers:
            w.send_signal(signal.SIGTERM)
        codes = [w.wait(timeout=30) for w in workers]
        stats = {
            name: requests.get(f"http://127.0.0.1:{port}/stats", timeout=5).json()
            for name, port in ports.items()
        }
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
        for server in servers:
            server.kill()
            server.wait()

    rows = ledger_rows(settings.database_url)
    by_channel = {name: [r for r in rows if r.channel == name] for name in NETWORKS}
    summary = {
        name: (Counter(r.state for r in by_channel[name]), sum(s["requests"].values()))
        for name, s in stats.items()
    }
    print(f"kills={dict(kills)} states and requests={summary}")
    tail = log.read_text()[-3000:]
    assert len(rows) == DELIVERIES and all(settled(r) for r in rows), (summary, tail)
    assert codes == [0, 0, 0], tail
    for name in NETWORKS:
        created, posts = stats[name]["created"], stats[name]["posts"]
        twice = {ref: n for ref, n in created.items() if n > 1}
        assert not twice, f"{name}: posted more than once: {twice}"
        sent = {r.id: r.remote_id for r in by_channel[name] if r.state == ledger.SENT}
        assert sent == {p["ref"]: p["id"] for p in posts if p["ref"] in sent}, name
        held = [r.id for r in by_channel[name] if r.state != ledger.SENT]
        if name == "plain":
            assert all(created.get(i, 0) <= 1 for i in held)
        else:
            assert not held, f"{name}: held for a person although the network could tell: {held}"
            assert set(created) == {r.id for r in by_channel[name]}
    assert stats["keyed"]["failed_after_create"] and stats["lookup"]["failed_after_create"]
    assert all(kills[name] >= enough for name in NETWORKS), f"too few kills mid-request: {kills}"
