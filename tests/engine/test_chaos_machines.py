"""Chaos across machines: two engine "machines" (each its own working folder, settings, var/
and manifest) share one PostgreSQL. Workers are SIGKILLed in the middle of requests and come
back only after their leases ran out, so the other machine recovers and settles what they had
in flight, knowing only what the database knows. Three networks, one per strategy:

- ``keyed``: honours Idempotency-Key (and sometimes answers 503 after posting);
- ``drafts``: WeChat's shape, a LOOKUP channel whose lookup needs the draft id the adapter
  recorded (``fake_network.py --drafts``, ``fake_channel.DraftChannel``): with that id kept in
  one machine's files, the other machine could not find the post and would make it again;
- ``plain``: no key, no lookup: an unanswered post waits for a person, never resent.

Afterwards no delivery was posted twice, none is lost (every keyed and drafts delivery posted
once and sent with the network's id), every plain one is sent or held with at most one post,
and some deliveries were settled by the machine that had not started them.
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
from sqlalchemy import select

from publisher import db, ledger
from tests.conftest import PostgresServer, free_port, wait_for_port
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
DELIVERIES = 150
SPREAD = 15.0
LEASE = 3
FLAKY = ["--fail-after-create", "0.05", "--delay", "0", "0.1", "--stall", "0.15"]
FLAKY += ["--stall-seconds", "3"]
NETWORKS = {
    "keyed": ("KeyedChannel", ["--keep-keys", "0", *FLAKY]),
    "drafts": ("DraftChannel", ["--drafts", *FLAKY]),
    "plain": ("PlainChannel", ["--delay", "0", "0.1", "--stall", "0.3", "--stall-seconds", "2"]),
}
MACHINES = ("a", "b")


def pid_of(worker_token: str | None) -> int | None:
    """The process id in a claim token (``host:pid:tag/n``)."""
    parts = (worker_token or "").split(":")
    return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None


def touched_by(url: str) -> dict[str, set[int]]:
    """delivery id -> the processes whose claims left events on it."""
    engine = db.connect(url)
    try:
        with engine.connect() as conn:
            e = ledger.delivery_events.c
            rows = conn.execute(select(e.delivery_id, e.worker)).all()
    finally:
        engine.dispose()
    found: dict[str, set[int]] = {}
    for delivery_id, worker in rows:
        pid = pid_of(worker)
        if pid is not None:
            found.setdefault(delivery_id, set()).add(pid)
    return found


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(400)
def test_two_machines_on_one_postgresql_never_post_twice_nor_lose_a_post(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    db_url = postgres_server.create_database()
    ports = {name: free_port() for name in NETWORKS}
    servers = [
        subprocess.Popen([sys.executable, str(HERE / "fake_network.py"), str(ports[n]), *args])
        for n, (_cls, args) in NETWORKS.items()
    ]
    log = tmp_path / "workers.log"
    workers: dict[str, subprocess.Popen[bytes]] = {}
    pids: dict[str, set[int]] = {m: set() for m in MACHINES}
    try:
        for port in ports.values():
            wait_for_port(port)
        channels = {
            name: {
                "type": f"tests.engine.fake_channel:{cls}",
                "url": f"http://127.0.0.1:{ports[name]}",
                "timeout": 5,
            }
            for name, (cls, _args) in NETWORKS.items()
        }
        sites = {
            m: write_settings(
                tmp_path / f"machine-{m}",
                db_url=db_url,
                channels=channels,
                sweep_seconds=0.5,
                lease_seconds=LEASE,
                claim_batch=5,
                publish_threads=3,
                retry_base_seconds=0.5,
                retry_max_seconds=2,
                metrics_minutes=0,
            )
            for m in MACHINES
        }

        def start(machine: str) -> None:
            workers[machine] = start_worker(sites[machine].source, log)
            pids[machine].add(workers[machine].pid)

        for m in MACHINES:
            write_manifest(sites[m].root, [])
            start(m)
        for w in workers.values():
            wait_running(w, log)
        begin = datetime.now(UTC) + timedelta(seconds=2)
        step = SPREAD / DELIVERIES
        names = list(NETWORKS)
        stories = [
            story(f"s{i:03d}", begin + timedelta(seconds=i * step), channels=[names[i % 3]])
            for i in range(DELIVERIES)
        ]
        for m in MACHINES:  # each machine builds the same site into its own folder
            write_manifest(sites[m].root, stories)

        rng = random.Random(11)
        kills: Counter[str] = Counter()
        down: dict[str, float] = {}  # machine -> when its worker comes back
        chaos_until = time.monotonic() + 2 + SPREAD
        enough = 2  # kills in the middle of a request, per network
        turn = 0
        while time.monotonic() < chaos_until or (
            min(kills[n] for n in names) < enough and time.monotonic() < chaos_until + 90
        ):
            time.sleep(rng.uniform(0.3, 1.0))
            for m, at in list(down.items()):
                if time.monotonic() >= at:
                    del down[m]
                    start(m)
            if down:
                continue  # one machine at a time: the other one is settling its work
            name = min(names, key=lambda n: (kills[n], (names.index(n) - turn) % 3))
            turn += 1
            order = list(MACHINES)
            index = victim([workers[m] for m in order], ports[name])
            if index is None:
                continue
            machine = order[index]
            workers[machine].send_signal(signal.SIGKILL)
            workers[machine].wait()
            kills[name] += 1
            down[machine] = time.monotonic() + LEASE + 2  # its leases run out meanwhile
        for m in list(down):
            start(m)
        deadline = time.monotonic() + 150  # generous: CI machines are shared
        while time.monotonic() < deadline:
            rows = ledger_rows(db_url)
            if len(rows) == DELIVERIES and all(settled(r) for r in rows):
                break
            time.sleep(1)
        for w in workers.values():  # a worker killed by SIGTERM before it got going proves nothing
            wait_running(w, log)
        for w in workers.values():
            w.send_signal(signal.SIGTERM)
        codes = [w.wait(timeout=30) for w in workers.values()]
        stats = {
            name: requests.get(f"http://127.0.0.1:{port}/stats", timeout=5).json()
            for name, port in ports.items()
        }
    finally:
        for w in workers.values():
            if w.poll() is None:
                w.kill()
        for server in servers:
            server.kill()
            server.wait()

    rows = ledger_rows(db_url)
    by_channel = {name: [r for r in rows if r.channel == name] for name in NETWORKS}
    summary = {name: Counter(r.state for r in by_channel[name]) for name in NETWORKS}
    touched = touched_by(db_url)
    both = [i for i, seen in touched.items() if all(seen & pids[m] for m in MACHINES)]
    print(f"kills={dict(kills)} states={summary} settled across machines={len(both)}")
    tail = log.read_text()[-3000:]
    assert len(rows) == DELIVERIES and all(settled(r) for r in rows), (summary, tail)
    assert codes == [0, 0], tail
    for name in NETWORKS:
        created, posts = stats[name]["created"], stats[name]["posts"]
        twice = {ref: n for ref, n in created.items() if n > 1}
        assert not twice, f"{name}: posted more than once: {twice}"
        sent = {r.id: r.remote_id for r in by_channel[name] if r.state == ledger.SENT}
        assert sent == {p["ref"]: p["id"] for p in posts if p["ref"] in sent}, name
        held_rows = [r for r in by_channel[name] if r.state != ledger.SENT]
        held = [r.id for r in held_rows]
        if name == "plain":  # each waits for a person, who is told how to settle it
            assert all(created.get(i, 0) <= 1 for i in held)
            assert all("storyloop resolve" in (r.last_error or "") for r in held_rows)
        else:
            assert not held, f"{name}: held for a person although the network could tell: {held}"
            assert set(created) == {r.id for r in by_channel[name]}, f"{name}: a post was lost"
    assert stats["keyed"]["failed_after_create"] and stats["drafts"]["failed_after_create"]
    assert all(kills[name] >= enough for name in NETWORKS), f"too few kills mid-request: {kills}"
    assert both, "no delivery was settled by the machine that had not started it"
