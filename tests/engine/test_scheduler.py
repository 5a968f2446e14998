"""The runner's pieces in-process: the manifest watch, re-planning, and wake-ups from the ledger."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from publisher import db, ledger
from publisher.scheduler import ManifestWatch, Runner
from publisher.settings import Settings
from tests.engine.enginekit import story, write_manifest


def test_manifest_watch_reloads_on_change_and_keeps_the_last_good_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_manifest(tmp_path, [story("a", datetime.now(UTC))])
    watch = ManifestWatch(path)
    assert watch.refresh() is True
    assert watch.refresh() is False
    write_manifest(tmp_path, [story("a", datetime.now(UTC)), story("b", datetime.now(UTC))])
    assert watch.refresh() is True and set(watch.stories()) == {"a", "b"}
    path.write_text('{"version": 1, "stories": [', encoding="utf-8")  # a build half-way through
    with caplog.at_level(logging.WARNING):
        assert watch.refresh() is False
    assert set(watch.stories()) == {"a", "b"}
    assert "keeping the previous manifest" in caplog.text


def test_sweep_replans_on_manifest_change_and_schedules_a_wakeup_per_due_time(
    make_site: Callable[..., Settings],
) -> None:
    settings = make_site()
    now = datetime.now(UTC)
    soon, later = now + timedelta(minutes=5), now + timedelta(hours=2)
    write_manifest(settings.root, [story("a", soon)])
    engine = db.connect(settings.database_url)
    db.upgrade(engine)
    runner = Runner(settings, engine)
    runner.sweep()
    write_manifest(settings.root, [story("a", soon), story("b", later), story("c", later)])
    runner.sweep()
    with engine.connect() as conn:
        assert ledger.counts_by_state(conn) == {"planned": 3}
    wakeups = sorted(job.trigger.run_date for job in runner.scheduler.get_jobs())
    assert [w.astimezone(UTC) for w in wakeups] == [soon, later]
    engine.dispose()


def test_metrics_are_read_back_periodically_off_the_publish_loop(
    make_site: Callable[..., Settings],
) -> None:
    settings = make_site(metrics_minutes=15)
    write_manifest(settings.root, [story("a", datetime.now(UTC) - timedelta(minutes=1))])
    engine = db.connect(settings.database_url)
    db.upgrade(engine)
    runner = Runner(settings, engine)
    runner._schedule_metrics()
    [job] = runner.scheduler.get_jobs()
    assert (job.id, job.trigger.interval) == ("metrics", timedelta(minutes=15))
    runner.sweep()  # the outbox post goes out; the outbox has no figures to read back
    assert runner.refresh_metrics() == (0, 0)
    engine.dispose()
