"""Chaos against the real PDS: workers SIGKILLed between createRecord and storing the receipt.

Each death is placed, not left to chance (``killing.py``): twice after the server created the
record and before the ledger heard of it, once after the record key was noted and before
createRecord went out. The next worker finds the lease expired, marks the delivery unknown,
looks the record up by its key (getRecord), and either stores the receipt or sends again under
the same key. Afterwards listRecords must hold exactly one record per delivery, under the key
the adapter derives, and the ledger must show every delivery sent with that record's URI.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from channels.base import DeliveryKey
from channels.bluesky import tid_for
from publisher import db, ledger
from tests.conftest import ROOT
from tests.engine.enginekit import start_worker, story, write_manifest, write_settings
from tests.pds.killing import KILL_DIR
from tests.pds.pdskit import Pds

pytestmark = [pytest.mark.pds, pytest.mark.slow]

DELIVERIES = 6
DEATHS = {"after-create": 2, "before-create": 1}
PASSWORD_ENV = "STORYLOOP_TEST_BSKY_PASSWORD"


def ledger_state(url: str) -> tuple[list[Any], list[Any]]:
    engine = db.connect(url)
    try:
        with engine.connect() as conn:
            rows = list(conn.execute(select(ledger.deliveries)).all())
            events = list(conn.execute(select(ledger.delivery_events)).all())
            return rows, events
    except Exception:  # not migrated yet
        return [], []
    finally:
        engine.dispose()


@pytest.mark.timeout(240)
def test_a_worker_killed_after_create_record_leaves_one_record_and_a_sent_delivery(
    tmp_path: Path, pds: Pds
) -> None:
    account = pds.new_account("chaos")
    kills = tmp_path / "kills"
    kills.mkdir()
    for point, n in DEATHS.items():
        for i in range(n):
            (kills / f"{point}.{i}").touch()
    root = tmp_path / "site"
    channel = {
        "type": "tests.pds.killing:KilledMidPublish",
        "handle": account.handle,
        "app_password": {"env": PASSWORD_ENV},
        "service": pds.service,
        "allow_http": True,  # the PDS listens on loopback over plain http
    }
    settings = write_settings(
        root,
        db_url=f"sqlite:///{tmp_path / 'storyloop.db'}",
        channels={"bluesky": channel},
        sweep_seconds=0.5,
        lease_seconds=2,
        claim_batch=3,
        publish_threads=2,
        retry_base_seconds=0.5,
        retry_max_seconds=1,
    )
    start = datetime.now(UTC) + timedelta(seconds=1)
    stories = [
        story(f"s{i}", start + timedelta(seconds=i * 0.3), channels=["bluesky"])
        for i in range(DELIVERIES)
    ]
    write_manifest(root, stories)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        PASSWORD_ENV: account.password,
        KILL_DIR: str(kills),
    }
    log = tmp_path / "workers.log"
    worker = start_worker(settings.source, log, env)
    deaths = 0
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                assert worker.returncode == -signal.SIGKILL, log.read_text()[-3000:]
                deaths += 1
                worker = start_worker(settings.source, log, env)
            rows, _ = ledger_state(settings.database_url)
            if len(rows) == DELIVERIES and all(r.state == ledger.SENT for r in rows):
                break
            time.sleep(0.3)
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()

    rows, events = ledger_state(settings.database_url)
    records = pds.records(account.did)
    report = log.read_text()[-3000:]
    assert deaths == sum(DEATHS.values()) and not list(kills.glob("*-create.*")), report
    assert sorted({r.state for r in rows}) == [ledger.SENT], report
    assert code == 0, report
    # exactly one record per delivery, under the key derived from the delivery
    expected = {tid_for(DeliveryKey(r.id, r.due_at)): r for r in rows}
    by_rkey = {rec["uri"].rsplit("/", 1)[-1]: rec for rec in records}
    assert len(records) == DELIVERIES and set(by_rkey) == set(expected)
    for rkey, row in expected.items():
        assert row.remote_id == by_rkey[rkey]["uri"]
    # the deliveries whose worker died after createRecord were settled by the lookup
    died_after = {p.name.split(".", 1)[1] for p in (kills / "died").glob("after-create.*")}
    assert len(died_after) == DEATHS["after-create"]
    for rkey in died_after:
        history = [e.state for e in events if e.delivery_id == expected[rkey].id]
        assert ledger.UNKNOWN in history and history[-1] == ledger.SENT, history
    print(f"deaths={deaths} records={len(records)}")
