"""Withdrawal against a realistic fake Mastodon API and the real Bluesky PDS, with workers
SIGKILLed right after each network deleted a post and before the outcome was stored.

A testimonial goes out on Mastodon (two variants a day apart: one posted, one pending) and on
Bluesky. The customer withdraws: the pending post is cancelled at once, and the running engine
deletes the two posted ones. Each delete kills its worker (``consentkill.py``); the next worker
finds the removal's lease run out, marks it unknown, looks the post up (Mastodon's GET status,
Bluesky's getRecord), finds it gone and records it removed, without a second delete.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from publisher import db, ledger
from publisher.consent import removals
from publisher.consent.schema import consent_removals
from tests.conftest import ROOT
from tests.customers.consentkit import received, slug
from tests.customers.fake_mastodon import TOKEN, FakeMastodon
from tests.engine.enginekit import start_worker, story, write_manifest, write_settings
from tests.pds.killing import KILL_DIR
from tests.pds.pdskit import Pds

pytestmark = [pytest.mark.pds, pytest.mark.slow]

TOKEN_ENV = "STORYLOOP_TEST_MASTODON_TOKEN"
PASSWORD_ENV = "STORYLOOP_TEST_BSKY_PASSWORD"


def snapshot(url: str) -> tuple[list[Any], list[Any]]:
    engine = db.connect(url)
    try:
        with engine.connect() as conn:
            deliveries = list(conn.execute(select(ledger.deliveries)).all())
            copies = list(conn.execute(select(consent_removals)).all())
            return deliveries, copies
    finally:
        engine.dispose()


class Workers:
    """One ``storyloop run`` at a time; a worker that died is replaced, and counted."""

    def __init__(self, config: Path, log: Path, env: dict[str, str]) -> None:
        self.config, self.log, self.env = config, log, env
        self.deaths = 0
        self.proc = start_worker(config, log, env)

    def keep_alive(self) -> None:
        if self.proc.poll() is not None:
            assert self.proc.returncode == -signal.SIGKILL, self.log.read_text()[-3000:]
            self.deaths += 1
            self.proc = start_worker(self.config, self.log, self.env)

    def wait_for(self, done: Any, seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.keep_alive()
            if done():
                return
            time.sleep(0.3)
        raise AssertionError(f"timed out: {self.log.read_text()[-3000:]}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


@pytest.mark.timeout(240)
def test_withdrawal_cancels_the_pending_post_and_deletes_each_sent_post_once_through_sigkills(
    tmp_path: Path, pds: Pds
) -> None:
    account = pds.new_account("consent")
    kills = tmp_path / "kills"
    kills.mkdir()
    with FakeMastodon() as mastodon:
        root = tmp_path / "site"
        channels = {
            "mastodon": {
                "type": "tests.customers.consentkill:KilledMastodon",
                "instance": mastodon.url,
                "token": {"env": TOKEN_ENV},
                "allow_http": True,
                "variants": "all",
                "variant_gap_hours": 24,
            },
            "bluesky": {
                "type": "tests.customers.consentkill:KilledBluesky",
                "handle": account.handle,
                "app_password": {"env": PASSWORD_ENV},
                "service": pds.service,
                "allow_http": True,  # the PDS listens on loopback over plain http
            },
        }
        settings = write_settings(
            root,
            db_url=f"sqlite:///{tmp_path / 'storyloop.db'}",
            channels=channels,
            sweep_seconds=0.5,
            lease_seconds=2,
            retry_base_seconds=0.5,
            retry_max_seconds=1,
        )
        engine = db.connect(settings.database_url)
        db.upgrade(engine)
        item = received(engine, settings.var_dir)
        testimonial = story(
            slug(item),
            datetime.now(UTC) + timedelta(seconds=1),
            channels=["mastodon", "bluesky"],
            variants={"a": "Der Boden ist wunderschön", "b": "Zwölf Tage bis zum neuen Boden"},
            consent=True,
        )
        write_manifest(root, [testimonial])
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            TOKEN_ENV: TOKEN,
            PASSWORD_ENV: account.password,
            KILL_DIR: str(kills),
        }
        workers = Workers(settings.source, tmp_path / "workers.log", env)
        try:

            def posted() -> bool:
                rows, _ = snapshot(settings.database_url)
                return sorted(r.state for r in rows) == [ledger.PLANNED, ledger.SENT, ledger.SENT]

            workers.wait_for(posted)
            rows, _ = snapshot(settings.database_url)
            sent = {r.channel: r for r in rows if r.state == ledger.SENT}
            pending = next(r for r in rows if r.state == ledger.PLANNED)
            status_id = sent["mastodon"].remote_id
            rkey = sent["bluesky"].remote_id.rsplit("/", 1)[-1]
            assert status_id in mastodon.statuses
            assert [r["uri"] for r in pds.records(account.did)] == [sent["bluesky"].remote_id]

            for point in ("mastodon-after-delete.0", "bluesky-after-delete.0"):
                (kills / point).touch()
            removals.withdraw(engine, slug(item), "withdrawal link", datetime.now(UTC), item.invite)
            row = ledger.get(engine.connect(), pending.id)
            assert row is not None and row.state == ledger.CANCELLED  # at once
            assert row.cancelled_by == ledger.BY_USER  # never revived by a re-plan

            def removed() -> bool:
                _, copies = snapshot(settings.database_url)
                return len(copies) == 3 and all(c.state in removals.FINISHED for c in copies)

            workers.wait_for(removed)
        finally:
            code = workers.stop()
        report = (tmp_path / "workers.log").read_text()[-3000:]
        assert code == 0, report
        assert workers.deaths == 2 and not list(kills.glob("*-after-delete.*")), report

        # each network was asked to delete once, and the posts are gone
        assert mastodon.deletes == {status_id: 1}
        gone = requests.get(
            f"{mastodon.url}/api/v1/statuses/{status_id}",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        assert gone.status_code == 404
        assert pds.records(account.did) == []
        lookup = pds.get(
            "com.atproto.repo.getRecord",
            repo=account.did,
            collection="app.bsky.feed.post",
            rkey=rkey,
        )
        assert lookup.status_code == 400 and lookup.json()["error"] == "RecordNotFound"

    _, copies = snapshot(settings.database_url)
    by_channel = {(c.channel, c.action): c for c in copies}
    assert by_channel[("mastodon", "cancel")].state == removals.CANCELLED
    for channel in ("mastodon", "bluesky"):
        copy = by_channel[(channel, "delete")]
        assert copy.state == removals.REMOVED
        history = [s.state for s in removals.steps(engine, copy.id)]
        # one delete call, a death, the lookup: never a second delete, never an error
        assert history.count(removals.CALLING) == 1, history
        assert history[-3:] == [removals.UNKNOWN, removals.CHECKING, removals.REMOVED], history
        assert removals.RETRY_WAIT not in history and removals.BY_HAND not in history
    died = {p.name for p in (kills / "died").iterdir()}
    assert died == {f"mastodon-after-delete.{status_id}", f"bluesky-after-delete.{rkey}"}
    engine.dispose()
